import FDFSFileSystem
import Foundation
import FuseTypes
import Logging
import PostgresNIO
#if canImport(Glibc)
import Glibc
#endif

/// `fdfsfs dump` / `fdfsfs load` for a PostgreSQL namespace.
extension PostgresNamingStore {
    public func dump() async throws(FSError) -> NamingDump {
        let nodes = try await rows("dump", "SELECT \(unescaped: Self.nodeColumns) FROM \(unescaped: s).nodes ORDER BY id") {
            try Self.node($0)
        }
        let entries = try await rows("dump", "SELECT id, parent, name, child FROM \(unescaped: s).entries ORDER BY id") { row in
            let (id, parent, name, child) = try row.decode((Int64, Int64, Data, Int64).self)
            return NamingDump.EntryRecord(id: id, parent: parent, name: name, child: child)
        }
        let meta = try await rows("dump", "SELECT ino, key, value FROM \(unescaped: s).pending_metadata ORDER BY ino, key") { row in
            let (ino, key, value) = try row.decode((Int64, String, String).self)
            return NamingDump.MetadataRecord(ino: ino, key: key, value: value)
        }
        let deletes = try await rows("dump", "SELECT file_id FROM \(unescaped: s).pending_deletes ORDER BY id") { try $0.decode(String.self) }
        return NamingDump(nodes: nodes, entries: entries, pendingMetadata: meta, pendingDeletes: deletes)
    }

    /// One transaction: all of the dump or nothing. Sequences continue after the largest ids.
    public func load(_ dump: NamingDump) async throws(FSError) {
        let s = self.s
        try await call("load") { client in
            try await client.withTransaction(logger: Logger(label: "fdfsfs.postgres.load")) { conn in
                let lg = Logger(label: "fdfsfs.postgres.load")
                try await conn.query("LOCK TABLE \(unescaped: s).nodes IN EXCLUSIVE MODE", logger: lg)
                var names: Int64 = 0, nodes: Int64 = 0
                for try await n in try await conn.query("SELECT count(*) FROM \(unescaped: s).entries", logger: lg).decode(Int64.self) { names = n }
                for try await n in try await conn.query("SELECT count(*) FROM \(unescaped: s).nodes", logger: lg).decode(Int64.self) { nodes = n }
                guard names == 0, nodes <= 1 else {
                    throw FSError(ENOTEMPTY, "the namespace is not empty (\(nodes) nodes, \(names) names); load into a new one (?namespace=NAME)")
                }
                try await conn.query("DELETE FROM \(unescaped: s).nodes", logger: lg)
                for n in dump.nodes {
                    try await conn.query("""
                        INSERT INTO \(unescaped: s).nodes (id, mode, uid, gid, size, atime_ns, mtime_ns, ctime_ns, nlink, file_id, target, rdev)
                        VALUES (\(n.id), \(Int64(n.mode)), \(Int64(n.uid)), \(Int64(n.gid)), \(n.size), \(n.atimeNs), \(n.mtimeNs), \(n.ctimeNs),
                                \(n.nlink), \(n.fileID), \(n.target), \(n.rdev))
                        """, logger: lg)
                }
                for e in dump.entries {
                    try await conn.query("INSERT INTO \(unescaped: s).entries (id, parent, name, child) VALUES (\(e.id), \(e.parent), \(e.name), \(e.child))", logger: lg)
                }
                for m in dump.pendingMetadata {
                    try await conn.query("INSERT INTO \(unescaped: s).pending_metadata (ino, key, value) VALUES (\(m.ino), \(m.key), \(m.value))", logger: lg)
                }
                for f in dump.pendingDeletes {
                    try await conn.query("INSERT INTO \(unescaped: s).pending_deletes (file_id) VALUES (\(f))", logger: lg)
                }
                try await conn.query("SELECT setval('\(unescaped: s).nodes_id_seq', (SELECT max(id) FROM \(unescaped: s).nodes))", logger: lg)
                try await conn.query("SELECT setval('\(unescaped: s).entries_id_seq', greatest(1, (SELECT coalesce(max(id), 0) FROM \(unescaped: s).entries)))", logger: lg)
            }
        }
        dropAll()
    }
}
