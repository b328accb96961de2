// Issue 9: a storage outage must never corrupt a file nor hold a read. Appender changes go to the
// file's source storage only (the tracker's QUERY_UPDATE answer is checked against the source in
// the file id); reads of immutable files move to the next storage that has the file, skip
// storages that failed a moment ago, and do not wait out a stalled one.

import FastDFSProtocol
import NIOCore
import Testing
@testable import FastDFS

@Suite("Source routing and read failover")
struct SourceRoutingTests {
    let vectors: ProtocolVectors
    let normalID: FileID
    let appenderID: FileID

    init() throws {
        vectors = try ProtocolVectors.load("6.16.1")
        var body = ByteBuffer(bytes: vectors["storage_upload_file"].response.dropFirst(FDFSHeader.size))
        normalID = try UploadResponse.decode(body: &body).fileID
        var body2 = ByteBuffer(bytes: vectors["storage_upload_appender_file"].response.dropFirst(FDFSHeader.size))
        appenderID = try UploadResponse.decode(body: &body2).fileID
    }

    func client(_ tracker: StorageAddress, stall: Duration = .seconds(3600)) -> FastDFSClient {
        var config = FastDFSConfiguration(trackers: [tracker])
        config.storageConnectRetries = 0
        config.networkTimeout = .seconds(120)
        config.readStallTimeout = stall
        return FastDFSClient(configuration: config)
    }

    static func storageList(_ storages: [(id: String, address: StorageAddress, status: UInt8)]) -> ByteBuffer {
        var body = ByteBuffer()
        for s in storages {
            var stat = StorageStat()
            stat.status = s.status
            stat.rwMode = 6
            stat.id = s.id
            stat.ipAddress = s.address.host
            stat.port = Int64(s.address.port)
            stat.version = "6.16.1"
            stat.encode(into: &body, layout: .v487)
        }
        return FDFSPacket.response(status: 0, body: body)
    }

    static func fetchAll(_ servers: [StorageAddress]) -> ByteBuffer {
        var body = ByteBuffer()
        QueryFetchAllResponse(group: "group1", servers: servers).encode(into: &body, ipWidth: 15, layout: .portPerServer)
        return FDFSPacket.response(status: 0, body: body)
    }

    @Test func anAppendIsRefusedWhenTheTrackerOffersAStorageOtherThanTheSource() async throws {
        guard case .ipv4(let sourceIP) = try FastDFSClient.decode(appenderID).source else { Issue.record("IP source"); return }
        let deadSource = try BoundButNotListening()
        defer { deadSource.close() }
        let replica = try await FakeFDFSServer.start { _ in .ok() }
        let replicaAddress = replica.address
        let tracker = try await FakeFDFSServer.start { request in
            switch request.command {
            case .trackerQueryUpdate, .trackerQueryFetchOne: .send(TrackerReplies.queryFetch(replicaAddress))
            case .trackerListStorage:
                .send(Self.storageList([(sourceIP, deadSource.address, 5), ("127.0.0.99", replicaAddress, 7)]))
            default: .status(.einval)
            }
        }
        let client = client(tracker.address)
        for op in ["append", "modify", "truncate"] {
            let error = await #expect(throws: FastDFSError.self, "\(op)") {
                switch op {
                case "append": try await client.append(ByteBuffer(string: "lost?"), to: appenderID)
                case "modify": try await client.modify(ByteBuffer(string: "lost?"), in: appenderID, at: 0)
                default: try await client.truncate(appenderID, to: 3)
                }
            }
            #expect(error?.code == .sourceUnavailable, "\(op)")
            #expect(error?.errno == LinuxErrno.EIO, "\(op)")
            #expect(error?.description.contains("not active (tracker status OFFLINE)") == true, "\(op): \(error?.description ?? "")")
            #expect(error?.description.contains("the tracker offered \(replicaAddress)") == true, "\(op)")
        }
        // Reading the appender file is refused too (the replica's copy may lag).
        let readError = await #expect(throws: FastDFSError.self) { _ = try await client.download(appenderID) }
        #expect(readError?.code == .sourceUnavailable)
        #expect(replica.requests.isEmpty, "nothing reached the replica: \(replica.commands)")
        await client.shutdown()
        await replica.stop()
        await tracker.stop()
    }

    @Test func anAppenderFileIsReadFromAReplicaOnlyWhenItsSizeAndTimeMatchTheExpectation() async throws {
        guard case .ipv4(let sourceIP) = try FastDFSClient.decode(appenderID).source else { Issue.record("IP source"); return }
        let deadSource = try BoundButNotListening()
        defer { deadSource.close() }
        let vectors = self.vectors
        var infoBody = ByteBuffer(bytes: vectors["storage_query_file_info"].response.dropFirst(FDFSHeader.size))
        let info = try QueryFileInfoResponse.decode(body: &infoBody)
        let replica = try await FakeFDFSServer.start { request in
            switch request.command {
            case .storageQueryFileInfo: .canned(vectors["storage_query_file_info"].response)
            case .storageDownloadFile: .canned(vectors["storage_download_file"].response)
            default: .status(.einval)
            }
        }
        let replicaAddress = replica.address
        let tracker = try await FakeFDFSServer.start { request in
            switch request.command {
            case .trackerQueryFetchOne: .send(TrackerReplies.queryFetch(replicaAddress))
            case .trackerListStorage:
                .send(Self.storageList([(sourceIP, deadSource.address, 5), ("127.0.0.99", replicaAddress, 7)]))
            default: .status(.einval)
            }
        }
        let client = client(tracker.address)
        let stale = await #expect(throws: FastDFSError.self) {
            _ = try await client.download(appenderID, expecting: FileVersion(size: info.size + 1, modifyTime: info.modifyTime))
        }
        #expect(stale?.code == .sourceUnavailable)
        let data = try await client.download(appenderID, expecting: FileVersion(size: info.size, modifyTime: info.modifyTime))
        #expect(String(buffer: data) == "hello fdfs")
        await client.shutdown()
        await replica.stop()
        await tracker.stop()
    }

    @Test func aReadMovesToTheNextStorageAndThenSkipsTheDeadOne() async throws {
        let dead = try BoundButNotListening()
        defer { dead.close() }
        let deadAddress = dead.address
        let vectors = self.vectors
        let live = try await FakeFDFSServer.start { _ in .canned(vectors["storage_download_file"].response) }
        let liveAddress = live.address
        let tracker = try await FakeFDFSServer.start { request in
            switch request.command {
            case .trackerQueryFetchOne: .send(TrackerReplies.queryFetch(deadAddress))  // the tracker has not noticed
            case .trackerQueryFetchAll: .send(Self.fetchAll([deadAddress, liveAddress]))
            case .trackerListStorage: .send(Self.storageList([("127.0.0.98", deadAddress, 7), ("127.0.0.99", liveAddress, 7)]))
            default: .status(.einval)
            }
        }
        let client = client(tracker.address)
        for _ in 0..<3 {
            let data = try await client.download(normalID)
            #expect(String(buffer: data) == "hello fdfs")
        }
        #expect(live.commands == [14, 14, 14])
        // After the first failure the dead storage is avoided (no connect attempt, which a
        // storage that hangs on connect would make cost a connect timeout per read).
        let deadAvoided = client.storageHealth.withLock { h in h.isAvoided(deadAddress, at: .now) }
        #expect(deadAvoided)
        // A storage given as a hint that failed recently is also skipped.
        let hinted = try await client.downloadBytes(normalID, storage: deadAddress)
        #expect(String(decoding: hinted, as: UTF8.self) == "hello fdfs")
        await client.shutdown()
        await live.stop()
        await tracker.stop()
    }

    @Test func aStalledStorageIsHedgedWithTheNextOne() async throws {
        let vectors = self.vectors
        let stalled = try await FakeFDFSServer.start { _ in .hang }
        let live = try await FakeFDFSServer.start { _ in .canned(vectors["storage_download_file"].response) }
        let stalledAddress = stalled.address, liveAddress = live.address
        let tracker = try await FakeFDFSServer.start { request in
            switch request.command {
            case .trackerQueryFetchOne: .send(TrackerReplies.queryFetch(stalledAddress))
            case .trackerQueryFetchAll: .send(Self.fetchAll([stalledAddress, liveAddress]))
            case .trackerListStorage: .send(Self.storageList([("127.0.0.98", stalledAddress, 7), ("127.0.0.99", liveAddress, 7)]))
            default: .status(.einval)
            }
        }
        let client = client(tracker.address, stall: .milliseconds(300))
        let clock = ContinuousClock()
        let started = clock.now
        let data = try await client.downloadBytes(normalID)
        #expect(String(decoding: data, as: UTF8.self) == "hello fdfs")
        // Answered by the live storage, not after the 120 s network_timeout (generous: the whole
        // test suite shares this process's threads).
        #expect(started.duration(to: clock.now) < .seconds(60))
        let stalledAvoided = client.storageHealth.withLock { h in h.isAvoided(stalledAddress, at: .now) }
        #expect(stalledAvoided)
        #expect(await eventually { stalled.closedConnections >= 1 }, "the stalled request's connection is closed")
        await client.shutdown()
        await stalled.stop()
        await live.stop()
        await tracker.stop()
    }

    @Test func whenEveryReplicaSaysENOENTTheReadIsENOENT() async throws {
        let a = try await FakeFDFSServer.start { _ in .status(.enoent) }
        let b = try await FakeFDFSServer.start { _ in .status(.enoent) }
        let aa = a.address, bb = b.address
        let tracker = try await FakeFDFSServer.start { request in
            switch request.command {
            case .trackerQueryFetchOne: .send(TrackerReplies.queryFetch(aa))
            case .trackerQueryFetchAll: .send(Self.fetchAll([aa, bb]))
            case .trackerListStorage: .send(Self.storageList([("127.0.0.98", aa, 7), ("127.0.0.99", bb, 7)]))
            default: .status(.einval)
            }
        }
        let client = client(tracker.address)
        let error = await #expect(throws: FastDFSError.self) { _ = try await client.download(normalID) }
        #expect(error?.status == .enoent)
        #expect(a.commands == [14] && b.commands == [14])
        await client.shutdown()
        await a.stop()
        await b.stop()
        await tracker.stop()
    }
}

extension SourceRoutingTests {
    /// The source is down and the replica has not received the file yet: that is "unavailable",
    /// not "no such file".
    @Test func aDeadStoragePlusAnENOENTIsNotENOENT() async throws {
        let dead = try BoundButNotListening()
        defer { dead.close() }
        let deadAddress = dead.address
        let lagging = try await FakeFDFSServer.start { _ in .status(.enoent) }
        let laggingAddress = lagging.address
        let tracker = try await FakeFDFSServer.start { request in
            switch request.command {
            case .trackerQueryFetchOne: .send(TrackerReplies.queryFetch(deadAddress))
            case .trackerQueryFetchAll: .send(Self.fetchAll([deadAddress, laggingAddress]))
            case .trackerListStorage: .send(Self.storageList([("127.0.0.98", deadAddress, 7), ("127.0.0.99", laggingAddress, 7)]))
            default: .status(.einval)
            }
        }
        let client = client(tracker.address)
        let error = await #expect(throws: FastDFSError.self) { _ = try await client.download(normalID) }
        #expect(error?.status != .enoent && error?.errno != LinuxErrno.ENOENT, "\(error?.description ?? "")")
        #expect(error?.code == .connectFailed)
        await client.shutdown()
        await lagging.stop()
        await tracker.stop()
    }
}

@Suite("Source matching and storage health (pure)")
struct SourceMatcherTests {
    let a = StorageAddress(host: "10.0.0.1", port: 23000)
    let b = StorageAddress(host: "10.0.0.2", port: 23000)

    @Test func ipModeMatchesTheListedIdOrAddress() {
        let list = [ListedStorage(id: "10.0.0.1", address: a, status: 7), ListedStorage(id: "10.0.0.2", address: b, status: 7)]
        #expect(SourceMatcher.isSource(a, of: .ipv4("10.0.0.1"), in: list))
        #expect(!SourceMatcher.isSource(b, of: .ipv4("10.0.0.1"), in: list))
        #expect(SourceMatcher.source(for: .ipv4("10.0.0.2"), in: list)?.address == b)
        // Without a list only the IP can be compared.
        #expect(SourceMatcher.isSource(a, of: .ipv4("10.0.0.1"), in: nil))
        #expect(!SourceMatcher.isSource(b, of: .ipv4("10.0.0.1"), in: nil))
    }

    @Test func idModeNeedsTheList() {
        let list = [ListedStorage(id: "100001", address: a, status: 7), ListedStorage(id: "100002", address: b, status: 5)]
        #expect(SourceMatcher.isSource(b, of: .storageID(100002), in: list))
        #expect(!SourceMatcher.isSource(a, of: .storageID(100002), in: list))
        #expect(!SourceMatcher.isSource(a, of: .storageID(100001), in: nil))
        #expect(SourceMatcher.source(for: .storageID(100003), in: list) == nil)
    }

    @Test func aFailedStorageGoesLastUntilItsTimeIsUp() {
        var health = StorageHealth<ContinuousClock.Instant>(avoidFor: .seconds(30))
        let t0 = ContinuousClock.now
        health.failed(a, at: t0)
        let order = health.ordered([a, b, a], at: t0.advanced(by: .seconds(1)))
        #expect(order == [b, a])
        let at29 = health.isAvoided(a, at: t0.advanced(by: .seconds(29)))
        let at30 = health.isAvoided(a, at: t0.advanced(by: .seconds(30)))
        #expect(at29 && !at30)
        health.failed(b, at: t0)
        health.succeeded(b)
        let bAvoided = health.isAvoided(b, at: t0)
        #expect(!bAvoided)
    }
}
