import Foundation
import FuseTypes

/// A FastDFS file delete queued in the naming database (row id, file id).
public typealias QueuedDelete = (row: Int64, fileID: String)

/// What another mount changed in a shared named tree (from the engine's change feed): the
/// kernel's caches of these nodes and names are dropped (`KernelCacheNotifier`).
public struct RemoteChange: Sendable, Hashable {
    public var nodes: [Int64]
    public var entries: [DirEntryKey]
    public init(nodes: [Int64], entries: [DirEntryKey]) {
        self.nodes = nodes
        self.entries = entries
    }
}

/// A name in a directory.
public struct DirEntryKey: Sendable, Hashable {
    public var parent: Int64
    public var name: FileName
    public init(parent: Int64, name: FileName) {
        self.parent = parent
        self.name = name
    }
}

/// The naming layer as the filesystem sees it: nodes (inodes) and names of the named tree, the
/// queue of FastDFS deletes, write-back records and user.* metadata of files without data.
/// Two engines implement it: `NamingStore` (SQLite through GRDB, one mount, the default) and
/// `PostgresNamingStore` (PostgreSQL through postgres-nio, a tree shared by several mounts).
/// Nothing above this protocol knows which one it talks to.
///
/// Rules every engine keeps: each namespace operation is one atomic transaction (across mounts,
/// for a shared engine); errors are `FSError`s with the errno the kernel gets; nothing blocks
/// Swift's cooperative pool; answers the engine keeps in memory are coherent with what it
/// committed and, for a shared engine, with what other mounts committed (within the delay of its
/// change feed).
public protocol NamingEngine: AnyObject, Sendable {
    /// Several mounts share this tree (another mount may read a file this one writes).
    var sharesTree: Bool { get }

    // MARK: Memory (answered on libfuse's thread; nil = ask the database)
    func cachedNode(_ id: Int64) -> Node?
    func cachedEntry(parent: Int64, name: FileName) -> NamingCache.EntryHit?

    // MARK: Queries
    func node(_ id: Int64) async throws(FSError) -> Node?
    func lookup(parent: Int64, name: FileName) async throws(FSError) -> Node?
    /// `node` and `lookup` on the calling thread (libfuse's): a read of a local database, no
    /// network; nil when this engine cannot (the caller goes the async way).
    func nodeNow(_ id: Int64) -> Result<Node?, FSError>?
    func lookupNow(parent: Int64, name: FileName) -> Result<Node?, FSError>?
    /// Entries of `parent` with entry id > `afterEntry`, in id order (stable readdir offsets).
    func list(parent: Int64, afterEntry: Int64, limit: Int) async throws(FSError) -> [(entryID: Int64, name: FileName, node: Node)]
    func parentOf(directory id: Int64) async throws(FSError) -> Int64
    func fileIDs(withPrefix prefix: String) async throws(FSError) -> [String]
    func nodeCount() async throws(FSError) -> Int
    /// Nodes left with no name that nothing holds open (zombies of a previous mount).
    func orphans() async throws(FSError) -> [Int64]
    func anyName(of id: Int64) async throws(FSError) -> FileName?

    // MARK: Namespace operations
    func create(parent: Int64, name: FileName, mode: UInt32, uid: UInt32, gid: UInt32,
                target: FileName?, fileID: String?, size: Int64, rdev: UInt64) async throws(FSError) -> Node
    /// create(2): a new regular file and its first open handle (see `opened`), in one transaction.
    func createOpened(parent: Int64, name: FileName, mode: UInt32, uid: UInt32, gid: UInt32) async throws(FSError) -> Node
    /// `createOpened` on the calling thread (libfuse's), for an engine whose create is a short
    /// local write; nil when this engine cannot (the caller goes the async way).
    func createOpenedNow(parent: Int64, name: FileName, mode: UInt32, uid: UInt32, gid: UInt32) -> Result<Node, FSError>?
    /// `setAttributes` without a size change, on the calling thread; nil as for `createOpenedNow`.
    func setAttributesNow(_ id: Int64, mode: UInt32?, uid: UInt32?, gid: UInt32?, atime: TimeSet?, mtime: TimeSet?) -> Result<Node, FSError>?
    func link(node id: Int64, parent: Int64, name: FileName) async throws(FSError) -> Node
    func remove(parent: Int64, name: FileName, directory: Bool) async throws(FSError) -> Node
    func rename(parent: Int64, name: FileName, newParent: Int64, newName: FileName, flags: UInt32) async throws(FSError) -> [Node]
    func setAttributes(_ id: Int64, mode: UInt32?, uid: UInt32?, gid: UInt32?, size: Int64?,
                       atime: TimeSet?, mtime: TimeSet?) async throws(FSError) -> Node
    func bind(_ id: Int64, fileID: String, size: Int64, mtime: Int64?) async throws(FSError) -> Node
    func unbind(_ id: Int64) async throws(FSError) -> QueuedDelete?
    /// Deletes a node with no names left, unless a mount still holds it open. Returns the FastDFS
    /// delete it queued (when no other node refers to the file).
    func purge(_ id: Int64) async throws(FSError) -> QueuedDelete?
    func commitWrite(_ id: Int64, fileID: String?, size: Int64, dropStaged: Bool) async throws(FSError) -> QueuedDelete?

    // MARK: Open files (close-to-open and deletes deferred while open, across mounts)
    /// An open of a named node: the node as committed now (not as cached), whether its data
    /// (file id and size) is what this mount last saw, so the kernel may keep its page cache, and
    /// whether another mount holds it open (`elsewhere`: a writer then writes a copy of its own
    /// instead of changing the file in place, so the last close wins whole). Opens for writing
    /// of one node are serialized across mounts, so two writers opening at once see each other.
    func opened(_ id: Int64, forWriting: Bool) async throws(FSError) -> (node: Node, unchanged: Bool, elsewhere: Bool)?
    /// `opened` for reading on the calling thread (libfuse's), for an engine that counts no
    /// handles and reads the node from memory or a local database; nil when it cannot.
    func openedForReadingNow(_ id: Int64) -> Result<(node: Node, unchanged: Bool)?, FSError>?
    /// The last handle of `id` on this mount closed. Returns a delete queued because the node
    /// had no name left and no other mount holds it open.
    func closed(_ id: Int64) async throws(FSError) -> QueuedDelete?
    /// `closed` on the calling thread (libfuse's) when this engine keeps no handle counts of its
    /// own (one host); nil when it must be asked the async way.
    func closedNow(_ id: Int64) -> Result<QueuedDelete?, FSError>?

    // MARK: Delete queue
    func pendingDeletes() async throws(FSError) -> [QueuedDelete]
    func deleteSucceeded(row: Int64) async throws(FSError)
    func deleteFailed(row: Int64, error: String) async throws(FSError)

    // MARK: Write-back records (always this host's: staged bytes live in its state directory)
    func saveStaged(ino: Int64, state: WriteState, status: StagedStatus, error: String?, durable: Bool) async throws(FSError)
    func removeStaged(ino: Int64) async throws(FSError)
    func stagedFiles() async throws(FSError) -> [StagedFileRecord]
    /// Everything committed so far survives a power loss (fsync(2)).
    func syncToDisk() async throws(FSError)

    // MARK: user.* metadata of files without a FastDFS file yet
    func pendingMetadata(_ ino: Int64) async throws(FSError) -> [String: String]
    func setPendingMetadata(_ ino: Int64, key: String, value: String?) async throws(FSError)
    func clearPendingMetadata(_ ino: Int64) async throws(FSError)

    // MARK: Locks (flock and fcntl)
    /// Where this engine keeps locks: in this process for a single mount; in the shared database
    /// for a shared tree, so they hold across its mounts.
    func makeLockService() -> any LockService

    // MARK: Backup and migration (`fdfsfs dump` / `fdfsfs load`)
    func dump() async throws(FSError) -> NamingDump
    /// Restores a dump into an empty namespace (EEXIST-like failure when it is not empty).
    func load(_ dump: NamingDump) async throws(FSError)

    // MARK: Life cycle
    /// Starts background work (a shared engine's session heartbeat and change feed) and sends
    /// other mounts' changes to `onRemoteChange`.
    func start(onRemoteChange: @escaping @Sendable (RemoteChange) -> Void) async throws(FSError)
    /// Ends background work and the engine's session (its open handles and locks go).
    func shutdown() async
}

extension NamingEngine {
    public func nodeNow(_ id: Int64) -> Result<Node?, FSError>? { nil }
    public func closedNow(_ id: Int64) -> Result<QueuedDelete?, FSError>? { nil }
    public func openedForReadingNow(_ id: Int64) -> Result<(node: Node, unchanged: Bool)?, FSError>? { nil }
    public func lookupNow(parent: Int64, name: FileName) -> Result<Node?, FSError>? { nil }
    public func createOpenedNow(parent: Int64, name: FileName, mode: UInt32, uid: UInt32, gid: UInt32) -> Result<Node, FSError>? { nil }
    public func setAttributesNow(_ id: Int64, mode: UInt32?, uid: UInt32?, gid: UInt32?, atime: TimeSet?, mtime: TimeSet?)
        -> Result<Node, FSError>? { nil }
    public func create(parent: Int64, name: FileName, mode: UInt32, uid: UInt32, gid: UInt32) async throws(FSError) -> Node {
        try await create(parent: parent, name: name, mode: mode, uid: uid, gid: gid, target: nil, fileID: nil, size: 0, rdev: 0)
    }
    public func create(parent: Int64, name: FileName, mode: UInt32, uid: UInt32, gid: UInt32,
                       target: FileName? = nil, fileID: String? = nil, size: Int64 = 0) async throws(FSError) -> Node {
        try await create(parent: parent, name: name, mode: mode, uid: uid, gid: gid, target: target, fileID: fileID, size: size, rdev: 0)
    }
    public func create(parent: Int64, name: FileName, mode: UInt32, uid: UInt32, gid: UInt32, rdev: UInt64) async throws(FSError) -> Node {
        try await create(parent: parent, name: name, mode: mode, uid: uid, gid: gid, target: nil, fileID: nil, size: 0, rdev: rdev)
    }
    public func commitWrite(_ id: Int64, fileID: String?, size: Int64) async throws(FSError) -> QueuedDelete? {
        try await commitWrite(id, fileID: fileID, size: size, dropStaged: false)
    }
    public func saveStaged(ino: Int64, state: WriteState, status: StagedStatus, error: String?) async throws(FSError) {
        try await saveStaged(ino: ino, state: state, status: status, error: error, durable: false)
    }
}
