import Testing
import CFuse3
import FuseTypes
import Synchronization
@testable import FuseKit
#if canImport(Glibc)
import Glibc
#endif

@Suite("FuseKit conversions")
struct FuseKitTests {
    @Test func attrToStat() {
        let a = Attr(ino: 42, mode: UInt32(Glibc.S_IFREG) | 0o640, nlink: 3, uid: 7, gid: 8, size: 1025,
                     atime: Timespec(sec: 1, nsec: 2), mtime: Timespec(sec: 3, nsec: 4), ctime: Timespec(sec: 5, nsec: 6))
        let st = statFrom(a)
        #expect(st.st_ino == 42 && st.st_mode == mode_t(Glibc.S_IFREG) | 0o640 && st.st_nlink == 3)
        #expect(st.st_uid == 7 && st.st_gid == 8 && st.st_size == 1025 && st.st_blocks == 3)
        #expect(st.st_atim.tv_sec == 1 && st.st_atim.tv_nsec == 2 && st.st_mtim.tv_sec == 3 && st.st_ctim.tv_nsec == 6)
    }

    @Test func deviceNodesCarryTheirDeviceNumber() {
        let a = Attr(ino: 5, mode: UInt32(Glibc.S_IFCHR) | 0o600, rdev: (1 << 8) | 3)
        #expect(statFrom(a).st_rdev == (1 << 8) | 3)
        let p = entryParam(Entry(attr: Attr(ino: 6, mode: UInt32(Glibc.S_IFBLK) | 0o600, rdev: (7 << 8) | 200), attrTimeout: 1, entryTimeout: 1))
        #expect(p.attr.st_rdev == (7 << 8) | 200 && p.attr.st_mode == mode_t(Glibc.S_IFBLK) | 0o600)
    }

    @Test func namesCrossTheCBoundaryAsBytes() {
        // What libfuse hands over (a NUL-terminated C string) comes back byte for byte, and
        // what is replied (readdir, readlink) is the same bytes plus the NUL.
        for name in [FileName(bytes: [0x62, 0x61, 0x64, 0xFF]), FileName(bytes: [0x62, 0x61, 0x64, 0xFE]), "grüße", FileName(bytes: [0x80])] {
            let back = withCString(name) { c in fname(c) }
            #expect(back == name)
            #expect(withCString(name) { strlen($0) } == name.count)
        }
        #expect(FileName(bytes: [0x62, 0x61, 0x64, 0xFF]) != FileName(bytes: [0x62, 0x61, 0x64, 0xFE]))
        #expect(FileName(bytes: [0x62, 0x61, 0x64, 0xFF]).description == "bad\\xFF")
    }

    @Test func bdiPathFromTheMountDevice() {
        // glibc dev_t encoding: minor low 8 bits, major 12 bits, then the high parts.
        #expect(BDIReadahead.majorMinor(0x2d) == (0, 45))
        #expect(BDIReadahead.majorMinor(8 << 8 | 1) == (8, 1))
        let bigMinor: UInt64 = 300
        #expect(BDIReadahead.majorMinor((bigMinor & 0xff) | (bigMinor & ~0xff) << 12) == (0, 300))
        #expect(BDIReadahead.sysfsPath(device: 0x2d) == "/sys/class/bdi/0:45/read_ahead_kb")
    }

    @Test func attrsAskForOneMiBIOBuffers() {
        // cat/cp size their buffers from st_blksize: 1 MiB matches the largest FUSE read.
        let a = Attr(ino: 1, mode: UInt32(Glibc.S_IFREG) | 0o644, nlink: 1, uid: 0, gid: 0, size: 10,
                     atime: Timespec(sec: 0, nsec: 0), mtime: Timespec(sec: 0, nsec: 0), ctime: Timespec(sec: 0, nsec: 0))
        #expect(statFrom(a).st_blksize == 1 << 20)
    }

    @Test func entryParamCarriesTimeouts() {
        let e = Entry(attr: Attr(ino: 9, mode: UInt32(Glibc.S_IFDIR) | 0o755), generation: 2, attrTimeout: 1.5, entryTimeout: 2.5)
        let p = entryParam(e)
        #expect(p.ino == 9 && p.generation == 2 && p.attr_timeout == 1.5 && p.entry_timeout == 2.5 && p.attr.st_ino == 9)
    }

    @Test func everyOperationIsWired() {
        let ops = LowLevelOps.make()
        #expect(ops.`init` != nil && ops.destroy != nil && ops.lookup != nil && ops.forget != nil && ops.forget_multi != nil)
        #expect(ops.getattr != nil && ops.setattr != nil && ops.readlink != nil && ops.mknod != nil && ops.mkdir != nil)
        #expect(ops.unlink != nil && ops.rmdir != nil && ops.symlink != nil && ops.rename != nil && ops.link != nil)
        #expect(ops.open != nil && ops.create != nil && ops.read != nil && ops.write != nil && ops.flush != nil)
        #expect(ops.release != nil && ops.fsync != nil && ops.opendir != nil && ops.readdir != nil && ops.readdirplus != nil)
        #expect(ops.releasedir != nil && ops.statfs != nil && ops.setxattr != nil && ops.getxattr != nil)
        #expect(ops.listxattr != nil && ops.removexattr != nil && ops.access != nil)
    }

    @Test func lockOpsOnlyWhenTheFilesystemSupportsLocks() {
        // libfuse asks for FUSE_CAP_POSIX_LOCKS / FLOCK_LOCKS exactly when these are non-NULL.
        let without = LowLevelOps.make()
        #expect(without.getlk == nil && without.setlk == nil && without.flock == nil)
        let with = LowLevelOps.make(locks: true)
        #expect(with.getlk != nil && with.setlk != nil && with.flock != nil)
    }

    @Test func structFlockToFileLock() {
        var l = flock()
        l.l_type = Int16(F_WRLCK); l.l_whence = Int16(SEEK_SET); l.l_start = 100; l.l_len = 0; l.l_pid = 42
        #expect(fileLock(l) == FileLock(type: .write, start: 100, end: FileLock.toEOF, pid: 42))
        l.l_type = Int16(F_RDLCK); l.l_len = 10
        #expect(fileLock(l) == FileLock(type: .read, start: 100, end: 109, pid: 42))
        l.l_type = Int16(F_UNLCK)
        #expect(fileLock(l).type == .unlock)
    }

    @Test func fileLockToStructFlock() {
        let c = cFlock(FileLock(type: .read, start: 5, end: 9, pid: 7))
        #expect(c.l_type == Int16(F_RDLCK) && c.l_start == 5 && c.l_len == 5 && c.l_pid == 7 && c.l_whence == Int16(SEEK_SET))
        let e = cFlock(FileLock(type: .write, start: 5, end: FileLock.toEOF, pid: 7))
        #expect(e.l_type == Int16(F_WRLCK) && e.l_len == 0)
        #expect(cFlock(nil).l_type == Int16(F_UNLCK))
        for lock in [FileLock(type: .write, start: 0, end: 0, pid: 1), FileLock(type: .read, start: 1 << 40, end: FileLock.toEOF, pid: 2)] {
            #expect(fileLock(cFlock(lock)) == lock)
        }
    }

    @Test func flockOperations() {
        #expect(flockOperation(LOCK_SH)! == (.read, true))
        #expect(flockOperation(LOCK_EX | LOCK_NB)! == (.write, false))
        #expect(flockOperation(LOCK_UN)! == (.unlock, false))
        #expect(flockOperation(0) == nil)
    }

    @Test func defaultFlushAndReleaseKeepTodaysBehaviour() async throws {
        final class Old: FuseFilesystem {
            let calls = Mutex<[String]>([])
            func flush(ino: UInt64, fh: UInt64) async throws(FSError) { calls.withLock { $0.append("flush \(ino) \(fh)") } }
            func release(ino: UInt64, fh: UInt64) async throws(FSError) { calls.withLock { $0.append("release \(ino) \(fh)") } }
        }
        let fs = Old()
        #expect(!fs.supportsLocks)
        try await fs.flush(ino: 2, fh: 3, lockOwner: 99)
        try await fs.release(ino: 2, fh: 3, lockOwner: 99, flockRelease: true)
        #expect(fs.calls.withLock { $0 } == ["flush 2 3", "release 2 3"])
        do throws(FSError) { try await fs.setlk(ino: 1, fh: 0, owner: 1, lock: FileLock(type: .write), sleep: false); Issue.record("no ENOSYS") } catch { #expect(error.errno == ENOSYS) }
    }

    @Test func shimUsesAPI312() {
        #expect(FuseSession.apiVersion == 312)
    }
}
