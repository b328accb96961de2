import FuseTypes
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// fcntl and flock locks, kept by the `LockService` (in memory by default; shared between
/// mounts when the service is). Owners are the kernel's lock owners on this mount
/// (`options.lockSession`). POSIX locks of an owner go at its close (`flush`), flock locks at the
/// last close of the open file description (`release` with `flockRelease`).
extension FDFSFileSystem {
    /// First and longest pause between attempts of a blocking lock request.
    static let lockRetryFirst: Duration = .milliseconds(20)
    static let lockRetryMax: Duration = .milliseconds(200)

    public var supportsLocks: Bool { true }

    public func attach(notifier: any KernelCacheNotifier) {
        kernelNotifier.withLock { $0 = notifier }
    }

    func lockOwner(_ id: UInt64) -> LockOwner { LockOwner(session: options.lockSession, id: id) }

    public func getlk(ino: UInt64, fh: UInt64, owner: UInt64, lock: FileLock) async throws(FSError) -> FileLock? {
        let request = LockRequest(owner: lockOwner(owner), kind: .posix, type: lock.type, start: lock.start, end: lock.end, pid: lock.pid)
        guard let held = try await locks.test(ino: ino, request) else { return nil }
        // A pid of another mount means nothing here (the kernel would map it to a local process).
        let pid = held.session == options.lockSession ? held.pid : 0
        return FileLock(type: held.type == .read ? .read : .write, start: held.start, end: held.end, pid: pid)
    }

    public func setlk(ino: UInt64, fh: UInt64, owner: UInt64, lock: FileLock, sleep: Bool) async throws(FSError) {
        let request = LockRequest(owner: lockOwner(owner), kind: .posix, type: lock.type, start: lock.start, end: lock.end, pid: lock.pid)
        try await acquire(ino: ino, request, wait: sleep)
    }

    public func flock(ino: UInt64, fh: UInt64, owner: UInt64, type: LockType, pid: Int32, sleep: Bool) async throws(FSError) {
        try await acquire(ino: ino, LockRequest(owner: lockOwner(owner), kind: .flock, type: type, pid: pid), wait: sleep)
    }

    /// Sets the lock; when `wait`, retries a conflict with a growing pause (20 → 200 ms) until it
    /// is granted or the Task is cancelled (FuseKit cancels it when the caller gets a signal):
    /// then EINTR.
    func acquire(ino: UInt64, _ request: LockRequest, wait: Bool) async throws(FSError) {
        var pause = Self.lockRetryFirst
        while true {
            do {
                try await locks.set(ino: ino, request)
                if request.type != .unlock {
                    _ = heldLocks.withLock { $0.insert(HeldLock(ino: ino, owner: request.owner.id, kind: request.kind)) }
                }
                return
            } catch where error.errno == EAGAIN && wait && request.type != .unlock {
                do { try await Task.sleep(for: pause) } catch { throw FSError(EINTR, "lock wait on inode \(ino) interrupted", quiet: true) }
                pause = min(pause * 2, Self.lockRetryMax)
            }
        }
    }

    /// close(2) of a descriptor: the data becomes durable, then the POSIX locks of `lockOwner`
    /// go (in that order: whoever takes the lock next, on any mount, sees the data).
    public func flush(ino: UInt64, fh: UInt64, lockOwner: UInt64) async throws(FSError) {
        var failure: FSError?
        do { try await flush(ino: ino, fh: fh) } catch { failure = error }
        // Only owners that ever took a lock here: a close costs no lock-service call otherwise
        // (a round trip to the database for a shared tree, and one that works while it is down).
        guard heldLocks.withLock({ $0.remove(HeldLock(ino: ino, owner: lockOwner, kind: .posix)) }) != nil else {
            if let failure { throw failure }
            return
        }
        do { try await locks.releaseAll(ino: ino, owner: self.lockOwner(lockOwner), kind: .posix) } catch {
            logger.error("cannot release the POSIX locks of owner \(lockOwner) on inode \(ino): \(error)")
            failure = failure ?? error
        }
        if let failure { throw failure }
    }

    /// The last close of an open file description: its flock locks go when the kernel says so,
    /// first (another process, here or on another mount, may be waiting for them), then the handle.
    public func release(ino: UInt64, fh: UInt64, lockOwner: UInt64, flockRelease: Bool) async throws(FSError) {
        var failure: FSError?
        if flockRelease, heldLocks.withLock({ $0.remove(HeldLock(ino: ino, owner: lockOwner, kind: .flock)) }) != nil {
            do { try await locks.releaseAll(ino: ino, owner: self.lockOwner(lockOwner), kind: .flock) } catch {
                logger.error("cannot release the flock locks of owner \(lockOwner) on inode \(ino): \(error)")
                failure = error
            }
        }
        do { try await release(ino: ino, fh: fh) } catch { failure = failure ?? error }
        if let failure { throw failure }
    }

    /// At unmount: drops whatever locks this mount still holds.
    public func releaseLockSession() async {
        do { try await locks.releaseSession(options.lockSession) } catch {
            logger.warning("cannot release the locks of session \(options.lockSession): \(error)")
        }
    }
}
