import FuseTypes
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where file locks live. `MemoryLockService` (the default) keeps them in this process, so they
/// exclude between the processes using one mount. A service over a shared database makes them
/// hold across every mount of one named tree: it keeps `LockRow`s, and for each call loads the
/// inode's rows into a `LockTable`, runs the same method on it, and writes back the rows of
/// `request.owner` and `request.kind` (`LockTable.rows(ino:owner:kind:)`), all in one
/// transaction (serialised per inode, e.g. `SELECT ... FOR UPDATE` or an advisory lock).
///
/// None of the methods waits for a lock: `set` fails with EAGAIN at once, and FDFSFileSystem
/// retries blocking requests itself (with a back-off, until the caller is interrupted).
public protocol LockService: Sendable {
    /// The first lock of another owner that conflicts with `request` (fcntl F_GETLK), or nil.
    func test(ino: UInt64, _ request: LockRequest) async throws(FSError) -> LockRow?
    /// Sets, converts or (`.unlock`) drops the lock. Throws EAGAIN when another owner's lock
    /// conflicts, EINVAL for a bad range.
    func set(ino: UInt64, _ request: LockRequest) async throws(FSError)
    /// Drops all the locks of `owner` of `kind` on `ino` (POSIX: at close; flock: at the last
    /// close of the open file description).
    func releaseAll(ino: UInt64, owner: LockOwner, kind: LockKind) async throws(FSError)
    /// Drops every lock held through `session` (at unmount; a database service also does it for
    /// sessions it finds dead).
    func releaseSession(_ session: String) async throws(FSError)
}

/// Locks of one mount, in memory: a `LockTable` under a Mutex.
public final class MemoryLockService: LockService {
    private let table = Mutex(LockTable())

    public init() {}

    public func test(ino: UInt64, _ request: LockRequest) async throws(FSError) -> LockRow? {
        guard request.isValid else { throw FSError(EINVAL, "lock range \(request.start)...\(request.end)") }
        return table.withLock { $0.conflict(ino: ino, request) }
    }

    public func set(ino: UInt64, _ request: LockRequest) async throws(FSError) {
        guard request.isValid else { throw FSError(EINVAL, "lock range \(request.start)...\(request.end)") }
        let outcome = table.withLock { $0.set(ino: ino, request) }
        if case .conflict(let other) = outcome {
            throw FSError(EAGAIN, "inode \(ino): \(other.kind) \(other.type) lock \(other.start)...\(other.end) of pid \(other.pid)", quiet: true)
        }
    }

    public func releaseAll(ino: UInt64, owner: LockOwner, kind: LockKind) async throws(FSError) {
        table.withLock { _ = $0.releaseAll(ino: ino, owner: owner, kind: kind) }
    }

    public func releaseSession(_ session: String) async throws(FSError) {
        table.withLock { $0.releaseSession(session) }
    }

    /// Every lock held (tests).
    public var rows: [LockRow] { table.withLock { $0.rows } }
}

/// A lock owner of this mount that holds (or held) a lock of one kind on an inode.
struct HeldLock: Hashable, Sendable {
    var ino: UInt64
    var owner: UInt64
    var kind: LockKind
}
