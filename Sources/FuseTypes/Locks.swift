// File locks (fcntl POSIX record locks and flock(2) locks) and kernel cache notifications, as
// the filesystem sees them: value types with no libfuse import.
#if canImport(Glibc)
import Glibc
#endif

/// The type of a lock request: `F_RDLCK`, `F_WRLCK`, `F_UNLCK` for fcntl; `LOCK_SH`, `LOCK_EX`,
/// `LOCK_UN` for flock(2).
public enum LockType: Sendable, Hashable {
    /// Shared: F_RDLCK / LOCK_SH.
    case read
    /// Exclusive: F_WRLCK / LOCK_EX.
    case write
    /// Release: F_UNLCK / LOCK_UN.
    case unlock
}

/// A POSIX record lock (`struct flock` with `l_whence = SEEK_SET`): bytes `start...end`.
public struct FileLock: Sendable, Hashable {
    /// `end` of a lock that reaches the end of the file, however long it grows (`l_len == 0`).
    public static let toEOF = Int64.max

    public var type: LockType
    public var start: Int64
    /// The last byte, inclusive; `FileLock.toEOF` for "to the end of the file".
    public var end: Int64
    /// The process that holds (or asks for) the lock. Informational only: ownership is the lock
    /// owner, not the pid.
    public var pid: Int32

    public init(type: LockType, start: Int64 = 0, end: Int64 = FileLock.toEOF, pid: Int32 = 0) {
        self.type = type; self.start = start; self.end = end; self.pid = pid
    }
}

/// Tells the kernel that what it cached is stale (another mount changed the tree). FuseKit
/// implements it over `fuse_lowlevel_notify_inval_entry` / `fuse_lowlevel_notify_inval_inode`
/// and hands it to the filesystem through `FuseFilesystem.attach(notifier:)` after the mount.
///
/// Both methods only queue the notification and return at once: FuseKit sends it from a thread
/// of its own, never from a libfuse worker, because the kernel may wait for requests on the same
/// inode (a lookup in the parent, a setattr of the inode) before it accepts the notification.
/// So a request handler may call them, but must not wait for the notification to have been
/// delivered. Names or inodes the kernel does not have cached (ENOENT) are ignored.
public protocol KernelCacheNotifier: Sendable {
    /// Forgets the dentry `name` in `parent` (and the parent's attributes): the next access looks
    /// it up again.
    func invalidateEntry(parent: UInt64, name: FileName)
    /// Drops the cached attributes and all cached data of `ino`.
    func invalidateInode(ino: UInt64)
}
