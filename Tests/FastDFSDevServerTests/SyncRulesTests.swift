// How one binlog record is applied to a peer (SyncApply.swift), record by record, on two storages
// of a cluster without listeners: what the source sends (its current file) and when the
// destination applies or skips it (storage_service.c `storage_sync_*`, storage_sync.c).

import FastDFSProtocol
import Foundation
import NIOCore
import Testing

@testable import FastDFSDevServer

/// Storage 1 (source) and storage 2 (peer) of one group, their binlogs and a replicator 1 → 2.
struct SyncBench {
    let cluster: ClusterState
    let dir: String
    let replicator: Replicator
    var source: StorageNode { cluster.allNodes[0] }
    var peer: StorageNode { cluster.allNodes[1] }
    var peerLog: ReplicationLog { replicator.peerLog }

    init(configure: (inout DevServerConfiguration) -> Void = { _ in }) throws {
        (cluster, dir) = try makeCluster(storagesPerGroup: 2, configure: configure)
        let nodes = cluster.allNodes
        replicator = Replicator(
            source: nodes[0], peer: nodes[1], log: ReplicationLog(directory: nodes[0].disk.syncDirectory),
            peerLog: ReplicationLog(directory: nodes[1].disk.syncDirectory), cluster: cluster)
    }

    /// An appender name (the rules do not care who made it).
    func appenderName() -> String {
        FileNaming.makeName(
            source: source.sourceField, timestamp: WallClock.seconds(), size: 0, appender: true, crc32: 0,
            storePathIndex: 0, sub1: 0, sub2: 0, ext7: "123.log")
    }

    func write(_ node: StorageNode, _ name: String, _ text: String) throws {
        let path = node.disk.path(of: StoredFilename.validate(name)!)
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    func read(_ node: StorageNode, _ name: String) -> String? {
        FileManager.default.contents(atPath: node.disk.path(of: StoredFilename.validate(name)!))
            .map { String(decoding: $0, as: UTF8.self) }
    }

    func apply(_ op: SyncOperation) -> SyncOutcome {
        replicator.apply(BinlogRecord(milliseconds: 1_700_000_000_123, op: op, isReplica: false, end: 0))
    }

    func peerRecords() -> [SyncOperation] { peerLog.records(from: 0).filter(\.isReplica).map(\.op) }

    func remove() { try? FileManager.default.removeItem(atPath: dir) }
}

@Suite("Replication rules, record by record")
struct SyncRulesTests {
    @Test("create: copied when missing, kept when the same size, overwritten when not; not sent when gone")
    func create() throws {
        let b = try SyncBench()
        defer { b.remove() }
        let n = b.appenderName()
        #expect(b.apply(.create(n)) == .notSent)  // the source no longer has it
        try b.write(b.source, n, "abc")
        #expect(b.apply(.create(n)) == .delivered)
        #expect(b.read(b.peer, n) == "abc")
        try b.write(b.peer, n, "xyz")
        #expect(b.apply(.create(n)) == .delivered)
        #expect(b.read(b.peer, n) == "xyz", "same size: the destination keeps its copy (EEXIST)")
        try b.write(b.peer, n, "xy")
        #expect(b.apply(.create(n)) == .delivered)
        #expect(b.read(b.peer, n) == "abc", "another size: overwritten")
        #expect(b.peerRecords() == [.create(n), .create(n)])
        // The replica's mtime is the record's second.
        let mtime = b.peer.disk.status(of: StoredFilename.validate(n)!)!.mtime
        #expect(mtime == 1_700_000_000)
    }

    @Test("append: only when the copy ends at the offset; the bytes come from the source's current file")
    func append() throws {
        let b = try SyncBench()
        defer { b.remove() }
        let n = b.appenderName()
        try b.write(b.source, n, "abcDEFghi")  // "abc", then "DEF" appended, then "ghi"
        try b.write(b.peer, n, "abc")
        #expect(b.apply(.append(n, offset: 3, length: 3)) == .delivered)
        #expect(b.read(b.peer, n) == "abcDEF")
        // Longer copy ("do not append") and shorter copy ("need to resync"): skipped.
        try b.write(b.peer, n, "abcDEFXYZ!")
        #expect(b.apply(.append(n, offset: 6, length: 3)) == .delivered)
        #expect(b.read(b.peer, n) == "abcDEFXYZ!")
        try b.write(b.peer, n, "ab")
        #expect(b.apply(.append(n, offset: 6, length: 3)) == .delivered)
        #expect(b.read(b.peer, n) == "ab")
        // The source's file is now shorter than offset + length: not sent at all.
        #expect(b.apply(.append(n, offset: 8, length: 3)) == .notSent)
        // The destination has no copy: it answers ENOENT and gets the whole current file.
        try FileManager.default.removeItem(atPath: b.peer.disk.path(of: StoredFilename.validate(n)!))
        #expect(b.apply(.append(n, offset: 3, length: 3)) == .delivered)
        #expect(b.read(b.peer, n) == "abcDEFghi")
        #expect(b.peerRecords() == [.append(n, offset: 3, length: 3), .update(n)])
    }

    @Test("modify: skipped when the offset is past the copy's end, written otherwise (also extending)")
    func modify() throws {
        let b = try SyncBench()
        defer { b.remove() }
        let n = b.appenderName()
        try b.write(b.source, n, "0123456789")
        try b.write(b.peer, n, "abcd")
        #expect(b.apply(.modify(n, offset: 5, length: 2)) == .delivered)
        #expect(b.read(b.peer, n) == "abcd")
        #expect(b.apply(.modify(n, offset: 2, length: 4)) == .delivered)
        #expect(b.read(b.peer, n) == "ab2345", "written at the offset from the source's current bytes")
        #expect(b.peerRecords() == [.modify(n, offset: 2, length: 4)])
    }

    @Test("truncate: only from the same size; a missing copy is an error to retry")
    func truncate() throws {
        let b = try SyncBench()
        defer { b.remove() }
        let n = b.appenderName()
        try b.write(b.source, n, "01")
        #expect(b.apply(.truncate(n, oldSize: 5, newSize: 2)) == .retry)
        try b.write(b.peer, n, "0123")
        #expect(b.apply(.truncate(n, oldSize: 5, newSize: 2)) == .delivered)
        #expect(b.read(b.peer, n) == "0123")
        try b.write(b.peer, n, "01234")
        #expect(b.apply(.truncate(n, oldSize: 5, newSize: 2)) == .delivered)
        #expect(b.read(b.peer, n) == "01")
        #expect(b.apply(.truncate(n, oldSize: 2, newSize: 6)) == .delivered)
        #expect(b.read(b.peer, n) == "01\0\0\0\0", "growing is allowed")
        try FileManager.default.removeItem(atPath: b.source.disk.path(of: StoredFilename.validate(n)!))
        #expect(b.apply(.truncate(n, oldSize: 6, newSize: 1)) == .notSent)
    }

    @Test("delete: not sent while the source has the file; done when the copy is already gone")
    func delete() throws {
        let b = try SyncBench()
        defer { b.remove() }
        let n = b.appenderName()
        try b.write(b.source, n, "x")
        try b.write(b.peer, n, "x")
        #expect(b.apply(.delete(n)) == .notSent)
        try FileManager.default.removeItem(atPath: b.source.disk.path(of: StoredFilename.validate(n)!))
        #expect(b.apply(.delete(n)) == .delivered)
        #expect(b.read(b.peer, n) == nil)
        #expect(b.apply(.delete(n)) == .delivered)
        #expect(b.peerRecords() == [.delete(n)])
    }

    @Test("rename: the copy renamed; sent as a create when the destination lacks the old name")
    func rename() throws {
        let b = try SyncBench()
        defer { b.remove() }
        let old = b.appenderName()
        let new = FileNaming.makeName(
            source: b.source.sourceField, timestamp: WallClock.seconds(), size: 3, appender: false, crc32: 0,
            storePathIndex: 0, sub1: 0, sub2: 0, ext7: "123.log")
        try b.write(b.source, new, "abc")
        try b.write(b.peer, old, "ab")  // a lagging copy keeps its bytes under the new name
        #expect(b.apply(.rename(new: new, old: old)) == .delivered)
        #expect(b.read(b.peer, new) == "ab" && b.read(b.peer, old) == nil)
        try FileManager.default.removeItem(atPath: b.peer.disk.path(of: StoredFilename.validate(new)!))
        #expect(b.apply(.rename(new: new, old: old)) == .delivered)
        #expect(b.read(b.peer, new) == "abc")
        #expect(b.peerRecords() == [.rename(new: new, old: old), .create(new)])
    }

    @Test("the peer's sync timestamp moves when a record reaches it and survives a restart (mark file)")
    func syncTimestamps() async throws {
        let dir = makeTemporaryDirectory("synced")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let second = try await withDevServer(storagesPerGroup: 2, dataDirectory: dir) { (server: DevServer) async throws -> Int64 in
            let (_, n) = try await rawUpload(server, Req.bytes("x"))
            try await server.waitForReplication()
            let nodes = server.cluster.allNodes
            let second = try FileIDInfo.decode(filename: n).createTime
            #expect(server.cluster.syncedTimestamp(source: nodes[0].id, dest: nodes[1].id) == second)
            #expect(server.cluster.syncedTimestamp(source: nodes[1].id, dest: nodes[0].id) == 0)
            return second
        }
        try await withDevServer(storagesPerGroup: 2, dataDirectory: dir) { (server: DevServer) async throws in
            let nodes = server.cluster.allNodes
            #expect(server.cluster.syncedTimestamp(source: nodes[0].id, dest: nodes[1].id) == second)
            #expect(server.cluster.lastSyncedTimestamp(nodes[1]) == second)
        }
    }
}
