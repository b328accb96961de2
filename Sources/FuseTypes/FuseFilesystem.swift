#if canImport(Glibc)
import Glibc
#endif

/// A filesystem driven by FuseKit. Methods correspond to `fuse_lowlevel_ops` in libfuse; each
/// returns the value FuseKit replies with, or throws `FSError` (replied as its errno).
/// Every method has a default that throws ENOSYS, so a filesystem can be mounted before most of it
/// is written.
///
/// Lookup counting: each returned `Entry` (lookup, mknod, mkdir, symlink, link, create) counts as
/// one lookup; the filesystem increments before returning. If the kernel discards the reply
/// (interrupted request), FuseKit calls `forget(ino:nlookup: 1)`. For readdirplus, the filesystem
/// does *not* count the entries it returns: FuseKit calls `grantLookups` for the ones it emitted,
/// before replying.
///
/// Names and symlink targets are `FileName`s: the exact bytes the caller gave (not necessarily
/// UTF-8). `mknod` creates regular files and special files (FIFOs, sockets, devices: `mode`
/// holds the type, `rdev` the device number); its default refuses with EPERM.
///
/// Locks: when `supportsLocks` is true FuseKit installs libfuse's `getlk`, `setlk` and `flock`
/// (libfuse then asks the kernel for FUSE_CAP_POSIX_LOCKS and FUSE_CAP_FLOCK_LOCKS), and the
/// kernel sends every fcntl and flock lock request here instead of keeping locks itself. The
/// filesystem must then drop the POSIX locks of `lockOwner` on `flush` (close), and the flock
/// locks of `lockOwner` on `release` when `flockRelease` is set. When it is false (the default)
/// the ops are not installed and the kernel keeps locks locally, as before.
public protocol FuseFilesystem: Sendable {
    /// Called once when the kernel connection is initialised (after the mount is live).
    func initialized()
    /// Called on unmount (`destroy`).
    func destroyed()
    /// Called by `FuseSession.mount()` once the mount is live: the way to tell the kernel its
    /// caches are stale (see `KernelCacheNotifier` for the threading rules). Default: ignored.
    func attach(notifier: any KernelCacheNotifier)

    /// Whether FuseKit installs the lock operations (read once, when the session is created).
    var supportsLocks: Bool { get }
    /// `getlk` (fcntl F_GETLK / F_OFD_GETLK): the first lock of another owner that conflicts
    /// with `lock`, or nil when `lock` could be set (FuseKit replies F_UNLCK). Valid replies:
    /// `fuse_reply_lock`, `fuse_reply_err`.
    func getlk(ino: UInt64, fh: UInt64, owner: UInt64, lock: FileLock) async throws(FSError) -> FileLock?
    /// `setlk` (fcntl F_SETLK / F_SETLKW): sets, changes or (type `.unlock`) drops the POSIX lock
    /// of `owner` on `lock.start...lock.end`. A conflict throws EAGAIN when `sleep` is false; when
    /// it is true the call waits until the lock is granted. If the caller is interrupted (a
    /// signal), FuseKit cancels the Task: the method must then throw EINTR soon.
    /// Valid replies: `fuse_reply_err`.
    func setlk(ino: UInt64, fh: UInt64, owner: UInt64, lock: FileLock, sleep: Bool) async throws(FSError)
    /// `flock` (flock(2), whole file): `type` `.read` = LOCK_SH, `.write` = LOCK_EX,
    /// `.unlock` = LOCK_UN; `sleep` is false for LOCK_NB (conflict: EAGAIN (EWOULDBLOCK)).
    /// Waiting and interruption as for `setlk`. `owner` is the open file description.
    /// Valid replies: `fuse_reply_err`.
    func flock(ino: UInt64, fh: UInt64, owner: UInt64, type: LockType, pid: Int32, sleep: Bool) async throws(FSError)

    func lookup(parent: UInt64, name: FileName, ctx: RequestContext) async throws(FSError) -> Entry
    /// `forget`/`forget_multi`: no reply. Must not block for long.
    func forget(ino: UInt64, nlookup: UInt64)
    func grantLookups(_ inos: [UInt64])
    func getattr(ino: UInt64, fh: UInt64?) async throws(FSError) -> (Attr, Double)
    func setattr(ino: UInt64, changes: SetAttr, ctx: RequestContext) async throws(FSError) -> (Attr, Double)
    func readlink(ino: UInt64) async throws(FSError) -> FileName
    func mknod(parent: UInt64, name: FileName, mode: UInt32, rdev: UInt64, ctx: RequestContext) async throws(FSError) -> Entry
    func mkdir(parent: UInt64, name: FileName, mode: UInt32, ctx: RequestContext) async throws(FSError) -> Entry
    func unlink(parent: UInt64, name: FileName, ctx: RequestContext) async throws(FSError)
    func rmdir(parent: UInt64, name: FileName, ctx: RequestContext) async throws(FSError)
    func symlink(target: FileName, parent: UInt64, name: FileName, ctx: RequestContext) async throws(FSError) -> Entry
    /// `flags`: RENAME_NOREPLACE (1), RENAME_EXCHANGE (2).
    func rename(parent: UInt64, name: FileName, newParent: UInt64, newName: FileName, flags: UInt32, ctx: RequestContext) async throws(FSError)
    func link(ino: UInt64, newParent: UInt64, newName: FileName, ctx: RequestContext) async throws(FSError) -> Entry
    func open(ino: UInt64, flags: Int32, ctx: RequestContext) async throws(FSError) -> Opened
    func create(parent: UInt64, name: FileName, mode: UInt32, flags: Int32, ctx: RequestContext) async throws(FSError) -> (Entry, Opened)
    func read(ino: UInt64, fh: UInt64, offset: Int64, size: Int) async throws(FSError) -> [UInt8]
    func write(ino: UInt64, fh: UInt64, offset: Int64, data: [UInt8]) async throws(FSError) -> Int
    func flush(ino: UInt64, fh: UInt64) async throws(FSError)
    /// What FuseKit calls on `flush` (close(2) of a descriptor): `lockOwner` is `fi->lock_owner`,
    /// whose POSIX locks on `ino` must be dropped. Default: `flush(ino:fh:)`.
    func flush(ino: UInt64, fh: UInt64, lockOwner: UInt64) async throws(FSError)
    func release(ino: UInt64, fh: UInt64) async throws(FSError)
    /// What FuseKit calls on `release` (last close of an open file description): when
    /// `flockRelease` (`fi->flock_release`) is set, the flock locks of `lockOwner` on `ino` must
    /// be dropped. Default: `release(ino:fh:)`.
    func release(ino: UInt64, fh: UInt64, lockOwner: UInt64, flockRelease: Bool) async throws(FSError)
    func fsync(ino: UInt64, fh: UInt64, dataOnly: Bool) async throws(FSError)
    func opendir(ino: UInt64, flags: Int32) async throws(FSError) -> Opened
    /// Entries after `offset` (0 = from the start), in order. `plus` asks for `DirEntry.entry`.
    /// FuseKit emits as many as fit and continues at the last emitted `nextOffset` next time.
    func readdir(ino: UInt64, fh: UInt64, offset: Int64, plus: Bool) async throws(FSError) -> [DirEntry]
    func releasedir(ino: UInt64, fh: UInt64) async throws(FSError)
    func statfs(ino: UInt64) async throws(FSError) -> StatFS
    func setxattr(ino: UInt64, name: String, value: [UInt8], flags: XattrFlags, ctx: RequestContext) async throws(FSError)
    /// The whole value; FuseKit applies the size rules (`XattrAnswer.resolve`).
    func getxattr(ino: UInt64, name: String) async throws(FSError) -> [UInt8]
    func listxattr(ino: UInt64) async throws(FSError) -> [String]
    func removexattr(ino: UInt64, name: String) async throws(FSError)
    func access(ino: UInt64, mask: Int32) async throws(FSError)

    // Answers from memory, on libfuse's thread, without starting a Task: nil means "ask the async
    // method". They must not wait (no network, no awaiting; at most a short local write, as the
    // small-file journal's or a create in a local database): a request answered here costs no
    // thread hop (issue 12). Lookup counting is as for `lookup`.
    func immediateLookup(parent: UInt64, name: FileName) -> Result<Entry, FSError>?
    func immediateGetattr(ino: UInt64) -> (Attr, Double)?
    func immediateGetxattr(ino: UInt64, name: String) -> Result<[UInt8], FSError>?
    func immediateWrite(ino: UInt64, fh: UInt64, offset: Int64, data: [UInt8]) -> Result<Int, FSError>?
    func immediateCreate(parent: UInt64, name: FileName, mode: UInt32, flags: Int32, ctx: RequestContext) -> Result<(Entry, Opened), FSError>?
    func immediateSetattr(ino: UInt64, changes: SetAttr, ctx: RequestContext) -> Result<(Attr, Double), FSError>?
    func immediateOpen(ino: UInt64, flags: Int32, ctx: RequestContext) -> Result<Opened, FSError>?
    /// close(2) of a descriptor (as `flush(ino:fh:lockOwner:)`).
    func immediateFlush(ino: UInt64, fh: UInt64, lockOwner: UInt64) -> Result<Void, FSError>?
    /// The last close of an open file description (as `release(ino:fh:lockOwner:flockRelease:)`).
    func immediateRelease(ino: UInt64, fh: UInt64, lockOwner: UInt64, flockRelease: Bool) -> Result<Void, FSError>?
}

extension FuseFilesystem {
    public func immediateLookup(parent: UInt64, name: FileName) -> Result<Entry, FSError>? { nil }
    public func immediateGetattr(ino: UInt64) -> (Attr, Double)? { nil }
    public func immediateGetxattr(ino: UInt64, name: String) -> Result<[UInt8], FSError>? { nil }
    public func immediateWrite(ino: UInt64, fh: UInt64, offset: Int64, data: [UInt8]) -> Result<Int, FSError>? { nil }
    public func immediateCreate(parent: UInt64, name: FileName, mode: UInt32, flags: Int32, ctx: RequestContext)
        -> Result<(Entry, Opened), FSError>? { nil }
    public func immediateSetattr(ino: UInt64, changes: SetAttr, ctx: RequestContext) -> Result<(Attr, Double), FSError>? { nil }
    public func immediateOpen(ino: UInt64, flags: Int32, ctx: RequestContext) -> Result<Opened, FSError>? { nil }
    public func immediateFlush(ino: UInt64, fh: UInt64, lockOwner: UInt64) -> Result<Void, FSError>? { nil }
    public func immediateRelease(ino: UInt64, fh: UInt64, lockOwner: UInt64, flockRelease: Bool) -> Result<Void, FSError>? { nil }
    public func initialized() {}
    public func destroyed() {}
    public func attach(notifier: any KernelCacheNotifier) {}
    public var supportsLocks: Bool { false }
    public func getlk(ino: UInt64, fh: UInt64, owner: UInt64, lock: FileLock) async throws(FSError) -> FileLock? { throw FSError(ENOSYS, "getlk") }
    public func setlk(ino: UInt64, fh: UInt64, owner: UInt64, lock: FileLock, sleep: Bool) async throws(FSError) { throw FSError(ENOSYS, "setlk") }
    public func flock(ino: UInt64, fh: UInt64, owner: UInt64, type: LockType, pid: Int32, sleep: Bool) async throws(FSError) { throw FSError(ENOSYS, "flock") }
    public func flush(ino: UInt64, fh: UInt64, lockOwner: UInt64) async throws(FSError) { try await flush(ino: ino, fh: fh) }
    public func release(ino: UInt64, fh: UInt64, lockOwner: UInt64, flockRelease: Bool) async throws(FSError) { try await release(ino: ino, fh: fh) }
    public func forget(ino: UInt64, nlookup: UInt64) {}
    public func grantLookups(_ inos: [UInt64]) {}
    public func lookup(parent: UInt64, name: FileName, ctx: RequestContext) async throws(FSError) -> Entry { throw FSError(ENOSYS, "lookup") }
    public func getattr(ino: UInt64, fh: UInt64?) async throws(FSError) -> (Attr, Double) { throw FSError(ENOSYS, "getattr") }
    public func setattr(ino: UInt64, changes: SetAttr, ctx: RequestContext) async throws(FSError) -> (Attr, Double) { throw FSError(ENOSYS, "setattr") }
    public func readlink(ino: UInt64) async throws(FSError) -> FileName { throw FSError(ENOSYS, "readlink") }
    public func mknod(parent: UInt64, name: FileName, mode: UInt32, rdev: UInt64, ctx: RequestContext) async throws(FSError) -> Entry { throw FSError(EPERM, "mknod") }
    public func mkdir(parent: UInt64, name: FileName, mode: UInt32, ctx: RequestContext) async throws(FSError) -> Entry { throw FSError(ENOSYS, "mkdir") }
    public func unlink(parent: UInt64, name: FileName, ctx: RequestContext) async throws(FSError) { throw FSError(ENOSYS, "unlink") }
    public func rmdir(parent: UInt64, name: FileName, ctx: RequestContext) async throws(FSError) { throw FSError(ENOSYS, "rmdir") }
    public func symlink(target: FileName, parent: UInt64, name: FileName, ctx: RequestContext) async throws(FSError) -> Entry { throw FSError(ENOSYS, "symlink") }
    public func rename(parent: UInt64, name: FileName, newParent: UInt64, newName: FileName, flags: UInt32, ctx: RequestContext) async throws(FSError) { throw FSError(ENOSYS, "rename") }
    public func link(ino: UInt64, newParent: UInt64, newName: FileName, ctx: RequestContext) async throws(FSError) -> Entry { throw FSError(ENOSYS, "link") }
    public func open(ino: UInt64, flags: Int32, ctx: RequestContext) async throws(FSError) -> Opened { Opened(fh: 0) }
    public func create(parent: UInt64, name: FileName, mode: UInt32, flags: Int32, ctx: RequestContext) async throws(FSError) -> (Entry, Opened) { throw FSError(ENOSYS, "create") }
    public func read(ino: UInt64, fh: UInt64, offset: Int64, size: Int) async throws(FSError) -> [UInt8] { throw FSError(ENOSYS, "read") }
    public func write(ino: UInt64, fh: UInt64, offset: Int64, data: [UInt8]) async throws(FSError) -> Int { throw FSError(ENOSYS, "write") }
    public func flush(ino: UInt64, fh: UInt64) async throws(FSError) {}
    public func release(ino: UInt64, fh: UInt64) async throws(FSError) {}
    public func fsync(ino: UInt64, fh: UInt64, dataOnly: Bool) async throws(FSError) {}
    public func opendir(ino: UInt64, flags: Int32) async throws(FSError) -> Opened { Opened(fh: 0) }
    public func readdir(ino: UInt64, fh: UInt64, offset: Int64, plus: Bool) async throws(FSError) -> [DirEntry] { throw FSError(ENOSYS, "readdir") }
    public func releasedir(ino: UInt64, fh: UInt64) async throws(FSError) {}
    public func statfs(ino: UInt64) async throws(FSError) -> StatFS { StatFS(blockSize: 4096, blocks: 0, blocksFree: 0, blocksAvailable: 0, files: 0, filesFree: 0) }
    public func setxattr(ino: UInt64, name: String, value: [UInt8], flags: XattrFlags, ctx: RequestContext) async throws(FSError) { throw FSError(ENOTSUP, "setxattr") }
    public func getxattr(ino: UInt64, name: String) async throws(FSError) -> [UInt8] { throw FSError(ENOTSUP, "getxattr") }
    public func listxattr(ino: UInt64) async throws(FSError) -> [String] { [] }
    public func removexattr(ino: UInt64, name: String) async throws(FSError) { throw FSError(ENOTSUP, "removexattr") }
    public func access(ino: UInt64, mask: Int32) async throws(FSError) {}
}
