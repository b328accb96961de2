// FDFSFileSystem: a POSIX view of a FastDFS cluster, knowing nothing of libfuse.
//
// Design (after mountpoint-s3's fs.rs / metablock split):
// - Two namespaces share one mount. `/GROUP/Mxx/XX/YY/NAME` is the by-id view: every group the
//   store lists is a directory at the root, and any file id resolves to a file (`ByID` helpers;
//   inode numbers from `InodeTable.byIDBase`). Everything else is the named tree, a POSIX
//   namespace in SQLite (`NamingStore`, inode = row id, stable across remounts) whose regular files
//   point at FastDFS file ids.
// - File bytes and metadata come from a `FileStore` (FastDFS client in production,
//   `MemoryFileStore` in tests). Reads go through a per-handle `Prefetcher` (read-ahead window).
// - FastDFS metadata is exposed as `user.*` xattrs, plus read-only `user.fdfs.*` virtual ones.
// - Lookup counts, open counts and zombies live in `InodeTable` under one Mutex. No lock is held
//   across an await.
// - Errors are `FSError` with the errno the kernel gets; FuseKit turns them into replies.
import FuseTypes
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public struct FDFSOptions: Sendable {
    public var attrTimeout: Double = 1
    public var entryTimeout: Double = 1
    /// Owner and umask of the by-id view (and the root), like vfat's uid=/gid=/umask=.
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var umask: UInt32 = 0o022
    /// Group for new files (nil: the tracker chooses).
    public var group: String?
    public var groupCacheTTL: Double = 30
    public var statfsCacheTTL: Double = 5
    public var fileInfoTTL: Double = 10
    public var negativeTTL: Double = 5
    public var metadataTTL: Double = 2
    public var readAhead = ReadAheadConfig()
    public var readAheadMemoryLimit: Int64 = 256 << 20
    public var readOnly = false
    /// Where staged writes live (`STATE_DIR/staging`) and survive a crash; nil: a fresh
    /// temporary directory (tests).
    public var stagingDir: String?
    /// Size of the requests that ship staged bytes (upload, append, modify).
    public var writeChunk: Int64 = 4 << 20
    /// Per file: once this many bytes are staged after a failed ship, writes fail with that
    /// error instead of staging more (the local disk is not an unbounded buffer).
    public var maxStaged: Int64 = 256 << 20
    /// Requests sending staged bytes at once, over all files (bounds write-back memory in total:
    /// each holds about two copies of one `writeChunk`).
    public var maxUploads = 4
    /// Bytes of small new files kept in memory (and in the write journal) until their close, over
    /// all files; past it, new files are staged on disk as large ones are.
    public var smallFileMemory = 64 << 20
    /// Answer misses with negative entries the kernel caches (instead of ENOENT each time).
    public var kernelNegativeCache = true
    /// This mount's name for its lock owners (`LockOwner.session`): unique per mount, so a
    /// shared `LockService` tells the owners of different mounts apart.
    public var lockSession = FDFSOptions.newLockSession()
    public init() {}

    /// `HOST/PID/RANDOM`.
    public static func newLockSession() -> String {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let name = host.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return "\(name)/\(getpid())/\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
    }
}

public final class FDFSFileSystem: FuseFilesystem {
    public let store: any FileStore
    public let naming: any NamingEngine
    public let options: FDFSOptions
    /// Where the filesystem logs (swift-log; the caller chooses the handler).
    public let logger: Logger
    let metrics: FileSystemMetrics
    let inodes = Mutex(InodeTable())
    let handles = Mutex(HandleTable())
    /// One writer per inode open for writing, with the number of write handles using it.
    /// A writer stays after its last handle while it holds staged bytes (retried in the background).
    let writers = Mutex<[UInt64: (writer: FileWriter, refs: Int)]>([:])
    let stagingDir: String
    /// Where the bytes of small new files wait for their close (see `WriteJournal`).
    let journal: WriteJournal
    let groupsCache: TTLCache<Int, [StoreGroup]>
    /// The last successful group list (fallback while trackers are unreachable).
    let lastGroups = Mutex<[StoreGroup]?>(nil)
    let statfsCache: TTLCache<Int, StatFS>
    let fileInfoCache: TTLCache<String, StoreFileInfo>
    let negativeCache: TTLCache<String, Bool>
    let metadataCache: TTLCache<String, [String: String]>
    let budget: MemoryBudget
    let uploadSlots: UploadSlots
    let mountTime = Timespec.now()
    let maintenance = Mutex<Task<Void, Never>?>(nil)
    /// Purges started from `forget` (which cannot await); tests drain them.
    let background = Mutex<[Task<Void, Never>]>([])
    /// fcntl and flock locks (see FDFSFileSystem+Locks).
    public let locks: any LockService
    /// Bumped by every change another mount of a shared tree made (see `remoteChanged`).
    let remoteGeneration = Atomic<UInt64>(0)
    /// Lock owners of this mount that took a lock (only they need a release at close).
    let heldLocks = Mutex<Set<HeldLock>>([])
    /// The root as last read (its attributes while the naming database is unreachable).
    let lastRoot = Mutex<Node?>(nil)
    /// Given by FuseKit after the mount; nil until then (and in tests without a kernel).
    let kernelNotifier = Mutex<(any KernelCacheNotifier)?>(nil)
    public var notifier: (any KernelCacheNotifier)? { kernelNotifier.withLock { $0 } }

    /// Readdir offsets: 1 = ".", 2 = "..", 3... = synthetic entries (groups, by-id names),
    /// `namedOffsetBase + entry id` = named entries.
    static let namedOffsetBase: Int64 = 1 << 32
    static let nameMax = 255

    /// - Parameter locks: where fcntl/flock locks live; nil: in this process (`MemoryLockService`).
    public init(store: any FileStore, naming: any NamingEngine, options: FDFSOptions = FDFSOptions(), clock: @escaping Clock = monotonicSeconds,
                locks: (any LockService)? = nil, logger: Logger = .silent) {
        self.logger = logger
        metrics = FileSystemMetrics()
        self.store = store
        self.locks = locks ?? naming.makeLockService()
        self.naming = naming
        self.options = options
        groupsCache = TTLCache(ttl: options.groupCacheTTL, clock: clock)
        statfsCache = TTLCache(ttl: options.statfsCacheTTL, clock: clock)
        fileInfoCache = TTLCache(ttl: options.fileInfoTTL, clock: clock)
        negativeCache = TTLCache(ttl: options.negativeTTL, clock: clock)
        metadataCache = TTLCache(ttl: options.metadataTTL, clock: clock)
        budget = MemoryBudget(limit: options.readAheadMemoryLimit)
        uploadSlots = UploadSlots(limit: options.maxUploads)
        stagingDir = Self.makeStagingDir(options.stagingDir)
        journal = WriteJournal(dir: stagingDir, memoryLimit: options.smallFileMemory)
    }

    /// Checks the store is reachable (lists groups), purges zombies left by a previous mount and
    /// starts retrying queued remote deletes.
    public func start() async throws(FSError) {
        try await naming.start { [weak self] change in self?.remoteChanged(change) }
        _ = try await groups(refresh: true)
        for id in try await naming.orphans() { await purge(id) }
        await recoverJournal()
        await recoverStagedWrites()
        sweepStagingDirectory()
        let t = Task { [weak self] in
            var round = 0
            while !Task.isCancelled {
                // Staged writes every 5 s (a storage that comes back gets them soon), deletes every 30 s.
                await self?.retryStagedWrites()
                if round % 6 == 0 { await self?.retryPendingDeletes() }
                round += 1
                try? await Task.sleep(for: .seconds(Self.retryInterval))
            }
        }
        maintenance.withLock { $0 = t }
    }

    /// Seconds between retries of staged writes.
    static let retryInterval: Double = 5

    public func stop() {
        maintenance.withLock { $0?.cancel(); $0 = nil }
    }

    public func destroyed() {
        stop()
        // A clean unmount: the journal is needed only while a small file's bytes are nowhere else.
        if !journal.removeIfAllDone() {
            logger.warning("the write journal in \(stagingDir) is kept: it holds bytes of small files not yet on the cluster; the next mount completes them")
        }
    }

    // MARK: - Shared helpers

    func groups(refresh: Bool = false) async throws(FSError) -> [StoreGroup] {
        if !refresh, let g = groupsCache.get(0) { return g }
        do {
            let g = try await store.listGroups()
            groupsCache.set(0, g)
            lastGroups.withLock { $0 = g }
            return g
        } catch {
            // Trackers unreachable: keep serving the namespace with the last known groups.
            if let g = lastGroups.withLock({ $0 }) {
                logger.warning("cannot list groups (\(error)); using the last known list")
                groupsCache.set(0, g)
                return g
            }
            throw error
        }
    }

    func group(named name: String) async throws(FSError) -> StoreGroup? {
        try await groups().first { $0.name == name }
    }

    /// A name of the named tree: any bytes but `/` and NUL, at most `nameMax` bytes (counted as
    /// bytes, whatever their encoding).
    func checkName(_ name: FileName) throws(FSError) {
        if name.count > Self.nameMax { throw FSError(ENAMETOOLONG, "name longer than \(Self.nameMax) bytes") }
        if name.isEmpty || name == "." || name == ".." || name.bytes.contains(UInt8(ascii: "/")) || name.bytes.contains(0) {
            throw FSError(EINVAL, "invalid name")
        }
    }

    /// True when `name` in `parent` is a FastDFS group's directory (groups shadow the root).
    func isGroup(_ name: FileName, in parent: UInt64) async throws(FSError) -> Bool {
        guard parent == InodeTable.root, let s = name.string else { return false }
        return try await group(named: s) != nil
    }

    func entry(_ a: Attr) -> Entry {
        Entry(attr: a, generation: 0, attrTimeout: options.attrTimeout, entryTimeout: options.entryTimeout)
    }

    /// Counts one lookup of `ino` (before the entry reply, as libfuse requires).
    func counted(_ a: Attr) -> Entry {
        inodes.withLock { $0.increment(a.ino) }
        return entry(a)
    }

    func rootAttr() async throws(FSError) -> Attr {
        let n: Node
        do throws(FSError) {
            guard let found = try await naming.node(NamingStore.rootID) else { throw FSError(EIO, "root node missing from the naming database") }
            n = found
            lastRoot.withLock { $0 = found }
        } catch {
            // The mount point stays a directory while the database is away (the by-id view below it works).
            guard let known = lastRoot.withLock({ $0 }) else { throw error }
            n = known
        }
        var a = n.attr
        a.nlink += UInt32((try? await groups().count) ?? 0)
        return a
    }

    // MARK: - FuseFilesystem: lookup, forget, getattr

    /// A negative entry (inode 0): the kernel caches the miss for `timeout` seconds and sends no
    /// forget for it. Used for names that do not exist.
    func negativeEntry(timeout: Double) -> Entry {
        Entry(attr: Attr(ino: 0, mode: 0), generation: 0, attrTimeout: 0, entryTimeout: timeout)
    }

    public func lookup(parent: UInt64, name: FileName, ctx: RequestContext) async throws(FSError) -> Entry {
        let before = remoteGeneration.load(ordering: .acquiring)
        do {
            var e = try await lookupCounted(parent: parent, name: name)
            // See getattr: an answer that may predate another mount's change is not cached.
            if remoteGeneration.load(ordering: .acquiring) != before { e.attrTimeout = 0; e.entryTimeout = 0 }
            return e
        } catch where error.errno == ENOENT && options.kernelNegativeCache && remoteGeneration.load(ordering: .acquiring) != before {
            throw error
        } catch where error.errno == ENOENT && options.kernelNegativeCache {
            // By-id misses are cached like our own negative cache; named-tree misses for the
            // entry timeout (only this mount changes the named tree, and creating a name
            // replaces the kernel's negative entry).
            return negativeEntry(timeout: InodeTable.isByID(parent) ? options.negativeTTL : options.entryTimeout)
        }
    }

    func lookupCounted(parent: UInt64, name: FileName) async throws(FSError) -> Entry {
        if name.count > Self.nameMax { throw FSError(ENAMETOOLONG, "name longer than \(Self.nameMax) bytes") }
        if InodeTable.isByID(parent) {
            // File ids are ASCII: a name that is not UTF-8 names nothing there.
            guard let s = name.string else { throw FSError.noent("\(name): not a FastDFS path") }
            return counted(try await byIDLookup(parent: parent, name: s))
        }
        if try await isGroup(name, in: parent), let s = name.string {
            let ino = inodes.withLock { $0.byIDIno(for: s) }
            return counted(byIDDirAttr(ino))
        }
        guard let n = try await naming.lookup(parent: Int64(parent), name: name) else { throw FSError.noent("\(name) not found") }
        return counted(await liveAttr(n))
    }

    public func forget(ino: UInt64, nlookup: UInt64) {
        let ev = inodes.withLock { $0.forget(ino, nlookup) }
        if case .purge(let id) = ev {
            let t = Task { await self.purge(Int64(id)) }
            background.withLock { tasks in
                tasks.removeAll { $0.isCancelled }
                tasks.append(t)
                if tasks.count > 64 { tasks.removeFirst(tasks.count - 64) }
            }
        }
    }

    /// Waits for purges started by `forget`.
    public func drainBackground() async {
        let tasks = background.withLock { t -> [Task<Void, Never>] in defer { t.removeAll() }; return t }
        for t in tasks { await t.value }
    }

    public func grantLookups(_ inos: [UInt64]) {
        inodes.withLock { t in for i in inos { t.increment(i) } }
    }

    public func getattr(ino: UInt64, fh: UInt64?) async throws(FSError) -> (Attr, Double) {
        let before = remoteGeneration.load(ordering: .acquiring)
        let a = try await attr(of: ino)
        // Another mount changed the tree while this was read: the answer may predate a change whose
        // kernel invalidation already went out, so the kernel must not keep it.
        return (a, remoteGeneration.load(ordering: .acquiring) == before ? options.attrTimeout : 0)
    }

    func attr(of ino: UInt64) async throws(FSError) -> Attr {
        if ino == InodeTable.root { return try await rootAttr() }
        if InodeTable.isByID(ino) { return try await byIDAttr(ino) }
        guard let n = try await naming.node(Int64(ino)) else { throw FSError.noent("inode \(ino) is gone") }
        return await liveAttr(n)
    }

    /// A node's attributes with the size of writes not yet recorded (every reply carrying
    /// attributes must use it: the kernel takes i_size from lookups and readdirplus too).
    func liveAttr(_ n: Node) async -> Attr {
        var a = n.attr
        if n.isRegular, let w = writers.withLock({ $0[UInt64(n.id)]?.writer }) { a.size = await w.size }
        return a
    }

    public func statfs(ino: UInt64) async throws(FSError) -> StatFS {
        if let s = statfsCache.get(0) { return s }
        let gs = try await groups(refresh: true)
        let total = gs.reduce(Int64(0)) { $0 + max(0, $1.totalMB) }
        let free = gs.reduce(Int64(0)) { $0 + max(0, $1.freeMB) }
        let files = UInt64((try? await naming.nodeCount()) ?? 0)
        // 4 KiB blocks: 256 per MB.
        let s = StatFS(blockSize: 4096, blocks: UInt64(total) * 256, blocksFree: UInt64(free) * 256,
                       blocksAvailable: UInt64(free) * 256, files: files + 1_000_000, filesFree: 1_000_000, nameMax: UInt64(Self.nameMax))
        statfsCache.set(0, s)
        return s
    }

    public func access(ino: UInt64, mask: Int32) async throws(FSError) {
        _ = try await attr(of: ino)
    }

    // MARK: - Deletion of unreferenced nodes

    /// Removes a node with no names and no references; deletes its FastDFS file (queued first).
    func purge(_ id: Int64) async {
        await dropWriter(ofPurged: id)
        // Its number may be given to a new file: journal records of the old one must say done.
        await journal.settled()
        do {
            guard let (row, fid) = try await naming.purge(id) else { return }
            await deleteRemote(row: row, fileID: fid)
        } catch {
            logger.error("cannot purge the node: \(error)", metadata: ["inode": "\(id)"])
        }
    }

    func deleteRemote(row: Int64, fileID: String) async {
        do {
            try await store.delete(fileID)
            try? await naming.deleteSucceeded(row: row)
            fileInfoCache.remove(fileID)
            logger.info("deleted (last name and handle gone)", metadata: ["file_id": "\(fileID)"])
        } catch {
            if error.errno == ENOENT {
                try? await naming.deleteSucceeded(row: row)
            } else {
                logger.warning("delete failed, will retry: \(error)", metadata: ["file_id": "\(fileID)"])
                metrics.pendingDeletes.increment()
                try? await naming.deleteFailed(row: row, error: error.description)
            }
        }
    }

    public func retryPendingDeletes() async {
        guard let pending = try? await naming.pendingDeletes() else { return }
        for (row, fid) in pending { await deleteRemote(row: row, fileID: fid) }
        if let left = try? await naming.pendingDeletes() { metrics.pendingDeletes.set(left.count) }
    }

    /// A node lost its last name: purge now or keep as a zombie.
    func unlinked(_ n: Node) async {
        guard n.nlink <= 0 else { return }
        let now = inodes.withLock { $0.unlinked(UInt64(n.id)) }
        if now { await purge(n.id) }
    }
}
