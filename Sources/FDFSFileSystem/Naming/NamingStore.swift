import Foundation
import FuseTypes
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// The named tree: a POSIX namespace kept in SQLite (GRDB) in the state directory.
/// `nodes` are inodes (row id = inode number), `entries` are names. Every operation is one
/// transaction, run through GRDB's async API so no cooperative thread blocks on SQLite; the
/// `…Now` variants (create, attribute changes, node and name reads) use its synchronous API on
/// libfuse's own threads, which may block, to answer those requests without a thread hop.
/// Nodes whose link count reached 0 stay until `purge` (zombies while the kernel still holds
/// lookups or open handles); `purge` queues the FastDFS delete in `pending_deletes` in the same
/// transaction, so a failed delete is retried rather than forgotten.
///
/// Durability (issue 12): the database is in WAL mode with `synchronous=NORMAL`, so a committed
/// transaction survives the process being killed (the WAL is in the page cache) but is not
/// fsynced on its own, as a local filesystem's metadata is not at every operation. `syncToDisk`
/// (fsync(2) of a file, a failed durability point) makes everything committed so far survive a
/// power loss. A `DatabasePool` lets lookups and stats read while a write commits.
public final class NamingStore: NamingEngine {
    let db: any DatabaseWriter
    /// Nodes and names in memory, kept coherent by observing the database (see NamingCache).
    let cache = NamingCache()
    public static let rootID: Int64 = 1

    /// - Parameter path: the SQLite file, or nil for an in-memory database (tests).
    public init(path: String?) throws(FSError) {
        do {
            var config = Configuration()
            config.busyMode = .timeout(5)
            config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous=NORMAL") }
            if let path {
                db = try DatabasePool(path: path, configuration: config)   // WAL
            } else {
                db = try DatabaseQueue(configuration: config)
            }
            try Schema.migrator().migrate(db)
            db.add(transactionObserver: cache, extent: .databaseLifetime)
        } catch {
            throw FSError(EIO, "cannot open the naming database \(path ?? ":memory:"): \(error)")
        }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(FSError) -> T {
        do { return try await db.write(body) } catch { throw Self.databaseError(error) }
    }

    /// A transaction run on the calling thread (GRDB's synchronous API): for libfuse's own
    /// threads only (`createOpenedNow`), never from Swift concurrency.
    func writeNow<T>(_ body: (Database) throws -> T) throws(FSError) -> T {
        do { return try db.write(body) } catch { throw Self.databaseError(error) }
    }

    /// A progress record of staged writes: an ordinary transaction (every transaction survives a
    /// killed process; see the type's comment).
    func progressWrite(_ body: @escaping @Sendable (Database) throws -> Void) async throws(FSError) {
        try await write(body)
    }

    /// Everything committed so far reaches the disk (a full WAL checkpoint, which syncs the WAL
    /// and the database file): fsync(2) of a file, and a failed durability point.
    public func syncToDisk() async throws(FSError) {
        guard db is DatabasePool else { return }   // in memory (tests)
        do { try await db.writeWithoutTransaction { try $0.execute(sql: "PRAGMA wal_checkpoint(FULL)") } }
        catch { throw FSError(EIO, "naming database: cannot sync to disk: \(error)") }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(FSError) -> T {
        do { return try await db.read(body) } catch { throw Self.databaseError(error) }
    }

    /// A read on the calling thread (GRDB's synchronous API, a reader connection of the pool):
    /// for libfuse's own threads only, never from Swift concurrency.
    func readNow<T>(_ body: (Database) throws -> T) throws(FSError) -> T {
        do { return try db.read(body) } catch { throw Self.databaseError(error) }
    }

    /// An error out of a transaction: ours as thrown, SQLite's as EIO.
    static func databaseError(_ error: any Error) -> FSError {
        error as? FSError ?? FSError(EIO, "naming database: \(error)")
    }

    // MARK: - Queries

    public func nodeNow(_ id: Int64) -> Result<Node?, FSError>? {
        if let n = cache.node(id) { return .success(n) }
        let generation = cache.generation
        return Result { () throws(FSError) -> Node? in
            let n = try readNow { try Self.fetchNode($0, id) }
            if let n { cache.fill(node: n, generation: generation) }
            return n
        }
    }

    public func lookupNow(parent: Int64, name: FileName) -> Result<Node?, FSError>? {
        switch cache.entry(parent: parent, name: name) {
        case .absent: return .success(nil)
        case .child(let id): if case .success(let n?)? = nodeNow(id) { return .success(n) }
        case nil: break
        }
        let generation = cache.generation
        return Result { () throws(FSError) -> Node? in
            let found = try readNow { try Self.lookup($0, parent, name) }
            cache.fill(parent: parent, name: name, entryRow: found?.0.id, child: found?.1, generation: generation)
            return found?.1
        }
    }

    public func node(_ id: Int64) async throws(FSError) -> Node? {
        if let n = cache.node(id) { return n }
        let generation = cache.generation
        let n = try await read { try Self.fetchNode($0, id) }
        if let n { cache.fill(node: n, generation: generation) }
        return n
    }

    public func lookup(parent: Int64, name: FileName) async throws(FSError) -> Node? {
        switch cache.entry(parent: parent, name: name) {
        case .absent: return nil
        case .child(let id): if let n = try await node(id) { return n }
        case nil: break
        }
        let generation = cache.generation
        let found = try await read { db in try Self.lookup(db, parent, name) }
        cache.fill(parent: parent, name: name, entryRow: found?.0.id, child: found?.1, generation: generation)
        return found?.1
    }

    /// Names are BLOBs: always bound as `Data`, so the comparison is byte for byte.
    static func lookup(_ db: Database, _ parent: Int64, _ name: FileName) throws -> (DirEntryRow, Node)? {
        guard let e = try DirEntryRow.fetchOne(db.cachedStatement(sql: "SELECT * FROM entries WHERE parent = ? AND name = ?"),
                                               arguments: [parent, Data(name.bytes)]),
              let n = try Self.fetchNode(db, e.child) else { return nil }
        return (e, n)
    }

    /// A node by id through a cached statement (the query interface compiles its SQL on every
    /// call: a measurable part of each create and close, issue 12).
    static func fetchNode(_ db: Database, _ id: Int64) throws -> Node? {
        try Node.fetchOne(db.cachedStatement(sql: "SELECT * FROM nodes WHERE id = ?"), arguments: [id])
    }

    /// Entries of `parent` with entry id > `afterEntry`, in id order (stable readdir offsets).
    /// The names and nodes read are cached (a `cat` or `stat` after `ls` costs no database read),
    /// and a directory read whole from its start is complete (a miss in it is known at once).
    public func list(parent: Int64, afterEntry: Int64, limit: Int) async throws(FSError) -> [(entryID: Int64, name: FileName, node: Node)] {
        let generation = cache.generation, foreign = cache.foreignGeneration
        let found: [(entryID: Int64, name: FileName, node: Node)] = try await read { db in
            let rows = try DirEntryRow.filter(Column("parent") == parent && Column("id") > afterEntry)
                .order(Column("id")).limit(limit).fetchAll(db)
            return try rows.compactMap { e in try Self.fetchNode(db, e.child).map { (e.id!, e.fileName, $0) } }
        }
        if afterEntry == 0 && found.count < limit {
            cache.fillDirectory(parent, found.map { (row: $0.entryID, name: $0.name, node: $0.node) }, generation: generation, foreignGeneration: foreign)
        } else {
            for e in found { cache.fill(parent: parent, name: e.name, entryRow: e.entryID, child: e.node, generation: generation) }
        }
        return found
    }

    /// The parent directory of a directory (root's parent is root).
    public func parentOf(directory id: Int64) async throws(FSError) -> Int64 {
        try await read { db in
            try Int64.fetchOne(db, sql: "SELECT parent FROM entries WHERE child = ? LIMIT 1", arguments: [id]) ?? Self.rootID
        }
    }

    public func fileIDs(withPrefix prefix: String) async throws(FSError) -> [String] {
        try await read { db in
            try String.fetchAll(db, sql: "SELECT DISTINCT file_id FROM nodes WHERE file_id LIKE ? ESCAPE '\\' ORDER BY file_id",
                                arguments: [Self.likeEscape(prefix) + "%"])
        }
    }

    static func likeEscape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
    }

    public func nodeCount() async throws(FSError) -> Int {
        try await read { try Node.fetchCount($0) }
    }

    /// Nodes left with no name (zombies of a previous mount).
    public func orphans() async throws(FSError) -> [Int64] {
        try await read { try Int64.fetchAll($0, sql: "SELECT id FROM nodes WHERE nlink <= 0 AND id != 1") }
    }

    public func pendingDeletes() async throws(FSError) -> [(row: Int64, fileID: String)] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT id, file_id FROM pending_deletes ORDER BY id").map { ($0["id"], $0["file_id"]) }
        }
    }

    public func deleteSucceeded(row: Int64) async throws(FSError) {
        try await write { try $0.execute(sql: "DELETE FROM pending_deletes WHERE id = ?", arguments: [row]) }
    }

    public func deleteFailed(row: Int64, error: String) async throws(FSError) {
        try await write { try $0.execute(sql: "UPDATE pending_deletes SET attempts = attempts + 1, last_error = ? WHERE id = ?", arguments: [error, row]) }
    }

    // MARK: - Helpers used inside transactions

    static func directory(_ db: Database, _ id: Int64) throws -> Node {
        guard let p = try Self.fetchNode(db, id), p.nlink > 0 else { throw FSError.noent("directory \(id) is gone") }
        guard p.isDirectory else { throw FSError(ENOTDIR, "inode \(id) is not a directory") }
        return p
    }

    static func touch(_ db: Database, _ id: Int64, now: Int64, nlinkDelta: Int64 = 0) throws {
        try db.cachedStatement(sql: "UPDATE nodes SET mtime_ns = ?, ctime_ns = ?, nlink = nlink + ? WHERE id = ?").execute(arguments: [now, now, nlinkDelta, id])
    }

    static func hasChildren(_ db: Database, _ id: Int64) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM entries WHERE parent = ?)", arguments: [id]) ?? false
    }

    /// True when `ancestor` is `id` or one of its ancestors.
    static func isAncestor(_ db: Database, _ ancestor: Int64, of id: Int64) throws -> Bool {
        var cur = id
        var guardCount = 0
        while true {
            if cur == ancestor { return true }
            if cur == rootID { return false }
            guard let p = try Int64.fetchOne(db, sql: "SELECT parent FROM entries WHERE child = ? LIMIT 1", arguments: [cur]) else { return false }
            cur = p
            guardCount += 1
            if guardCount > 100_000 { throw FSError(ELOOP, "directory cycle at \(id)") }
        }
    }
}
