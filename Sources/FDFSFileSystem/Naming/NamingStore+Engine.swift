import Foundation
import FuseTypes
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// The parts of `NamingEngine` that a single-mount engine answers simply: nothing else changes
/// the tree, so an open needs no fresh read and a close no bookkeeping (`InodeTable` keeps the
/// open counts), and there is no session or change feed.
extension NamingStore {
    public var sharesTree: Bool { false }
    public func cachedNode(_ id: Int64) -> Node? { cache.node(id) }
    public func cachedEntry(parent: Int64, name: FileName) -> NamingCache.EntryHit? { cache.entry(parent: parent, name: name) }

    public func opened(_ id: Int64, forWriting: Bool) async throws(FSError) -> (node: Node, unchanged: Bool, elsewhere: Bool)? {
        try await node(id).map { ($0, true, false) }
    }

    public func closed(_ id: Int64) async throws(FSError) -> QueuedDelete? { nil }
    public func closedNow(_ id: Int64) -> Result<QueuedDelete?, FSError>? { .success(nil) }
    public func openedForReadingNow(_ id: Int64) -> Result<(node: Node, unchanged: Bool)?, FSError>? {
        nodeNow(id).map { $0.map { $0.map { ($0, true) } } }
    }

    public func createOpened(parent: Int64, name: FileName, mode: UInt32, uid: UInt32, gid: UInt32) async throws(FSError) -> Node {
        try await create(parent: parent, name: name, mode: mode, uid: uid, gid: gid)
    }

    /// One host: the process's memory is where every lock holder is.
    public func makeLockService() -> any LockService { MemoryLockService() }

    public func start(onRemoteChange: @escaping @Sendable (RemoteChange) -> Void) async throws(FSError) {}
    public func shutdown() async {}

    public func dump() async throws(FSError) -> NamingDump {
        try await read { db in
            let nodes = try Node.order(Column("id")).fetchAll(db)
            let entries = try Row.fetchAll(db, sql: "SELECT id, parent, name, child FROM entries ORDER BY id").map {
                NamingDump.EntryRecord(id: $0["id"], parent: $0["parent"], name: $0["name"], child: $0["child"])
            }
            let meta = try Row.fetchAll(db, sql: "SELECT ino, key, value FROM pending_metadata ORDER BY ino, key").map {
                NamingDump.MetadataRecord(ino: $0["ino"], key: $0["key"], value: $0["value"])
            }
            let deletes = try String.fetchAll(db, sql: "SELECT file_id FROM pending_deletes ORDER BY id")
            return NamingDump(nodes: nodes, entries: entries, pendingMetadata: meta, pendingDeletes: deletes)
        }
    }

    public func load(_ dump: NamingDump) async throws(FSError) {
        try await write { db in
            let names = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM entries") ?? 0
            let nodes = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM nodes") ?? 0
            guard names == 0, nodes <= 1 else {
                throw FSError(ENOTEMPTY, "the namespace is not empty (\(nodes) nodes, \(names) names); load into a new one")
            }
            try db.execute(sql: "DELETE FROM nodes")
            for n in dump.nodes {
                try db.execute(sql: """
                    INSERT INTO nodes (id, mode, uid, gid, size, atime_ns, mtime_ns, ctime_ns, nlink, file_id, target, rdev)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [n.id, n.mode, n.uid, n.gid, n.size, n.atimeNs, n.mtimeNs, n.ctimeNs, n.nlink, n.fileID, n.target, n.rdev])
            }
            for e in dump.entries {
                try db.execute(sql: "INSERT INTO entries (id, parent, name, child) VALUES (?, ?, ?, ?)", arguments: [e.id, e.parent, e.name, e.child])
            }
            for m in dump.pendingMetadata {
                try db.execute(sql: "INSERT INTO pending_metadata (ino, key, value) VALUES (?, ?, ?)", arguments: [m.ino, m.key, m.value])
            }
            for f in dump.pendingDeletes {
                try db.execute(sql: "INSERT INTO pending_deletes (file_id) VALUES (?)", arguments: [f])
            }
        }
    }
}
