// The client's request/response path against the scripted fake server, with real bytes from
// FastDFS servers (protocol vectors): split replies, hangs, cut replies, dead pooled
// connections, retries, concurrency, routing, version differences.

import FastDFSProtocol
import Foundation
import NIOCore
import Synchronization
import Testing
@testable import FastDFS

@Suite("Client end to end (fake server)")
struct ClientEndToEndTests {
    let vectors: ProtocolVectors
    let uploadedID: FileID

    init() throws {
        vectors = try ProtocolVectors.load("6.16.1")
        var body = ByteBuffer(bytes: vectors["storage_upload_file"].response.dropFirst(FDFSHeader.size))
        uploadedID = try UploadResponse.decode(body: &body).fileID
    }

    func makeClient(_ trackers: [StorageAddress], networkTimeout: Duration = .seconds(10), maxConnections: Int = 4)
        -> FastDFSClient
    {
        var config = FastDFSConfiguration(trackers: trackers)
        config.readStallTimeout = .seconds(3600)  // these tests count requests: no hedging on a loaded machine
        config.networkTimeout = networkTimeout
        config.connectTimeout = .seconds(5)
        config.maxConnectionsPerServer = maxConnections
        config.storageConnectRetries = 0
        return FastDFSClient(configuration: config)
    }

    /// A storage script that answers like the 6.16.1 capture.
    func cannedStorage(_ request: FakeFDFSServer.Request) -> FakeFDFSServer.Reply {
        switch request.command {
        case .storageUploadFile: .canned(vectors["storage_upload_file"].response)
        case .storageDownloadFile: .canned(vectors["storage_download_file"].response)
        case .storageGetMetadata: .canned(vectors["storage_get_metadata"].response)
        case .storageQueryFileInfo: .canned(vectors["storage_query_file_info"].response)
        case .storageSetMetadata, .storageDeleteFile: .ok()
        default: .status(.einval)
        }
    }

    @Test func repliesArrivingOneByteAtATime() async throws {
        let vectors = self.vectors
        let server = try await FakeFDFSServer.start(
            script: TrackerReplies.routing(split: true) { request in
                switch request.command {
                case .storageUploadFile: .sendSplit(ByteBuffer(bytes: vectors["storage_upload_file"].response))
                case .storageDownloadFile: .sendSplit(ByteBuffer(bytes: vectors["storage_download_file"].response))
                case .storageGetMetadata: .sendSplit(ByteBuffer(bytes: vectors["storage_get_metadata"].response))
                default: .status(.einval)
                }
            })
        let client = makeClient([server.address])
        let id = try await client.upload(ByteBuffer(string: "hello fdfs"), ext: "txt")
        #expect(id == uploadedID)
        // The upload went out byte-identical to the C client's.
        let upload = try #require(server.requests.first { $0.command == .storageUploadFile })
        var sent = ByteBuffer()
        upload.header.encode(into: &sent)
        sent.writeImmutableBuffer(upload.body)
        #expect(Array(sent.readableBytesView) == vectors["storage_upload_file"].request)

        let data = try await client.download(id)
        #expect(String(buffer: data) == "hello fdfs")
        let download = try #require(server.requests.first { $0.command == .storageDownloadFile })
        var sentDownload = ByteBuffer()
        download.header.encode(into: &sentDownload)
        sentDownload.writeImmutableBuffer(download.body)
        #expect(Array(sentDownload.readableBytesView) == vectors["storage_download_file"].request)

        let meta = try await client.metadata(of: id)
        #expect(meta.dictionary == ["width": "1024", "height": "768"])
        #expect(server.commands == [101, 11, 92, 102, 14, 103, 15])  // 92: the storage list, once
        #expect(client.sourceStorage(of: id) == server.address)
        await client.shutdown()
        await server.stop()
    }

    @Test func hangingServerTimesOutWithETIMEDOUT() async throws {
        let server = try await FakeFDFSServer.start { _ in .hang }
        let client = makeClient([server.address], networkTimeout: .milliseconds(300))
        let error = await #expect(throws: FastDFSError.self) {
            _ = try await client.download(uploadedID, storage: server.address)
        }
        #expect(error?.code == .timeout)
        #expect(error?.errno == LinuxErrno.ETIMEDOUT)
        #expect(error?.command == .storageDownloadFile)
        #expect(error?.server == server.address)
        await client.shutdown()
        await server.stop()
    }

    /// network_timeout times each request from its own start: a pooled connection that sat idle
    /// longer than the timeout is not timed out by a slow (but in time) reply to its next
    /// request, and a request on it that hangs still times out.
    @Test func networkTimeoutCountsFromEachRequestOnAPooledConnection() async throws {
        let vectors = self.vectors
        let seen = Mutex<[String]>([])
        let server = try await FakeFDFSServer.start { request in
            if request.command == .storageDownloadFile { seen.withLock { $0.append("connection \(request.connection)") } }
            return switch request.index {
            case 0: .canned(vectors["storage_download_file"].response)
            case 1: .sendAfter(.seconds(2), ByteBuffer(bytes: vectors["storage_download_file"].response))
            default: .hang
            }
        }
        // Margins of eight seconds: the whole suite, this fake server's replies too, shares a
        // cooperative pool of 2 threads, which a loaded machine starves for seconds at a time.
        let client = makeClient([server.address], networkTimeout: .seconds(10))
        #expect(String(buffer: try await client.download(uploadedID, storage: server.address)) == "hello fdfs")
        try await Task.sleep(for: .seconds(9))   // idle in the pool for most of the timeout
        // 9 s idle + 2 s reply: over the timeout since the last byte, but 2 s into the request.
        #expect(String(buffer: try await client.download(uploadedID, storage: server.address)) == "hello fdfs")
        try await Task.sleep(for: .seconds(11))   // idle past a whole timeout
        let clock = ContinuousClock(), started = clock.now
        let error = await #expect(throws: FastDFSError.self) {
            _ = try await client.download(uploadedID, storage: server.address)
        }
        #expect(error?.code == .timeout)
        #expect(started.duration(to: clock.now) >= .milliseconds(9_900), "timed from the request's start")
        // (After the timeout the read asks the "tracker", this same server, for other storages.)
        #expect(seen.withLock { $0 } == Array(repeating: "connection 1", count: 3), "one pooled connection for the three downloads")
        await client.shutdown()
        await server.stop()
    }

    @Test func replyCutMidBodyIsACleanErrorAndTheConnectionIsDiscarded() async throws {
        let vectors = self.vectors
        let first = Atomic<Bool>(true)
        let server = try await FakeFDFSServer.start { request in
            if first.exchange(false, ordering: .relaxed) {
                var cut = ByteBuffer(bytes: vectors["storage_download_file"].response)
                cut.moveWriterIndex(to: FDFSHeader.size + 4)  // header says 10 bytes, 4 arrive
                return .sendThenClose(cut)
            }
            return .canned(vectors["storage_download_file"].response)
        }
        let client = makeClient([server.address])
        let error = await #expect(throws: FastDFSError.self) {
            _ = try await client.download(uploadedID, storage: server.address)
        }
        #expect(error?.code == .connectionClosed)
        #expect(error?.errno == LinuxErrno.EIO)
        #expect(error?.description.hasPrefix("DOWNLOAD_FILE on \(server.address) failed: ") == true)
        // Next request works on a new connection.
        let data = try await client.download(uploadedID, storage: server.address)
        #expect(String(buffer: data) == "hello fdfs")
        #expect(server.acceptedConnections == 2)
        await client.shutdown()
        await server.stop()
    }

    @Test func pooledConnectionFoundDeadIsRetriedOnceForIdempotentRequests() async throws {
        let vectors = self.vectors
        let dropped = Atomic<Int>(0)
        let server = try await FakeFDFSServer.start { request in
            // The "restarted" server: the second request on a connection finds it gone.
            if request.index == 1 {
                dropped.add(1, ordering: .relaxed)
                return .closeWithoutReply
            }
            return .canned(vectors["storage_download_file"].response)
        }
        let client = makeClient([server.address])
        _ = try await client.download(uploadedID, storage: server.address)
        let data = try await client.download(uploadedID, storage: server.address)  // retried once
        #expect(String(buffer: data) == "hello fdfs")
        #expect(dropped.load(ordering: .relaxed) == 1)
        #expect(server.acceptedConnections == 2)
        await client.shutdown()
        await server.stop()
    }

    @Test func deadPooledConnectionIsNotRetriedForDelete() async throws {
        let server = try await FakeFDFSServer.start(
            script: TrackerReplies.routing(dropSecondRequest: true) { _ in .ok() })
        let client = makeClient([server.address])
        try await client.setMetadata(["a": "1"], for: uploadedID)  // tracker conn 1, storage conn 2
        let error = await #expect(throws: FastDFSError.self) { try await client.delete(uploadedID) }
        // The tracker query was retried (idempotent); the delete was not (it may have happened).
        #expect(error?.code == .connectionClosed)
        #expect(error?.command == .storageDeleteFile)
        #expect(server.requests.filter { $0.command == .storageDeleteFile }.count == 1)
        #expect(server.requests.filter { $0.command == .trackerQueryUpdate }.count == 3)
        await client.shutdown()
        await server.stop()
    }

    @Test func idleConnectionClosedByServerIsReplacedTransparently() async throws {
        let vectors = self.vectors
        let server = try await FakeFDFSServer.start { _ in .sendThenClose(ByteBuffer(bytes: vectors["storage_download_file"].response)) }
        let client = makeClient([server.address])
        for _ in 0..<3 {
            let data = try await client.download(uploadedID, storage: server.address)
            #expect(String(buffer: data) == "hello fdfs")
        }
        #expect(server.acceptedConnections == 3)
        await client.shutdown()
        await server.stop()
    }

    @Test func idleConnectionIsClosedWhenItsIdleTimeIsUpWithNoOtherCall() async throws {
        let vectors = self.vectors
        let server = try await FakeFDFSServer.start { _ in .canned(vectors["storage_download_file"].response) }
        var config = FastDFSConfiguration(trackers: [server.address])
        config.readStallTimeout = .seconds(3600)
        config.connectionPoolMaxIdleTime = .milliseconds(500)
        let client = FastDFSClient(configuration: config)
        let data = try await client.download(uploadedID, storage: server.address)
        #expect(String(buffer: data) == "hello fdfs")
        let released = ContinuousClock.now
        // Pooled, and still open well before its idle time is up.
        try await Task.sleep(for: .milliseconds(200))
        #expect(server.acceptedConnections == 1 && server.closedConnections == 0)
        // Closed by the pool's idle timer, with no other client call to notice it (the bound
        // is `eventually`'s: a loaded machine can delay the timer, never fire it early).
        #expect(await eventually { server.closedConnections == 1 })
        let elapsed = released.duration(to: .now)
        #expect(elapsed >= .milliseconds(450), "closed after \(elapsed)")
        await client.shutdown()
        await server.stop()
    }

    @Test func uploadAfterTheServerClosedAnIdleConnectionUsesANewOne() async throws {
        // Uploads are not retried once sent, so the pool must drop connections the server closed
        // while they were idle. (A close still in flight while a request is being sent cannot be
        // told apart from a server that died while processing it; that case is not retried.)
        let vectors = self.vectors
        let server = try await FakeFDFSServer.start { _ in
            .sendThenClose(ByteBuffer(bytes: vectors["storage_upload_file"].response))
        }
        let client = makeClient([server.address])
        for _ in 0..<5 {
            let id = try await client.upload(ByteBuffer(string: "hello fdfs"), ext: "txt", storage: server.address)
            #expect(id == uploadedID)
            // Once the client has seen the close, the idle connection leaves its pool.
            let pool = try client.pool(for: server.address, tracker: false)
            #expect(await eventually { pool.counts.idle == 0 })
        }
        #expect(server.acceptedConnections == 5)
        await client.shutdown()
        await server.stop()
    }

    @Test func sixtyFourConcurrentOperations() async throws {
        let server = try await FakeFDFSServer.start(script: TrackerReplies.routing(storageScript: cannedStorage))
        let client = makeClient([server.address], maxConnections: 8)
        let id = uploadedID
        try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<64 {
                group.addTask { String(buffer: try await client.download(id)) }
            }
            var count = 0
            for try await text in group {
                #expect(text == "hello fdfs")
                count += 1
            }
            #expect(count == 64)
        }
        // 8 per pool: tracker pool + storage pool on the same fake address.
        #expect(server.maxOpenConnections <= 16)
        #expect(server.requests.filter { $0.command != .trackerListStorage }.count == 128)
        #expect(server.requests.filter { $0.command == .trackerListStorage }.count == 1, "concurrent reads share one storage list request")
        await client.shutdown()
        await server.stop()
    }

    @Test func trackerFailoverOnConnectFailureOnly() async throws {
        let dead = try BoundButNotListening()  // connect is refused; no parallel test can take the port
        defer { dead.close() }
        let deadAddress = dead.address
        let server = try await FakeFDFSServer.start(script: TrackerReplies.routing(storageScript: cannedStorage))
        let client = makeClient([deadAddress, server.address])
        for _ in 0..<3 {
            let reply = try await client.queryStore()
            #expect(reply.server == server.address)
        }
        // A tracker's error status is final: no failover.
        let enoentServer = try await FakeFDFSServer.start { _ in .status(.enoent) }
        let client2 = makeClient([enoentServer.address, server.address])
        // Two calls rotate over both trackers; the ENOENT one is not failed over to the other.
        var errors: [FastDFSError] = []
        for _ in 0..<2 {
            do { _ = try await client2.queryFetch(uploadedID) } catch { errors.append(error) }
        }
        #expect(errors.count == 1)
        let error = errors.first
        #expect(error?.status == .enoent)
        #expect(error?.server == enoentServer.address)
        #expect(error?.description == "QUERY_FETCH_ONE on \(enoentServer.address) failed: ENOENT (No such file or directory)")
        #expect(enoentServer.requests.count == 1)
        await client.shutdown()
        await client2.shutdown()
        await server.stop()
        await enoentServer.stop()
    }

    @Test func trackerThatGoesAwayBetweenCallsIsFailedOver() async throws {
        let a = try await FakeFDFSServer.start(script: TrackerReplies.routing(storageScript: cannedStorage))
        let b = try await FakeFDFSServer.start(script: TrackerReplies.routing(storageScript: cannedStorage))
        let client = makeClient([a.address, b.address])
        _ = try await client.queryStore()
        _ = try await client.queryStore()  // both trackers now have a pooled connection
        await a.stop()
        for _ in 0..<4 {
            let reply = try await client.queryStore()
            #expect(reply.server == b.address)
        }
        await client.shutdown()
        await b.stop()
    }

    @Test func uploadWithMetadataDeletesTheFileWhenSetMetadataFails() async throws {
        let vectors = self.vectors
        let server = try await FakeFDFSServer.start(
            script: TrackerReplies.routing { request in
                switch request.command {
                case .storageUploadFile: .canned(vectors["storage_upload_file"].response)
                case .storageSetMetadata: .status(.enospc)
                case .storageDeleteFile: .ok()
                default: .status(.einval)
                }
            })
        let client = makeClient([server.address])
        let error = await #expect(throws: FastDFSError.self) {
            _ = try await client.upload(ByteBuffer(string: "hello fdfs"), ext: "txt", metadata: ["k": "v"])
        }
        #expect(error?.command == .storageSetMetadata)
        #expect(error?.status == .enospc)
        #expect(server.commands == [101, 11, 13, 12])
        let upload = try #require(server.requests.first { $0.command == .storageUploadFile })
        let setMeta = try #require(server.requests.first { $0.command == .storageSetMetadata })
        #expect(upload.connection == setMeta.connection)  // same storage connection
        var deleted = try #require(server.requests.first { $0.command == .storageDeleteFile }).body
        #expect(try DeleteRequest.decode(body: &deleted).fileID == uploadedID)
        await client.shutdown()
        await server.stop()
    }

    @Test func oldServerRangePastEOFIsClampedAfterAskingTheSize() async throws {
        // FastDFS 5.12: a range past EOF is EINVAL; the appender's size is not in its name.
        let old = try ProtocolVectors.load("5.12")
        var body = ByteBuffer(bytes: old["storage_upload_appender_file"].response.dropFirst(FDFSHeader.size))
        let appenderID = try UploadResponse.decode(body: &body).fileID
        let server = try await FakeFDFSServer.start { request in
            switch request.command {
            case .storageDownloadFile:
                var b = request.body
                let d = try! DownloadRequest.decode(body: &b)
                if d.offset + d.length > 8 { return .status(.einval) }
                var reply = ByteBuffer()
                FDFSHeader(bodyLength: d.length, command: .response).encode(into: &reply)
                reply.writeString(String("01xy4567".dropFirst(Int(d.offset)).prefix(Int(d.length))))
                return .send(reply)
            case .storageQueryFileInfo:
                return .canned(old["storage_query_file_info_appender"].response)  // size 8
            default:
                return .status(.einval)
            }
        }
        let client = makeClient([server.address])
        let data = try await client.download(appenderID, offset: 2, length: 100, storage: server.address)
        #expect(String(buffer: data) == "xy4567")
        #expect(server.commands == [14, 22, 14])
        // At EOF: no bytes (after the size check), instead of EINVAL.
        let empty = try await client.download(appenderID, offset: 8, length: 4, storage: server.address)
        #expect(empty.readableBytes == 0)
        // The byte-array variant takes the same path (clamp, size check, EOF).
        #expect(try await client.downloadBytes(appenderID, offset: 2, length: 100, storage: server.address) == Array("xy4567".utf8))
        #expect(try await client.downloadBytes(appenderID, offset: 8, length: 4, storage: server.address).isEmpty)
        await client.shutdown()
        await server.stop()
    }

    @Test func normalFileRangesAreClampedToTheSizeInTheName() async throws {
        let vectors = self.vectors
        let server = try await FakeFDFSServer.start { request in
            switch request.command {
            case .storageDownloadFile: .canned(vectors["storage_download_file_range"].response)
            case .storageQueryFileInfo: .canned(vectors["storage_query_file_info"].response)
            default: .status(.einval)
            }
        }
        let client = makeClient([server.address])
        // 10-byte file: offset 5 + 100 is sent as offset 5 + 5.
        _ = try await client.download(uploadedID, offset: 5, length: 100, storage: server.address)
        var b = server.requests[0].body
        let sent = try DownloadRequest.decode(body: &b)
        #expect(sent.offset == 5 && sent.length == 5)
        // offset == size: only an existence check, empty result (6.16.1 would say EINVAL).
        let empty = try await client.download(uploadedID, offset: 10, storage: server.address)
        #expect(empty.readableBytes == 0)
        #expect(server.commands == [14, 22])
        await client.shutdown()
        await server.stop()
    }

    @Test func cancellationClosesTheConnectionInUse() async throws {
        let server = try await FakeFDFSServer.start { _ in .hang }
        let client = makeClient([server.address])
        let id = uploadedID
        let address = server.address
        let task = Task { try await client.download(id, storage: address) }
        #expect(await eventually { !server.requests.isEmpty })
        task.cancel()
        let result = await task.result
        #expect(throws: FastDFSError.self) { try result.get() }
        if case .failure(let error as FastDFSError) = result {
            #expect(error.code == .cancelled)
        }
        #expect(await eventually { server.closedConnections >= 1 })
        #expect(server.closedConnections == 1)
        // The cancelled read asks no other storage (its stall watchdog ends with it).
        #expect(server.requests.count == 1)
        await client.shutdown()
        await server.stop()
    }

    @Test func streamedFileUploadAndDownload() async throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let testSize = Int(ProcessInfo.processInfo.environment["FDFS_TEST_SIZE"] ?? "") ?? (1 << 20) + 123
        var content = [UInt8]()
        for i in 0..<(testSize) { content.append(UInt8(truncatingIfNeeded: i &* 31 &+ 7)) }
        let path = dir.path("big.bin")
        try Data(content).write(to: URL(fileURLWithPath: path))
        let stored = Mutex<ByteBuffer?>(nil)
        let vectors = self.vectors
        let server = try await FakeFDFSServer.start { request in
            switch request.command {
            case .storageUploadFile:
                var body = request.body
                body.moveReaderIndex(forwardBy: UploadRequestHead.fixedSize)
                stored.withLock { $0 = body }
                return .canned(vectors["storage_upload_file"].response)
            case .storageDownloadFile:
                let data = stored.withLock { $0 }!
                return .send(FDFSPacket.response(status: 0, body: data))
            default:
                return .status(.einval)
            }
        }
        let client = makeClient([server.address], networkTimeout: .seconds(30))  // generous: the machine may be busy; a hang still fails
        let id = try await client.upload(filePath: path, storage: server.address)
        #expect(id == uploadedID)
        var head = server.requests[0].body
        let decodedHead = try #require(try UploadRequestHead.decode(head: &head, bodyLength: Int64(server.requests[0].body.readableBytes)))
        #expect(decodedHead.ext == "bin")
        #expect(decodedHead.storePathIndex == 0xFF)
        let storedMatches = Array(stored.withLock { $0 }!.readableBytesView) == content
        #expect(storedMatches)

        // Streamed download into a file (the fake answers a to-EOF request with everything it has).
        let out = dir.path("out.bin")
        let written = try await client.download(uploadedID, toFile: out, storage: server.address)
        #expect(written == Int64(content.count))
        let downloaded = try [UInt8](Data(contentsOf: URL(fileURLWithPath: out)))
        let downloadMatches = downloaded == content
        #expect(downloadMatches)
        await client.shutdown()
        await server.stop()
    }

    @Test func downloadStreamOfAMultiChunkBodyAndAbandonedStream() async throws {
        let old = try ProtocolVectors.load("6.16.1")
        var body = ByteBuffer(bytes: old["storage_upload_appender_file"].response.dropFirst(FDFSHeader.size))
        let appenderID = try UploadResponse.decode(body: &body).fileID  // size unknown locally
        let size = 3 << 20
        let payload = ByteBuffer(repeating: 0x5A, count: size)
        let server = try await FakeFDFSServer.start { _ in .send(FDFSPacket.response(status: 0, body: payload)) }
        let client = makeClient([server.address])
        var total = 0
        var chunks = 0
        for try await chunk in client.downloadStream(appenderID, storage: server.address) {
            #expect(chunk.readableBytesView.allSatisfy { $0 == 0x5A })
            total += chunk.readableBytes
            chunks += 1
        }
        #expect(total == size)
        #expect(chunks > 1)  // streamed, not one buffer
        // Abandon a stream after the first chunk: its connection is closed, not pooled.
        do {
            var iterator = client.downloadStream(appenderID, storage: server.address).makeAsyncIterator()
            _ = try await iterator.next()
        }
        #expect(await eventually { server.closedConnections >= 1 })
        // The pool still works (a new connection for the next request).
        let again = try await client.download(appenderID, storage: server.address)
        #expect(again.readableBytes == size)
        await client.shutdown()
        await server.stop()
    }

    @Test func appenderOperationsRouteThroughQueryUpdate() async throws {
        let old = try ProtocolVectors.load("6.16.1")
        var body = ByteBuffer(bytes: old["storage_upload_appender_file"].response.dropFirst(FDFSHeader.size))
        let appenderID = try UploadResponse.decode(body: &body).fileID
        guard case .ipv4(let sourceIP) = try FastDFSClient.decode(appenderID).source else { Issue.record("not an IP source"); return }
        let server = try await FakeFDFSServer.start(
            script: TrackerReplies.routing(storageID: sourceIP) { request in
                switch request.command {
                case .storageAppendFile, .storageModifyFile, .storageTruncateFile: .ok()
                case .storageRegenerateAppenderFilename: .canned(old["storage_regenerate_appender_filename"].response)
                default: .status(.einval)
                }
            })
        let client = makeClient([server.address])
        try await client.append(ByteBuffer(string: "ABCDE"), to: appenderID)
        try await client.modify(ByteBuffer(string: "xy"), in: appenderID, at: 2)
        try await client.truncate(appenderID, to: 8)
        let newID = try await client.regenerateAppenderFilename(appenderID)
        #expect(newID != appenderID)
        // Each change is checked against the source named in the id: the group's storage list is
        // read once (LIST_STORAGE, cached), and lists this server as that source.
        #expect(server.commands == [103, 92, 24, 103, 34, 103, 36, 103, 38])
        for op in ["storage_append_file", "storage_modify_file", "storage_truncate_file", "storage_regenerate_appender_filename"] {
            let cmd = old[op].request[8]
            let request = try #require(server.requests.first { $0.header.command == cmd })
            var sent = ByteBuffer()
            request.header.encode(into: &sent)
            sent.writeImmutableBuffer(request.body)
            #expect(Array(sent.readableBytesView) == old[op].request, "\(op)")
        }
        // A normal file is refused locally with a clear message.
        let error = await #expect(throws: FastDFSError.self) { try await client.append(ByteBuffer(string: "x"), to: uploadedID) }
        #expect(error?.errno == LinuxErrno.EINVAL)
        #expect(error?.message.contains("not an appender file") == true)
        await client.shutdown()
        await server.stop()
    }
}

