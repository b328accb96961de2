import FDFSFileSystem
import Foundation
import FuseTypes
import Logging
import PostgresNIO
#if canImport(Glibc)
import Glibc
#endif

/// flock and fcntl locks held across every mount of the namespace: the `locks` rows of one inode
/// are read, run through `LockTable` (the same algebra as the in-process service) and the owner's
/// rows written back, in one transaction that holds the inode's advisory lock. Rows belong to the
/// mount's session, so they go when it closes or when its session expires (a killed host).
/// A waiting F_SETLKW / LOCK_EX polls (FDFSFileSystem+Locks).
final class PostgresLockService: LockService {
    let engine: PostgresNamingStore

    init(engine: PostgresNamingStore) { self.engine = engine }

    /// Owners of this mount are named by its database session (the filesystem's own session
    /// name means nothing to other mounts).
    func local(_ r: LockRequest) -> LockRequest {
        var r = r
        r.owner.session = String(engine.sid)
        return r
    }

    static func row(_ row: PostgresRow) throws -> LockRow {
        let (session, ino, owner, kind, type, start, end, pid) = try row.decode((Int64, Int64, Int64, Int16, Int16, Int64, Int64, Int32).self)
        return LockRow(ino: UInt64(ino), owner: UInt64(bitPattern: owner), kind: kind == 1 ? .flock : .posix, type: type == 1 ? .write : .read,
                       start: start, end: end, pid: pid, session: String(session))
    }

    static let columns = "session, ino, owner, kind, type, start_off, end_off, pid"

    func test(ino: UInt64, _ request: LockRequest) async throws(FSError) -> LockRow? {
        guard request.isValid else { throw FSError(EINVAL, "lock range \(request.start)...\(request.end)") }
        let rows = try await engine.rows("getlk", "SELECT \(unescaped: Self.columns) FROM \(unescaped: engine.s).locks WHERE ino = \(Int64(ino))") {
            try Self.row($0)
        }
        guard var held = LockTable(rows: rows).conflict(ino: ino, local(request)) else { return nil }
        // A holder on this mount: named as the filesystem names its owners (its pid means something here).
        if held.session == String(engine.sid) { held.session = request.owner.session }
        return held
    }

    func set(ino: UInt64, _ request: LockRequest) async throws(FSError) {
        guard request.isValid else { throw FSError(EINVAL, "lock range \(request.start)...\(request.end)") }
        let req = local(request), s = engine.s, sid = engine.sid
        let conflict: LockRow? = try await engine.call("lock") { client in
            try await client.withTransaction(logger: Logger(label: "fdfsfs.locks")) { conn in
                let lg = Logger(label: "fdfsfs.locks")
                try await conn.query("SELECT pg_advisory_xact_lock(hashtext(\(s + ".locks")), \(Int32(truncatingIfNeeded: ino)))", logger: lg)
                var rows: [LockRow] = []
                for try await r in try await conn.query("SELECT \(unescaped: Self.columns) FROM \(unescaped: s).locks WHERE ino = \(Int64(ino))", logger: lg) {
                    rows.append(try Self.row(r))
                }
                var table = LockTable(rows: rows)
                if case .conflict(let other) = table.set(ino: ino, req) { return other }
                let kind: Int16 = req.kind == .flock ? 1 : 0
                try await conn.query("""
                    DELETE FROM \(unescaped: s).locks WHERE ino = \(Int64(ino)) AND session = \(sid)
                    AND owner = \(Int64(bitPattern: req.owner.id)) AND kind = \(kind)
                    """, logger: lg)
                for r in table.rows(ino: ino, owner: req.owner, kind: req.kind) {
                    try await conn.query("""
                        INSERT INTO \(unescaped: s).locks (session, ino, owner, kind, type, start_off, end_off, pid)
                        VALUES (\(sid), \(Int64(ino)), \(Int64(bitPattern: r.owner)), \(kind), \(Int16(r.type == .write ? 1 : 0)),
                                \(r.start), \(r.end), \(r.pid))
                        """, logger: lg)
                }
                return nil
            }
        }
        if let other = conflict {
            throw FSError(EAGAIN, "inode \(ino): \(other.kind) \(other.type) lock \(other.start)...\(other.end) held by another owner", quiet: true)
        }
    }

    func releaseAll(ino: UInt64, owner: LockOwner, kind: LockKind) async throws(FSError) {
        try await engine.exec("unlock", """
            DELETE FROM \(unescaped: engine.s).locks WHERE ino = \(Int64(ino)) AND session = \(engine.sid)
            AND owner = \(Int64(bitPattern: owner.id)) AND kind = \(Int16(kind == .flock ? 1 : 0))
            """)
    }

    func releaseSession(_ session: String) async throws(FSError) {
        try await engine.exec("unlock all", "DELETE FROM \(unescaped: engine.s).locks WHERE session = \(engine.sid)")
    }
}

extension PostgresNamingStore {
    public func makeLockService() -> any LockService { PostgresLockService(engine: self) }
}
