// FDFSNamingPostgres: the named tree in PostgreSQL, shared by every mount that names the same
// database and namespace (`-o meta=postgres://USER@HOST/DB`).
//
// Design (after JuiceFS's SQL engine, without its pitfalls; see ../shared/docs/shared-namespace.md):
// - Each namespace operation is one call of a PL/pgSQL function (one round trip, one
//   transaction; `PostgresSchema`), which also NOTIFYs the other mounts of what it touched.
// - A change feed (LISTEN on a connection of its own) drops this mount's cached nodes and names
//   and the kernel's caches of them (`RemoteChange`); while the feed is down the cache is off and
//   the kernel's entry/attribute lifetimes bound staleness.
// - Sessions: a mount registers one, heartbeats it, and records its open handles under it, so a
//   file unlinked elsewhere is deleted only when no live session holds it open. Any live mount
//   expires sessions whose heartbeat stopped (a killed host) with their handles and locks.
// - Staged writes stay this host's: their records live in a SQLite file of the state directory.
// - Durability as the SQLite engine's (see NamingStore): an operation is committed when it
//   returns (every mount sees it; it survives this mount's crash) with synchronous_commit off,
//   so PostgreSQL does not wait for its disk at every create; fsync(2) (`syncToDisk`) commits
//   with synchronous_commit on, which flushes everything committed before it too.
// - Every call has a deadline (meta_timeout): a database that is down gives EIO after it, with
//   one log line per outage; the pool reconnects when it returns.
import FDFSFileSystem
import Foundation
import FuseTypes
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public final class PostgresNamingStore: NamingEngine {
    public let target: MetaURL.PostgresTarget
    let client: PostgresClient
    let connectionConfig: PostgresConnection.Configuration
    /// This host's staged-write records (its state directory).
    let local: NamingStore
    let cache = NamingCache()
    /// Schema and NOTIFY channel of the namespace.
    let s: String
    let channel: String
    let timeout: Duration
    let sessionTTL: Int
    let mountpoint: String
    /// Our own records (outages, sessions) and postgres-nio's.
    let logger: Logger

    let sessionID = Atomic<Int64>(0)
    /// The change feed is listening: cached answers are coherent with other mounts.
    let feedUp = Atomic<Bool>(false)
    let reachable = Atomic<Bool>(true)
    /// Shutting down: calls failing because the pool closes are not an outage.
    let closing = Atomic<Bool>(false)
    /// This mount's open handles per node (registered again if its session had expired).
    let openCounts = Mutex<[Int64: Int]>([:])
    /// File id and size of nodes as this mount last saw them (close-to-open: the kernel keeps its
    /// page cache of a file only while they are unchanged).
    let lastSeen = Mutex<[Int64: DataVersion]>([:])
    let tasks = Mutex<[Task<Void, Never>]>([])
    /// Staged files whose path is in the local record already.
    let stagedPaths = Mutex<Set<Int64>>([])
    let runTask = Mutex<Task<Void, Never>?>(nil)
    /// Closes waiting for their group commit (`PostgresNamingStore+Closes`).
    let closeQueue = Mutex(CloseQueue())
    /// Lookups that missed the cache, per directory, and directories too big to read whole.
    let lookupMisses = Mutex<(count: [Int64: Int], big: Set<Int64>)>(([:], []))

    struct DataVersion: Equatable {
        var fileID: String?
        var size: Int64
    }

    /// - Parameters:
    ///   - stagedPath: the SQLite file of this host's staged-write records (nil: in memory, tests).
    ///   - timeout: deadline of each database call (EIO after it).
    ///   - sessionTTL: seconds without heartbeat after which a session (a dead mount) expires.
    public init(target: MetaURL.PostgresTarget, stagedPath: String?, mountpoint: String = "",
                timeout: Double = 10, sessionTTL: Int = 60, logger: Logger = .silent) throws(FSError) {
        self.target = target
        self.logger = logger
        s = target.schema
        channel = target.schema + "_changes"
        self.timeout = .milliseconds(Int64(timeout * 1000))
        self.sessionTTL = max(3, sessionTTL)
        self.mountpoint = mountpoint
        local = try NamingStore(path: stagedPath)
        let tls: PostgresClient.Configuration.TLS
        let connTLS: PostgresConnection.Configuration.TLS
        if target.requireTLS {
            var t = TLSConfiguration.makeClientConfiguration()
            t.certificateVerification = .none   // libpq's sslmode=require: encrypted, not verified
            tls = .require(t)
            do { connTLS = .require(try NIOSSLContext(configuration: t)) } catch {
                throw FSError(EIO, "cannot set up TLS for \(target.redacted): \(error)")
            }
        } else {
            tls = .disable
            connTLS = .disable
        }
        var config = PostgresClient.Configuration(host: target.host, port: target.port, username: target.user,
                                                  password: target.password, database: target.database, tls: tls)
        config.options.connectTimeout = self.timeout
        config.options.maximumConnections = 8
        config.options.minimumConnections = 1
        config.options.additionalStartupParameters = [("synchronous_commit", "off")]
        client = PostgresClient(configuration: config, backgroundLogger: logger)
        connectionConfig = PostgresConnection.Configuration(host: target.host, port: target.port, username: target.user,
                                                            password: target.password, database: target.database, tls: connTLS)
    }

    /// Connects and creates or checks the namespace's schema. Fails clearly when the database is
    /// unreachable, refuses the login, or has a schema newer than this build understands.
    public func open() async throws(FSError) {
        let client = self.client
        runTask.withLock { t in
            if t == nil { t = Task { await client.run() } }
        }
        try await migrate()
    }

    // MARK: - Calls

    /// Runs `body` against the database with the call deadline; retries deadlocks and
    /// serialization failures; maps errors to errnos (see `PostgresSchema`).
    func call<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresClient) async throws -> T) async throws(FSError) -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let r: T
                do { r = try await Deadline.run(timeout) { [client] in try await body(client) } }
                catch let e as PostgresTransactionError {
                    throw e.closureError ?? e.beginError ?? e.commitError ?? e.rollbackError ?? e
                }
                if !reachable.exchange(true, ordering: .relaxed) {
                    self.logger.info("naming database \(target.redacted) reachable again")
                }
                return r
            } catch let e as FSError {
                throw e
            } catch let e as PSQLError {
                if let state = e.serverInfo?[.sqlState] {
                    if (state == "40P01" || state == "40001"), attempt < 20 {
                        try? await Task.sleep(for: .milliseconds(Int64.random(in: 1...(5 * Int64(attempt)))))
                        continue
                    }
                    throw Self.map(state: state, message: e.serverInfo?[.message] ?? "", what: what, target: target)
                }
                throw unreachable(what, "\(e.code)")
            } catch is CancellationError {
                throw FSError(EINTR, "\(what): cancelled", quiet: true)
            } catch is Deadline.Expired {
                throw unreachable(what, "no answer within \(timeout)")
            } catch {
                throw unreachable(what, "\(error)")
            }
        }
    }

    static func map(state: String, message: String, what: String, target: MetaURL.PostgresTarget) -> FSError {
        if state.hasPrefix("FX"), let n = Int32(state.dropFirst(2)) {
            return FSError(n, "\(what): \(message)", quiet: n == EEXIST || n == ENOTEMPTY || n == ENOENT)
        }
        if state.hasPrefix("28") { return FSError(EACCES, "naming database \(target.redacted) refused the login: \(message)") }
        if state == "42501" { return FSError(EACCES, "naming database \(target.redacted): \(message) (grant the user rights on the database)") }
        if state == "23505" { return FSError(EEXIST, "\(what): \(message)", quiet: true) }
        return FSError(EIO, "naming database \(target.redacted): \(what): \(message) (SQLSTATE \(state))")
    }

    /// The database did not answer: EIO, and one log line per outage.
    func unreachable(_ what: String, _ detail: String) -> FSError {
        if !closing.load(ordering: .relaxed), reachable.exchange(false, ordering: .relaxed) {
            self.logger.error("naming database \(target.redacted) unreachable (\(detail)): named-tree operations fail with EIO until it returns; the by-id view keeps working")
        }
        // Quiet: the outage has its one log line; each failing request is not logged again.
        return FSError(EIO, "naming database \(target.redacted) unreachable (\(what): \(detail))", quiet: true)
    }

    func rows<T: Sendable>(_ what: String, _ query: @autoclosure () throws -> PostgresQuery,
                           _ decode: @escaping @Sendable (PostgresRow) throws -> T) async throws(FSError) -> [T] {
        let q: PostgresQuery
        do { q = try query() } catch { throw FSError(EINVAL, "\(what): cannot encode the query: \(error)") }
        return try await call(what) { client in
            var out: [T] = []
            for try await row in try await client.query(q) { out.append(try decode(row)) }
            return out
        }
    }

    func exec(_ what: String, _ q: @autoclosure () throws -> PostgresQuery) async throws(FSError) {
        _ = try await rows(what, try q()) { _ in 0 }
    }

    static let nodeColumns = "id, mode, uid, gid, size, atime_ns, mtime_ns, ctime_ns, nlink, file_id, target, rdev"
    static let nodeColumnCount = 12
    static func nodeColumns(of composite: String) -> String {
        nodeColumns.split(separator: ",").map { "(\(composite)).\($0.trimmingCharacters(in: .whitespaces))" }.joined(separator: ", ")
    }

    /// A node from 12 columns starting at `at`.
    static func node(_ row: PostgresRow, at: Int = 0) throws -> Node {
        let it = row.makeRandomAccess()
        func c<T: PostgresDecodable>(_ i: Int, _ t: T.Type) throws -> T { try it[at + i].decode(T.self) }
        _ = it
        return Node(id: try c(0, Int64.self), mode: UInt32(truncatingIfNeeded: try c(1, Int64.self)),
                    uid: UInt32(truncatingIfNeeded: try c(2, Int64.self)), gid: UInt32(truncatingIfNeeded: try c(3, Int64.self)),
                    size: try c(4, Int64.self), atimeNs: try c(5, Int64.self), mtimeNs: try c(6, Int64.self), ctimeNs: try c(7, Int64.self),
                    nlink: try c(8, Int64.self), fileID: try c(9, String?.self), target: try c(10, Data?.self), rdev: try c(11, Int64.self))
    }

    var sid: Int64 { sessionID.load(ordering: .relaxed) }

    public var sharesTree: Bool { true }

    // MARK: - Cache

    public func cachedNode(_ id: Int64) -> Node? {
        feedUp.load(ordering: .relaxed) ? cache.node(id) : nil
    }

    public func cachedEntry(parent: Int64, name: FileName) -> NamingCache.EntryHit? {
        feedUp.load(ordering: .relaxed) ? cache.entry(parent: parent, name: name) : nil
    }

    /// What this mount changed (its own NOTIFY is ignored). `ownCreateOrRemove`: see
    /// `NamingCache.invalidate`.
    func changed(nodes: [Int64], entries: [DirEntryKey] = [], ownCreateOrRemove: Bool = false) {
        cache.invalidate(nodes: nodes, entries: entries, ownCreateOrRemove: ownCreateOrRemove)
    }

    // MARK: - Queries

    public func node(_ id: Int64) async throws(FSError) -> Node? {
        if let n = cachedNode(id) { return n }
        let g = cache.generation
        let n = try await rows("stat", "SELECT \(unescaped: Self.nodeColumns) FROM \(unescaped: s).nodes WHERE id = \(id)") { try Self.node($0) }.first
        if let n, feedUp.load(ordering: .relaxed) { cache.fill(node: n, generation: g) }
        return n
    }

    public func lookup(parent: Int64, name: FileName) async throws(FSError) -> Node? {
        switch cachedEntry(parent: parent, name: name) {
        case .absent: return nil
        case .child(let id): if let n = cachedNode(id) { return n }
        case nil: break
        }
        if feedUp.load(ordering: .relaxed), try await loadDirectoryIfBusy(parent) {
            switch cachedEntry(parent: parent, name: name) {
            case .absent: return nil
            case .child(let id): if let n = cachedNode(id) { return n }
            case nil: break
            }
        }
        let g = cache.generation
        let found = try await rows("lookup", """
            SELECT e.id, \(unescaped: Self.nodeColumns(of: "n")) FROM \(unescaped: s).entries e JOIN \(unescaped: s).nodes n ON n.id = e.child
            WHERE e.parent = \(parent) AND e.name = \(Data(name.bytes))
            """) { row -> (Int64, Node) in (try row.decode(Int64.self, context: .default), try Self.node(row, at: 1)) }.first
        if feedUp.load(ordering: .relaxed) {
            cache.fill(parent: parent, name: name, entryRow: found?.0, child: found?.1, generation: g)
        }
        return found?.1
    }

    /// A directory whose names are looked up one after another (`ls -l`, `stat` or `rsync` of
    /// each file, cold): at its second lookup that misses the cache, all its names are read in
    /// one query and it becomes complete (later lookups cost no round trip). Directories with
    /// more than `directoryLoadLimit` names are read name by name. True when it was loaded.
    func loadDirectoryIfBusy(_ parent: Int64) async throws(FSError) -> Bool {
        let go = lookupMisses.withLock { m -> Bool in
            if m.big.contains(parent) { return false }
            if m.count.count > 10_000 { m.count.removeAll() }
            m.count[parent, default: 0] += 1
            return m.count[parent]! >= 2
        }
        guard go else { return false }
        let g = cache.generation, fg = cache.foreignGeneration
        let names = try await rows("list \(parent)", """
            SELECT e.id, e.name, \(unescaped: Self.nodeColumns(of: "n")) FROM \(unescaped: s).entries e JOIN \(unescaped: s).nodes n ON n.id = e.child
            WHERE e.parent = \(parent) ORDER BY e.id LIMIT \(Int64(Self.directoryLoadLimit + 1))
            """) { row -> (row: Int64, name: FileName, node: Node) in
            let it = row.makeRandomAccess()
            return (try it[0].decode(Int64.self), FileName(bytes: Array(try it[1].decode(Data.self))), try Self.node(row, at: 2))
        }
        lookupMisses.withLock { m in
            m.count[parent] = nil
            if names.count > Self.directoryLoadLimit { m.big.insert(parent) }
        }
        guard names.count <= Self.directoryLoadLimit else { return false }
        cache.fillDirectory(parent, names, generation: g, foreignGeneration: fg)
        return true
    }

    static let directoryLoadLimit = 20_000

    public func list(parent: Int64, afterEntry: Int64, limit: Int) async throws(FSError) -> [(entryID: Int64, name: FileName, node: Node)] {
        try await rows("readdir", """
            SELECT e.id, e.name, \(unescaped: Self.nodeColumns(of: "n")) FROM \(unescaped: s).entries e JOIN \(unescaped: s).nodes n ON n.id = e.child
            WHERE e.parent = \(parent) AND e.id > \(afterEntry) ORDER BY e.id LIMIT \(Int64(limit))
            """) { row in
            let it = row.makeRandomAccess()
            let id = try it[0].decode(Int64.self)
            let name = try it[1].decode(Data.self)
            _ = it
            return (id, FileName(bytes: Array(name)), try Self.node(row, at: 2))
        }
    }

    public func parentOf(directory id: Int64) async throws(FSError) -> Int64 {
        try await rows("parent", "SELECT parent FROM \(unescaped: s).entries WHERE child = \(id) LIMIT 1") { try $0.decode(Int64.self) }.first ?? NamingStore.rootID
    }

    public func fileIDs(withPrefix prefix: String) async throws(FSError) -> [String] {
        let like = prefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_") + "%"
        return try await rows("file ids", """
            SELECT DISTINCT file_id FROM \(unescaped: s).nodes WHERE file_id LIKE \(like) ESCAPE '\\' ORDER BY file_id
            """) { try $0.decode(String.self) }
    }

    public func nodeCount() async throws(FSError) -> Int {
        Int(try await rows("count", "SELECT count(*) FROM \(unescaped: s).nodes") { try $0.decode(Int64.self) }.first ?? 0)
    }

    public func orphans() async throws(FSError) -> [Int64] {
        try await rows("orphans", """
            SELECT n.id FROM \(unescaped: s).nodes n WHERE n.nlink <= 0 AND n.id <> 1
            AND NOT EXISTS (SELECT 1 FROM \(unescaped: s).open_handles h WHERE h.ino = n.id)
            """) { try $0.decode(Int64.self) }
    }

    public func anyName(of id: Int64) async throws(FSError) -> FileName? {
        try await rows("name", "SELECT name FROM \(unescaped: s).entries WHERE child = \(id) ORDER BY id LIMIT 1") {
            FileName(bytes: Array(try $0.decode(Data.self)))
        }.first
    }

    // MARK: - Namespace operations

    public func create(parent: Int64, name: FileName, mode: UInt32, uid: UInt32, gid: UInt32,
                       target: FileName?, fileID: String?, size: Int64, rdev: UInt64) async throws(FSError) -> Node {
        try await create(parent: parent, name: name, mode: mode, uid: uid, gid: gid, target: target, fileID: fileID, size: size, rdev: rdev, open: false)
    }

    public func createOpened(parent: Int64, name: FileName, mode: UInt32, uid: UInt32, gid: UInt32) async throws(FSError) -> Node {
        let n = try await create(parent: parent, name: name, mode: mode, uid: uid, gid: gid, target: nil, fileID: nil, size: 0, rdev: 0, open: true)
        openCounts.withLock { $0[n.id, default: 0] += 1 }
        seen(n)
        return n
    }

    func create(parent: Int64, name: FileName, mode: UInt32, uid: UInt32, gid: UInt32,
                target: FileName?, fileID: String?, size: Int64, rdev: UInt64, open: Bool) async throws(FSError) -> Node {
        let targetData = target.map { Data($0.bytes) }
        let foreign = cache.foreignGeneration
        let r: [(Int64, Node, Node)]
        do { r = try await rows("create \(name)", """
            SELECT entry_id, \(unescaped: Self.nodeColumns(of: "node")), \(unescaped: Self.nodeColumns(of: "parent_node")) FROM \(unescaped: s).fdfs_create(\(sid), \(parent), \(Data(name.bytes)),
                \(Int64(mode)), \(Int64(uid)), \(Int64(gid)), \(targetData), \(fileID), \(size), \(Int64(bitPattern: rdev)), \(open))
            """) { row -> (Int64, Node, Node) in
                (try row.decode(Int64.self, context: .default), try Self.node(row, at: 1), try Self.node(row, at: 1 + Self.nodeColumnCount))
            }
        } catch {
            // Another mount created the name (its notification may not be here yet): what this
            // mount cached about the name is wrong.
            if error.errno == EEXIST { changed(nodes: [parent], entries: [DirEntryKey(parent: parent, name: name)]) }
            throw error
        }
        guard let (entryRow, node, parentNode) = r.first else { throw FSError(EIO, "create \(name): no answer from the naming database") }
        changed(nodes: [parent], entries: [DirEntryKey(parent: parent, name: name)], ownCreateOrRemove: true)
        if feedUp.load(ordering: .relaxed) { cache.fill(node: parentNode, generation: cache.generation) }
        // A brand-new node: the next lookup of it needs no round trip; a new directory is empty,
        // so lookups of names not yet in it need none either (creating files in it costs one).
        cache.created(parent: parent, name: name, entryRow: entryRow, child: node)
        if node.isDirectory, feedUp.load(ordering: .relaxed) { cache.markComplete(node.id, foreignGeneration: foreign) }
        return node
    }

    public func link(node id: Int64, parent: Int64, name: FileName) async throws(FSError) -> Node {
        let r = try await rows("link \(name)", """
            SELECT \(unescaped: Self.nodeColumns) FROM \(unescaped: s).fdfs_link(\(sid), \(id), \(parent), \(Data(name.bytes)))
            """) { try Self.node($0) }
        changed(nodes: [id, parent], entries: [DirEntryKey(parent: parent, name: name)])
        guard let n = r.first else { throw FSError(EIO, "link \(name): no answer from the naming database") }
        return n
    }

    public func remove(parent: Int64, name: FileName, directory: Bool) async throws(FSError) -> Node {
        let r = try await rows(directory ? "rmdir \(name)" : "unlink \(name)", """
            SELECT \(unescaped: Self.nodeColumns) FROM \(unescaped: s).fdfs_remove(\(sid), \(parent), \(Data(name.bytes)), \(Int32(directory ? 1 : 0)))
            """) { try Self.node($0) }
        guard let n = r.first else { throw FSError(EIO, "remove \(name): no answer from the naming database") }
        changed(nodes: [parent, n.id], entries: [DirEntryKey(parent: parent, name: name)], ownCreateOrRemove: true)
        return n
    }

    public func rename(parent: Int64, name: FileName, newParent: Int64, newName: FileName, flags: UInt32) async throws(FSError) -> [Node] {
        // The node moved, as this mount knows it: a plain rename then keeps the directories'
        // cached names complete (the old name goes, the new one is recorded).
        var moving: Int64? = nil
        if flags & 2 == 0, case .child(let id)? = cache.entry(parent: parent, name: name) { moving = id }
        let foreign = cache.foreignGeneration
        let touched = try await rows("rename \(name)", """
            SELECT dead, \(unescaped: Self.nodeColumns(of: "node")) FROM \(unescaped: s).fdfs_rename(\(sid), \(parent), \(Data(name.bytes)),
                \(newParent), \(Data(newName.bytes)), \(Int32(bitPattern: flags)))
            """) { row -> (Bool, Node) in (try row.decode(Bool.self, context: .default), try Self.node(row, at: 1)) }
        let keys = [DirEntryKey(parent: parent, name: name), DirEntryKey(parent: newParent, name: newName)]
        if let moving, let moved = touched.first(where: { !$0.0 && $0.1.id == moving })?.1, cache.foreignGeneration == foreign {
            changed(nodes: [parent, newParent] + touched.map(\.1.id), entries: keys, ownCreateOrRemove: true)
            cache.created(parent: newParent, name: newName, entryRow: nil, child: moved)
        } else {
            changed(nodes: [parent, newParent] + touched.map(\.1.id), entries: keys)
        }
        return touched.filter(\.0).map(\.1)
    }

    public func setAttributes(_ id: Int64, mode: UInt32?, uid: UInt32?, gid: UInt32?, size: Int64?,
                              atime: TimeSet?, mtime: TimeSet?) async throws(FSError) -> Node {
        func kind(_ t: TimeSet?) -> (Int32, Int64?) {
            switch t { case .now: (1, nil); case .time(let ts): (2, ts.nanoseconds); case nil: (0, nil) }
        }
        let (ak, av) = kind(atime), (mk, mv) = kind(mtime)
        let r = try await rows("setattr", """
            SELECT \(unescaped: Self.nodeColumns) FROM \(unescaped: s).fdfs_setattr(\(sid), \(id), \(mode.map { Int64($0) }),
                \(uid.map { Int64($0) }), \(gid.map { Int64($0) }), \(size), \(ak), \(av), \(mk), \(mv))
            """) { try Self.node($0) }
        changed(nodes: [id])
        guard let n = r.first else { throw FSError(EIO, "setattr: no answer from the naming database") }
        return n
    }

    public func bind(_ id: Int64, fileID: String, size: Int64, mtime: Int64?) async throws(FSError) -> Node {
        let r = try await rows("bind", """
            SELECT \(unescaped: Self.nodeColumns) FROM \(unescaped: s).fdfs_bind(\(sid), \(id), \(fileID), \(size), \(mtime))
            """) { try Self.node($0) }
        changed(nodes: [id])
        guard let n = r.first else { throw FSError(EIO, "bind: no answer from the naming database") }
        seen(n)
        return n
    }

    static func queued(_ row: PostgresRow) throws -> QueuedDelete? {
        let (id, fid) = try row.decode((Int64?, String?).self)
        guard let id, let fid else { return nil }
        return (id, fid)
    }

    public func unbind(_ id: Int64) async throws(FSError) -> QueuedDelete? {
        let r = try await rows("unbind", "SELECT del_id, del_file_id FROM \(unescaped: s).fdfs_unbind(\(sid), \(id))") { try Self.queued($0) }
        changed(nodes: [id])
        return r.first ?? nil
    }

    public func purge(_ id: Int64) async throws(FSError) -> QueuedDelete? {
        let r = try await rows("purge", "SELECT del_id, del_file_id FROM \(unescaped: s).fdfs_purge(\(sid), \(id))") { try Self.queued($0) }
        changed(nodes: [id])
        return r.first ?? nil
    }

    public func commitWrite(_ id: Int64, fileID: String?, size: Int64, dropStaged: Bool) async throws(FSError) -> QueuedDelete? {
        let r = try await rows("commit", """
            SELECT \(unescaped: Self.nodeColumns(of: "node")), del_id, del_file_id FROM \(unescaped: s).fdfs_commit(\(sid), \(id), \(fileID), \(size))
            """) { row -> (Node, QueuedDelete?) in
            let it = row.makeRandomAccess()
            let did = try it[12].decode(Int64?.self), dfid = try it[13].decode(String?.self)
            _ = it
            return (try Self.node(row), did.flatMap { d in dfid.map { (d, $0) } })
        }
        changed(nodes: [id])
        guard let (node, queued) = r.first else { throw FSError(EIO, "commit: no answer from the naming database") }
        seen(node)
        // Recorded in PostgreSQL first: a crash before the local record goes re-ships the same bytes.
        if dropStaged { try await local.removeStaged(ino: id) }
        return queued
    }

    // MARK: - Open files

    func seen(_ n: Node) {
        lastSeen.withLock { m in
            if m.count > 200_000 { m.removeAll() }
            m[n.id] = DataVersion(fileID: n.fileID, size: n.size)
        }
    }

    public func opened(_ id: Int64, forWriting: Bool) async throws(FSError) -> (node: Node, unchanged: Bool, elsewhere: Bool)? {
        let r = try await rows("open", """
            SELECT \(unescaped: Self.nodeColumns(of: "node")), elsewhere FROM \(unescaped: s).fdfs_open(\(sid), \(id), \(forWriting))
            """) { row -> (Node, Bool) in
            (try Self.node(row), try row.makeRandomAccess()[Self.nodeColumnCount].decode(Bool.self))
        }
        guard let (n, elsewhere) = r.first else { return nil }
        openCounts.withLock { $0[id, default: 0] += 1 }
        let now = DataVersion(fileID: n.fileID, size: n.size)
        let before = lastSeen.withLock { m -> DataVersion? in
            let b = m[id]
            if m.count > 200_000 { m.removeAll() }
            m[id] = now
            return b
        }
        if let cached = cache.node(id), cached != n { cache.invalidate(nodes: [id], entries: []) }
        if feedUp.load(ordering: .relaxed) { cache.fill(node: n, generation: cache.generation) }
        return (n, before == nil || before == now, elsewhere)
    }


    // MARK: - Delete queue

    public func pendingDeletes() async throws(FSError) -> [QueuedDelete] {
        // Held deletes (a replaced file another mount had open) once nobody holds the node open.
        try await rows("pending deletes", """
            SELECT id, file_id FROM \(unescaped: s).pending_deletes d WHERE d.hold_ino IS NULL
            OR NOT EXISTS (SELECT 1 FROM \(unescaped: s).open_handles h WHERE h.ino = d.hold_ino AND h.count > 0)
            ORDER BY id LIMIT 10000
            """) { row in
            let (id, fid) = try row.decode((Int64, String).self)
            return (id, fid)
        }
    }

    public func deleteSucceeded(row: Int64) async throws(FSError) {
        try await exec("delete done", "DELETE FROM \(unescaped: s).pending_deletes WHERE id = \(row)")
    }

    public func deleteFailed(row: Int64, error: String) async throws(FSError) {
        try await exec("delete failed", "UPDATE \(unescaped: s).pending_deletes SET attempts = attempts + 1, last_error = \(error) WHERE id = \(row)")
    }

    // MARK: - Staged writes (this host's)

    public func saveStaged(ino: Int64, state: WriteState, status: StagedStatus, error: String?, durable: Bool) async throws(FSError) {
        // The path, read once per file, so `fdfsfs status STATE_DIR` names it without the database.
        var path: String? = nil
        if !stagedPaths.withLock({ $0.contains(ino) }) {
            path = try? await pathOf(ino)
            stagedPaths.withLock { s in
                if s.count > 100_000 { s.removeAll() }
                s.insert(ino)
            }
        }
        try await local.saveStaged(ino: ino, state: state, status: status, error: error, durable: durable, path: path)
    }

    /// A path of node `id` from the root (one recursive query), nil when it has no name.
    func pathOf(_ id: Int64) async throws(FSError) -> String? {
        let parts = try await rows("path", """
            WITH RECURSIVE up (child, parent, name, depth) AS (
                SELECT e.child, e.parent, e.name, 0 FROM \(unescaped: s).entries e WHERE e.child = \(id)
                UNION ALL
                SELECT e.child, e.parent, e.name, up.depth + 1 FROM \(unescaped: s).entries e JOIN up ON e.child = up.parent
                WHERE up.parent <> 1 AND up.depth < 4096)
            SELECT name, parent FROM up ORDER BY depth DESC
            """) { row -> (Data, Int64) in try row.decode((Data, Int64).self) }
        guard let top = parts.first, top.1 == NamingStore.rootID else { return nil }
        return "/" + parts.map { FileName(bytes: Array($0.0)).description }.joined(separator: "/")
    }

    public func removeStaged(ino: Int64) async throws(FSError) { try await local.removeStaged(ino: ino) }
    public func stagedFiles() async throws(FSError) -> [StagedFileRecord] { try await local.stagedFiles() }
    /// PostgreSQL makes every commit durable (synchronous_commit); the local records sync here.
    /// fsync(2): this host's records, and every change committed so far on PostgreSQL's disk.
    public func syncToDisk() async throws(FSError) {
        try await local.syncToDisk()
        try await exec("sync", "SELECT \(unescaped: s).fdfs_sync(\(sid))")
    }

    // MARK: - Pending metadata

    public func pendingMetadata(_ ino: Int64) async throws(FSError) -> [String: String] {
        var m: [String: String] = [:]
        for (k, v) in try await rows("metadata", "SELECT key, value FROM \(unescaped: s).pending_metadata WHERE ino = \(ino)", {
            try $0.decode((String, String).self)
        }) { m[k] = v }
        return m
    }

    /// One statement: the change and its notification.
    public func setPendingMetadata(_ ino: Int64, key: String, value: String?) async throws(FSError) {
        if let value {
            try await exec("set metadata", """
                WITH w AS (INSERT INTO \(unescaped: s).pending_metadata (ino, key, value) VALUES (\(ino), \(key), \(value))
                           ON CONFLICT (ino, key) DO UPDATE SET value = EXCLUDED.value RETURNING 1)
                SELECT \(unescaped: s).changed(\(sid), \("n\(ino)")) FROM (SELECT count(*) FROM w) c
                """)
        } else {
            try await exec("remove metadata", """
                WITH w AS (DELETE FROM \(unescaped: s).pending_metadata WHERE ino = \(ino) AND key = \(key) RETURNING 1)
                SELECT \(unescaped: s).changed(\(sid), \("n\(ino)")) FROM (SELECT count(*) FROM w) c
                """)
        }
    }

    public func clearPendingMetadata(_ ino: Int64) async throws(FSError) {
        try await exec("clear metadata", "DELETE FROM \(unescaped: s).pending_metadata WHERE ino = \(ino)")
    }
}

/// Runs an operation with a deadline without waiting for it past the deadline (a call stuck on a
/// dead TCP connection is left to finish or fail on its own).
enum Deadline {
    struct Expired: Error {}

    static func run<T: Sendable>(_ timeout: Duration, _ op: @escaping @Sendable () async throws -> T) async throws -> T {
        let state = Mutex<CheckedContinuation<T, any Error>?>(nil)
        let work = Mutex<[Task<Void, Never>]>([])
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (k: CheckedContinuation<T, any Error>) in
                state.withLock { $0 = k }
                let finish: @Sendable (Result<T, any Error>) -> Void = { r in
                    guard let k = state.withLock({ s -> CheckedContinuation<T, any Error>? in defer { s = nil }; return s }) else { return }
                    k.resume(with: r)
                }
                let a = Task { do { finish(.success(try await op())) } catch { finish(.failure(error)) } }
                let b = Task {
                    try? await Task.sleep(for: timeout)
                    if !Task.isCancelled { finish(.failure(Expired())); a.cancel() }
                }
                work.withLock { $0 = [a, b] }
                Task { _ = await a.result; b.cancel() }
            }
        } onCancel: {
            let k = state.withLock { s -> CheckedContinuation<T, any Error>? in defer { s = nil }; return s }
            k?.resume(throwing: CancellationError())
            for t in work.withLock({ $0 }) { t.cancel() }
        }
    }
}
