import Testing
import FuseTypes
@testable import FDFSFileSystem
#if canImport(Glibc)
import Glibc
#endif

@Suite("FDFSFileSystem locks")
struct FileSystemLockTests {
    let fs: FDFSFileSystem
    let session: String

    init() async throws {
        var o = FDFSOptions()
        o.lockSession = "test-mount"
        session = o.lockSession
        fs = FDFSFileSystem(store: MemoryFileStore(), naming: try NamingStore(path: nil), options: o)
    }

    @Test func supportsLocksAndKeepsANotifier() {
        #expect(fs.supportsLocks)
        #expect(fs.notifier == nil)
        final class Recorder: KernelCacheNotifier {
            func invalidateEntry(parent: UInt64, name: FileName) {}
            func invalidateInode(ino: UInt64) {}
        }
        fs.attach(notifier: Recorder())
        #expect(fs.notifier != nil)
    }

    @Test func getlkReportsTheConflictOrNil() async throws {
        try await fs.setlk(ino: 5, fh: 0, owner: 1, lock: FileLock(type: .write, start: 10, end: 19, pid: 100), sleep: false)
        let c = try await fs.getlk(ino: 5, fh: 0, owner: 2, lock: FileLock(type: .read, start: 0, end: FileLock.toEOF, pid: 200))
        #expect(c == FileLock(type: .write, start: 10, end: 19, pid: 100))
        #expect(try await fs.getlk(ino: 5, fh: 0, owner: 1, lock: FileLock(type: .write)) == nil, "own locks never conflict")
        #expect(try await fs.getlk(ino: 5, fh: 0, owner: 2, lock: FileLock(type: .read, start: 20, end: 30)) == nil)
    }

    @Test func getlkHidesThePidOfAnotherMount() async throws {
        try await fs.locks.set(ino: 5, LockRequest(owner: LockOwner(session: "elsewhere", id: 1), kind: .posix, type: .write, pid: 77))
        let c = try await fs.getlk(ino: 5, fh: 0, owner: 1, lock: FileLock(type: .read))
        #expect(c?.type == .write && c?.pid == 0)
    }

    @Test func nonBlockingConflictIsEAGAIN() async throws {
        try await fs.flock(ino: 5, fh: 0, owner: 1, type: .write, pid: 1, sleep: false)
        #expect(await errnoOf { () async throws(FSError) in try await fs.flock(ino: 5, fh: 0, owner: 2, type: .read, pid: 2, sleep: false) } == EAGAIN)
        try await fs.setlk(ino: 5, fh: 0, owner: 1, lock: FileLock(type: .write), sleep: false)
        #expect(await errnoOf { () async throws(FSError) in try await fs.setlk(ino: 5, fh: 0, owner: 2, lock: FileLock(type: .read, start: 3, end: 3), sleep: false) } == EAGAIN)
    }

    @Test func blockingSetlkWaitsForTheRelease() async throws {
        try await fs.setlk(ino: 5, fh: 0, owner: 1, lock: FileLock(type: .write), sleep: false)
        let fs = self.fs
        let waiter = Task { () async -> Int32? in
            await errnoOf { () async throws(FSError) in try await fs.setlk(ino: 5, fh: 0, owner: 2, lock: FileLock(type: .write, start: 0, end: 0, pid: 2), sleep: true) }
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(fs.locks is MemoryLockService)
        #expect((fs.locks as! MemoryLockService).rows.map(\.owner) == [1], "still waiting")
        // close(2) of the holder: flush with its lock owner drops its POSIX locks.
        try await fs.flush(ino: 5, fh: 0, lockOwner: 1)
        #expect(await waiter.value == nil)
        #expect((fs.locks as! MemoryLockService).rows.map(\.owner) == [2])
    }

    @Test func cancelledWaitIsEINTRAndLeavesNoLock() async throws {
        try await fs.flock(ino: 5, fh: 0, owner: 1, type: .write, pid: 1, sleep: false)
        let fs = self.fs
        let waiter = Task { () async -> Int32? in
            await errnoOf { () async throws(FSError) in try await fs.flock(ino: 5, fh: 0, owner: 2, type: .write, pid: 2, sleep: true) }
        }
        try await Task.sleep(for: .milliseconds(60))
        waiter.cancel()
        #expect(await waiter.value == EINTR)
        #expect((fs.locks as! MemoryLockService).rows.map(\.owner) == [1])
    }

    @Test func releaseDropsFlockLocksOnlyWhenTold() async throws {
        let o = try await fs.create(parent: InodeTable.root, name: "locked", mode: 0o644, flags: O_RDWR, ctx: RequestContext())
        let ino = o.0.attr.ino
        try await fs.flock(ino: ino, fh: o.1.fh, owner: 9, type: .write, pid: 1, sleep: false)
        try await fs.setlk(ino: ino, fh: o.1.fh, owner: 3, lock: FileLock(type: .read), sleep: false)
        try await fs.flush(ino: ino, fh: o.1.fh, lockOwner: 3)
        #expect((fs.locks as! MemoryLockService).rows.map(\.kind) == [.flock], "flush drops POSIX locks only")
        try await fs.release(ino: ino, fh: o.1.fh, lockOwner: 9, flockRelease: false)
        #expect((fs.locks as! MemoryLockService).rows.count == 1)
        let o2 = try await fs.open(ino: ino, flags: O_RDONLY, ctx: RequestContext())
        try await fs.release(ino: ino, fh: o2.fh, lockOwner: 9, flockRelease: true)
        #expect((fs.locks as! MemoryLockService).rows.isEmpty)
        #expect(fs.openHandleCount == 0)
    }

    @Test func unmountDropsTheSessionsLocks() async throws {
        try await fs.setlk(ino: 5, fh: 0, owner: 1, lock: FileLock(type: .write), sleep: false)
        try await fs.locks.set(ino: 5, LockRequest(owner: LockOwner(session: "elsewhere", id: 1), kind: .flock, type: .write))
        await fs.releaseLockSession()
        #expect((fs.locks as! MemoryLockService).rows.map(\.session) == ["elsewhere"])
    }
}
