// The tracker's choice of storage for QUERY_UPDATE, QUERY_FETCH_ONE and QUERY_FETCH_ALL, driven
// through the handler with file names built for the case (source, timestamp, kind) and sync
// timestamps set directly: tracker_mem.c `tracker_mem_get_storage_by_filename` (reference §3.3,
// §3.4, Appendix).

import FastDFSProtocol
import Foundation
import NIOCore
import Testing

@testable import FastDFSDevServer

/// A cluster of `n` ACTIVE storages and its tracker, with helpers to ask it.
struct TrackerBench {
    let cluster: ClusterState
    let dir: String
    var tracker: TrackerHandler { TrackerHandler(cluster: cluster) }
    var nodes: [StorageNode] { cluster.allNodes }

    init(storages: Int, configure: (inout DevServerConfiguration) -> Void = { _ in }) throws {
        (cluster, dir) = try makeCluster(storagesPerGroup: storages, configure: configure)
    }

    /// A name as `source` would create it (nothing needs to exist on disk: the tracker never looks).
    func name(source: StorageNode?, sourceField: UInt32? = nil, timestamp: Int64, appender: Bool = false) -> String {
        FileNaming.makeName(
            source: sourceField ?? source!.sourceField, timestamp: timestamp, size: 10, appender: appender,
            crc32: 1, storePathIndex: 0, sub1: 0, sub2: 0, ext7: "123.txt")
    }

    func query(_ command: UInt8, _ name: String) throws -> [StorageAddress] {
        let r = reply(tracker.handle(command: command, status: 0, body: ByteBuffer(bytes: Req.fixed("group1", 16) + Req.bytes(name))))!
        guard r.status == 0 else { throw TestFailure("status \(r.status)") }
        var body = r.body
        if command == 105 { return try QueryFetchAllResponse.decode(body: &body).servers }
        return [try QueryFetchResponse.decode(body: &body).server]
    }

    func status(_ command: UInt8, _ name: String) -> UInt8 {
        reply(tracker.handle(command: command, status: 0, body: ByteBuffer(bytes: Req.fixed("group1", 16) + Req.bytes(name))))!.status
    }

    func setOffline(_ i: Int) { nodes[i].runtime.withLockedValue { $0.status = StorageStatusCode.offline } }
    func address(_ i: Int) -> StorageAddress { nodes[i].address }

    func remove() { try? FileManager.default.removeItem(atPath: dir) }
}

@Suite("Tracker queries like tracker_mem.c")
struct TrackerQueryTests {
    let now = WallClock.seconds()

    @Test("QUERY_UPDATE: the source while ACTIVE, else any writable storage by round robin, file or not")
    func update() throws {
        let b = try TrackerBench(storages: 3)
        defer { b.remove() }
        let file = b.name(source: b.nodes[0], timestamp: now, appender: true)
        #expect(try b.query(103, file) == [b.address(0)])
        #expect(try b.query(103, file) == [b.address(0)])
        b.setOffline(0)
        // Neither storage has the file (nothing is on disk at all): they are handed out anyway.
        let picks = try (0..<4).map { _ in try b.query(103, file)[0] }
        #expect(Set(picks) == Set([b.address(1), b.address(2)]))
        #expect(picks[0] != picks[1] && picks[0] == picks[2])
        b.setOffline(1)
        b.setOffline(2)
        #expect(b.status(103, file) == FDFSErrno.enoent.rawValue)
    }

    @Test("FETCH_ONE, appender and slave files: the source while ACTIVE, else the store server, lagging or not")
    func fetchOneAppender() throws {
        let b = try TrackerBench(storages: 3)
        defer { b.remove() }
        let appender = b.name(source: b.nodes[1], timestamp: now - 1_000_000, appender: true)
        for _ in 0..<3 { #expect(try b.query(102, appender) == [b.address(1)]) }
        let slave = String(b.name(source: b.nodes[1], timestamp: now).dropLast(4)) + "_s.txt"
        #expect(try b.query(102, slave) == [b.address(1)])
        b.setOffline(1)
        // The store server is the first ACTIVE storage in the tracker's order, every time.
        for _ in 0..<3 { #expect(try b.query(102, appender) == [b.address(0)]) }
        #expect(try b.query(105, appender) == [b.address(0)])
        b.setOffline(0)
        #expect(try b.query(102, appender) == [b.address(2)])
    }

    @Test("FETCH_ONE, normal files: round robin over storages that pass the sync test, else the source")
    func fetchOneNormal() throws {
        let b = try TrackerBench(storages: 2)
        defer { b.remove() }
        // A fresh file: the replica's synced timestamp is 0, so only the source is handed out.
        let fresh = b.name(source: b.nodes[1], timestamp: now)
        for _ in 0..<4 { #expect(try b.query(102, fresh) == [b.address(1)]) }
        // Older than storage_sync_file_max_delay: any storage, round robin.
        let old = b.name(source: b.nodes[1], timestamp: now - 86401)
        let picks = try (0..<4).map { _ in try b.query(102, old)[0] }
        #expect(Set(picks) == Set([b.address(0), b.address(1)]) && picks[0] != picks[1])
        // The replica synced past the file's timestamp: round robin too.
        b.cluster.recordSynced(source: b.nodes[1].id, dest: b.nodes[0].id, timestamp: now + 1)
        #expect(Set(try (0..<2).map { _ in try b.query(102, fresh)[0] }) == Set([b.address(0), b.address(1)]))
        // The source goes down: a fresh file whose replica is not synced goes to the store
        // server (here the lagging replica itself).
        let fresher = b.name(source: b.nodes[1], timestamp: now + 5)
        b.setOffline(1)
        #expect(try b.query(102, fresher) == [b.address(0)])
    }

    @Test("the sync test: max delay, synced later than the file, or 1 s behind and older than max time")
    func syncTest() throws {
        let b = try TrackerBench(storages: 2)
        defer { b.remove() }
        let source = b.nodes[0], replica = b.nodes[1]
        func listed(_ ts: Int64) throws -> Bool { try b.query(105, b.name(source: source, timestamp: ts)).contains(b.address(1)) }
        let ts = now - 400  // older than storage_sync_file_max_time (300 s)
        b.cluster.recordSynced(source: source.id, dest: replica.id, timestamp: ts - 1)
        #expect(try listed(ts))  // synced + 1 >= ts and the file is older than max time
        #expect(try !listed(ts + 1))  // 2 s behind
        b.cluster.recordSynced(source: source.id, dest: replica.id, timestamp: now - 10)
        #expect(try !listed(now - 10))  // equal, and younger than max time
        #expect(try listed(now - 11))  // synced later than the file
        #expect(try listed(now - 86401))  // older than max delay
    }

    @Test("last_synced_timestamp: the minimum over ACTIVE sources that reported; none: the previous value")
    func lastSynced() throws {
        let b = try TrackerBench(storages: 3)
        defer { b.remove() }
        let dest = b.nodes[2]
        #expect(b.cluster.lastSyncedTimestamp(dest) == 0)
        b.cluster.recordSynced(source: b.nodes[0].id, dest: dest.id, timestamp: 1000)
        #expect(b.cluster.lastSyncedTimestamp(dest) == 1000)
        b.cluster.recordSynced(source: b.nodes[1].id, dest: dest.id, timestamp: 900)
        #expect(b.cluster.lastSyncedTimestamp(dest) == 900)
        b.setOffline(1)  // an inactive source does not count
        #expect(b.cluster.lastSyncedTimestamp(dest) == 1000)
        b.setOffline(0)  // no ACTIVE source reported: the previous value stays
        #expect(b.cluster.lastSyncedTimestamp(dest) == 1000)
        // The stat record carries it.
        let stat = b.tracker.storageStat(dest, in: b.cluster.groups[0])
        #expect(stat.lastSyncedTimestamp == 1000)
    }

    @Test("a sync report counts when it is made: the source going down afterwards does not undo it")
    func reportAtSyncTime() throws {
        let b = try TrackerBench(storages: 2)
        defer { b.remove() }
        b.cluster.recordSynced(source: b.nodes[0].id, dest: b.nodes[1].id, timestamp: 1234)
        b.setOffline(0)
        #expect(b.cluster.lastSyncedTimestamp(b.nodes[1]) == 1234)
    }

    @Test("FETCH_ALL: storages that pass the sync test plus the source; appenders only the source")
    func fetchAll() throws {
        let b = try TrackerBench(storages: 3)
        defer { b.remove() }
        let fresh = b.name(source: b.nodes[1], timestamp: now)
        #expect(try b.query(105, fresh) == [b.address(1)])
        b.cluster.recordSynced(source: b.nodes[1].id, dest: b.nodes[2].id, timestamp: now + 1)
        #expect(try b.query(105, fresh) == [b.address(1), b.address(2)])
        let appender = b.name(source: b.nodes[1], timestamp: now - 1_000_000, appender: true)
        #expect(try b.query(105, appender) == [b.address(1)])
        b.setOffline(1)
        // Nothing qualifies: the store server.
        #expect(try b.query(105, b.name(source: b.nodes[1], timestamp: now + 2)) == [b.address(0)])
    }

    @Test("a source the tracker does not know: update by round robin, fetch the store server")
    func unknownSource() throws {
        let b = try TrackerBench(storages: 2)
        defer { b.remove() }
        // 10.0.0.1: an address no storage has (a file from another cluster, or an old data
        // directory whose storages had other addresses).
        let stranger = FDFSFilename.sourceField(ipv4: "10.0.0.1")!
        let normal = b.name(source: nil, sourceField: stranger, timestamp: now)
        let appender = b.name(source: nil, sourceField: stranger, timestamp: now, appender: true)
        let updates = try (0..<2).map { _ in try b.query(103, normal)[0] }
        #expect(Set(updates) == Set([b.address(0), b.address(1)]))
        #expect(try b.query(102, appender) == [b.address(0)])
        #expect(try b.query(102, normal) == [b.address(0)])
        #expect(try b.query(105, normal) == [b.address(0)])
        #expect(try b.query(105, appender) == [b.address(0)])
        // An unknown storage id behaves the same.
        let unknownID = b.name(source: nil, sourceField: FDFSFilename.sourceField(storageID: 123), timestamp: now, appender: true)
        #expect(try b.query(102, unknownID) == [b.address(0)])
    }

    @Test("names too short to carry a source (< 39 characters): any ACTIVE storage")
    func shortNames() throws {
        let b = try TrackerBench(storages: 2)
        defer { b.remove() }
        let short = "M00/00/00/abcdefghijklmnopqrstuvwxyz.txt".prefix(38)
        let picks = try (0..<2).map { _ in try b.query(102, String(short))[0] }
        #expect(Set(picks) == Set([b.address(0), b.address(1)]))
        #expect(try Set(b.query(105, String(short))) == Set([b.address(0), b.address(1)]))
    }

    @Test("ID mode: the source is found by storage id; fetch-all compares IP text, so the source needs the sync test")
    func idMode() throws {
        let b = try TrackerBench(storages: 2) { $0.useStorageIDs = true }
        defer { b.remove() }
        let appender = b.name(source: b.nodes[1], timestamp: now, appender: true)
        #expect(try FileIDInfo.decode(filename: appender).source == .storageID(100002))
        #expect(try b.query(103, appender) == [b.address(1)])
        #expect(try b.query(102, appender) == [b.address(1)])
        let fresh = b.name(source: b.nodes[1], timestamp: now)
        for _ in 0..<2 { #expect(try b.query(102, fresh) == [b.address(1)]) }
        // Neither storage passes the sync test and the id is not an IP: the store server.
        #expect(try b.query(105, fresh) == [b.address(0)])
    }
}
