// Tracker answers, replication with lag, persistence across restarts, storage stop/restart,
// and every compat layout — over raw sockets.

import FastDFSProtocol
import Foundation
import NIOCore
import Testing

@testable import FastDFSDevServer

func decode<T>(_ reply: RawReply, _ f: (inout ByteBuffer) throws -> T) throws -> T {
    var b = ByteBuffer(bytes: reply.body)
    return try f(&b)
}

@Suite("Tracker, replication, restarts and layouts")
struct ClusterBehaviourTests {
    @Test("replication lag: fetch-one and fetch-all give the source until the replica's sync timestamp passes the file's")
    func replicationLag() async throws {
        // A lag far longer than the test needs, so the replica cannot have the file yet.
        try await withDevServer(storagesPerGroup: 2, replicationLag: 3600) { (server: DevServer) async throws in
            let t = server.trackerAddress
            let (g, n) = try await rawUpload(server, Req.bytes("replicate me"))
            let all = try await rawReply(t, Req.queryFetch(105, g, n))
            let fetched = try decode(all) { try QueryFetchAllResponse.decode(body: &$0) }
            #expect(fetched.servers == [server.firstStorage])
            for _ in 0..<4 {
                let one = try decode(try await rawReply(t, Req.queryFetch(102, g, n))) {
                    try QueryFetchResponse.decode(body: &$0)
                }
                #expect(one.server == server.firstStorage)
            }
            let second = server.storageIDs[1]
            #expect(try await rawReply(server.storageAddress(second)!, Req.download(g, n)).status == FDFSErrno.enoent.rawValue)
            #expect(!server.replicationIsIdle)
        }
        // Without lag the replica gets the file (and later operations) and fetch-all lists both.
        try await withDevServer(storagesPerGroup: 2, replicationLag: 0) { (server: DevServer) async throws in
            let t = server.trackerAddress
            let replica = server.storageAddress(server.storageIDs[1])!
            let (g, n) = try await rawUpload(server, Req.bytes("0123"), appender: true)
            #expect(try await rawReply(server.firstStorage, Req.append(n, Req.bytes("45"))).status == 0)
            #expect(try await rawReply(server.firstStorage, Req.setMetadata(g, n, Req.bytes("k\u{02}v"))).status == 0)
            try await server.waitForReplication()
            #expect(try await rawReply(replica, Req.download(g, n)).bodyString == "012345")
            #expect(try await rawReply(replica, Req.groupAndName(15, g, n)).bodyString == "k\u{02}v")
            let (_, normal) = try await rawUpload(server, Req.bytes("normal"))
            try await server.waitForReplication()
            #expect(try await rawReply(replica, Req.download(g, normal)).bodyString == "normal")
            // The replica has the file, but the timestamp of the last record it got is not later
            // than the file's: the real tracker lists only the source.
            let before = try decode(try await rawReply(t, Req.queryFetch(105, g, normal))) {
                try QueryFetchAllResponse.decode(body: &$0)
            }
            #expect(before.servers == [server.firstStorage])
            // A record from a later second reaches the replica: now it is listed too.
            let fileSecond = try FileIDInfo.decode(filename: normal).createTime
            while WallClock.seconds() <= fileSecond { try await Task.sleep(for: .milliseconds(50)) }
            _ = try await rawUpload(server, Req.bytes("later"))
            try await server.waitForReplication()
            let all = try decode(try await rawReply(t, Req.queryFetch(105, g, normal))) {
                try QueryFetchAllResponse.decode(body: &$0)
            }
            #expect(Set(all.servers) == Set([server.firstStorage, replica]))
            #expect(try await rawReply(t, Req.queryFetch(105, g, normal)).body.count == 16 + 2 * 23)
            #expect(try await rawReply(server.firstStorage, Req.groupAndName(12, g, normal)).status == 0)
            try await server.waitForReplication()
            #expect(try await rawReply(replica, Req.download(g, normal)).status == FDFSErrno.enoent.rawValue)
            // Updates go to the source.
            let update = try decode(try await rawReply(t, Req.queryFetch(103, g, n))) {
                try QueryFetchResponse.decode(body: &$0)
            }
            #expect(update.server == server.firstStorage)
        }
    }

    @Test("modify, truncate and regenerate reach the replica too")
    func replicatedAppenderOps() async throws {
        try await withDevServer(storagesPerGroup: 3) { (server: DevServer) async throws in
            let s = server.firstStorage
            let replicas = server.storageIDs.dropFirst().compactMap(server.storageAddress)
            let (g, n) = try await rawUpload(server, Req.bytes("abcdef"), appender: true)
            #expect(try await rawReply(s, Req.modify(n, offset: 1, Req.bytes("XY"))).status == 0)
            #expect(try await rawReply(s, Req.truncate(n, to: 5)).status == 0)
            try await server.waitForReplication()
            for r in replicas { #expect(try await rawReply(r, Req.download(g, n)).bodyString == "aXYde") }
            let regen = try await rawReply(s, Req.regenerate(n))
            let new = String(decoding: regen.body.dropFirst(16), as: UTF8.self)
            try await server.waitForReplication()
            for r in replicas {
                #expect(try await rawReply(r, Req.download(g, new)).bodyString == "aXYde")
                #expect(try await rawReply(r, Req.download(g, n)).status == FDFSErrno.enoent.rawValue)
            }
        }
    }

    @Test("state survives a restart: files, metadata, appenders, and the source of each file")
    func persistence() async throws {
        let dir = makeTemporaryDirectory("persist")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (g, n, a) = try await withDevServer(storagesPerGroup: 2, dataDirectory: dir) { (server: DevServer) async throws in
            let (g, n) = try await rawUpload(server, Req.bytes("persistent"))
            #expect(try await rawReply(server.firstStorage, Req.setMetadata(g, n, Req.bytes("a\u{02}1"))).status == 0)
            let (_, a) = try await rawUpload(server, Req.bytes("app"), appender: true)
            try await server.waitForReplication()
            return (g, n, a)
        }
        try await withDevServer(storagesPerGroup: 2, dataDirectory: dir) { (server: DevServer) async throws in
            #expect(try await rawReply(server.firstStorage, Req.download(g, n)).bodyString == "persistent")
            #expect(try await rawReply(server.firstStorage, Req.groupAndName(15, g, n)).bodyString == "a\u{02}1")
            #expect(try await rawReply(server.firstStorage, Req.append(a, Req.bytes("end"))).status == 0)
            #expect(try await rawReply(server.firstStorage, Req.download(g, a)).bodyString == "append")
            let update = try decode(try await rawReply(server.trackerAddress, Req.queryFetch(103, g, a))) {
                try QueryFetchResponse.decode(body: &$0)
            }
            #expect(update.server == server.firstStorage)
        }
    }

    @Test("a second server on the same data directory is refused with a clear error")
    func dataDirectoryLock() async throws {
        let dir = makeTemporaryDirectory("lock")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await withDevServer(dataDirectory: dir) { (_: DevServer) async throws in
            let second = try DevServer(configuration: .ephemeral(dataDirectory: dir))
            await #expect(throws: DevServerError.self) { try await second.start() }
        }
        // Released on stop: a new server can use the directory.
        try await withDevServer(dataDirectory: dir) { (server: DevServer) async throws in
            #expect(try await rawReply(server.trackerAddress, Req.packet(111)).status == 0)
        }
    }

    @Test("stop and restart one storage: refused while stopped, same port after, tracker follows")
    func storageRestart() async throws {
        try await withDevServer { (server: DevServer) async throws in
            let id = server.storageIDs[0]
            let address = server.firstStorage
            let (g, n) = try await rawUpload(server, Req.bytes("before"))
            try await server.stopStorage(id)
            await #expect(throws: (any Error).self) { _ = try await rawRequest(address, Req.packet(111)) }
            #expect(try await rawReply(server.trackerAddress, Req.packet(101)).status == FDFSErrno.enoent.rawValue)
            try await server.startStorage(id)
            #expect(server.firstStorage == address)
            #expect(try await rawReply(address, Req.download(g, n)).bodyString == "before")
            #expect(try await rawReply(server.trackerAddress, Req.packet(101)).status == 0)
        }
    }

    @Test("tracker stop and start: refused in between, same port after, storages unaffected")
    func trackerRestart() async throws {
        try await withDevServer { (server: DevServer) async throws in
            let t = server.trackerAddress
            try await server.stopTracker()
            await #expect(throws: (any Error).self) { _ = try await rawRequest(t, Req.packet(111)) }
            #expect(try await rawReply(server.firstStorage, Req.packet(111)).status == 0)
            try await server.startTracker()
            #expect(server.trackerAddress == t)
            #expect(try await rawReply(t, Req.packet(101)).status == 0)
        }
    }

    @Test("a connection open across a storage restart is closed by the server")
    func connectionAcrossRestart() async throws {
        try await withDevServer { (server: DevServer) async throws in
            try await RawConnection.with(server.firstStorage) { c in
                guard case .reply(let r) = try await c.request(Req.packet(111)) else { throw TestFailure("closed") }
                #expect(r.status == 0)
                try await server.restartStorage(server.storageIDs[0])
                #expect(try await c.isClosedByServer())
            }
            #expect(try await rawReply(server.firstStorage, Req.packet(111)).status == 0)
        }
    }

    @Test("tracker: store queries, groups, servers, errors", arguments: CompatLevel.allCases)
    func trackerLayouts(compat: CompatLevel) async throws {
        try await withDevServer(groups: 2, storagesPerGroup: 2, compat: compat) { (server: DevServer) async throws in
            let t = server.trackerAddress
            let p = compat.profile
            let w = p.trackerIPWidth
            #expect(try await rawReply(t, Req.packet(101)).body.count == 16 + w + 8 + 1)
            let one = try await rawReply(t, Req.packet(104, Req.fixed("group2", 16)))
            let store = try decode(one) { try QueryStoreResponse.decode(body: &$0) }
            #expect(store.group == "group2" && store.ipWidth == w)
            #expect(server.storageIDs.compactMap(server.storageAddress).contains(store.server))
            #expect(try await rawReply(t, Req.packet(107, Req.fixed("group1", 16))).body.count == 16 + 2 * (w + 8) + 1)
            #expect(try await rawReply(t, Req.packet(104, Req.fixed("nogroup", 16))).status == FDFSErrno.enoent.rawValue)
            let groupSize = p.groupStatLayout.recordSize
            let groups = try await rawReply(t, Req.packet(91))
            #expect(groups.body.count == 2 * groupSize)
            let stats = try decode(groups) { try GroupStat.decodeList(body: &$0) }
            #expect(stats.map(\.name) == ["group1", "group2"])
            #expect(stats[0].storageCount == 2 && stats[0].totalMB > 0 && stats[0].freeMB > 0)
            #expect(try await rawReply(t, Req.packet(90, Req.fixed("group1", 16))).body.count == groupSize)
            let servers = try await rawReply(t, Req.packet(92, Req.fixed("group1", 16)))
            #expect(servers.body.count == 2 * p.storageStatLayout.recordSize)
            let storageStats = try decode(servers) { try StorageStat.decodeList(body: &$0) }
            // IP mode: the id field is the storage's own address.
            let group1 = server.storageIDs.filter { $0.group == "group1" }.compactMap(server.storageAddress).map(\.host)
            #expect(storageStats.map(\.ipAddress) == group1 && storageStats.map(\.id) == group1)
            #expect(storageStats.allSatisfy { $0.status == 7 })
            #expect(try await rawReply(t, Req.packet(92, Req.fixed("group1", 16) + Req.bytes("nope"))).status == FDFSErrno.enoent.rawValue)
            // EINVAL for a bad body; the 5.x tracker closes afterwards, later ones don't.
            try await RawConnection.with(t) { c in
                guard case .reply(let r) = try await c.request(Req.packet(101, [1])) else { throw TestFailure("closed") }
                #expect(r.status == FDFSErrno.einval.rawValue)
                if p.trackerClosesAfterEINVAL {
                    #expect(try await c.isClosedByServer())
                } else {
                    guard case .reply(let ok) = try await c.request(Req.packet(111)) else { throw TestFailure("closed") }
                    #expect(ok.status == 0)
                }
            }
            // File info layout.
            let (g, n) = try await rawUpload(server, Req.bytes("x"))
            #expect(try await rawReply(server.firstStorage, Req.groupAndName(22, g, n)).body.count == 24 + p.fileInfoIPWidth)
            // 6.16 fetch-all has a port per server; older ones share the first port.
            let status98 = try await rawReply(t, Req.packet(98, [0, 0, 0, 0])).status
            #expect(status98 == (p.supportsClusterStatCommands ? 0 : FDFSErrno.einval.rawValue))
        }
    }

    @Test("disk numbers in group stats come from statvfs of the data directory")
    func diskNumbers() async throws {
        try await withDevServer { (server: DevServer) async throws in
            // Other processes write to the same filesystem meanwhile: bracket the reply's number
            // between a reading before and one after.
            let before = server.cluster.allNodes[0].disk.diskSpace()
            let stats = try decode(try await rawReply(server.trackerAddress, Req.packet(91))) {
                try GroupStat.decodeList(body: &$0)
            }
            let after = server.cluster.allNodes[0].disk.diskSpace()
            #expect(stats[0].totalMB == after.totalMB)
            let low = min(before.freeMB, after.freeMB) - 16, high = max(before.freeMB, after.freeMB) + 16
            #expect((low...high).contains(stats[0].freeMB), "free \(stats[0].freeMB) MB outside \(low)...\(high)")
        }
    }
}
