import Testing
import FuseTypes
import Synchronization
@testable import FuseKit
#if canImport(Glibc)
import Glibc
#endif

/// One file, `a` (inode 2), whose size and existence the test changes behind the kernel's back;
/// entries and attributes are cached for a minute, so only a notification makes the kernel ask
/// again. Answers come from memory on libfuse's threads (`immediate*`).
private final class ChangingFS: FuseFilesystem {
    let size = Mutex<Int64>(1)
    let exists = Mutex(true)
    let notifier = Mutex<(any KernelCacheNotifier)?>(nil)

    func attach(notifier: any KernelCacheNotifier) { self.notifier.withLock { $0 = notifier } }
    func fileAttr() -> Attr { Attr(ino: 2, mode: UInt32(S_IFREG) | 0o644, size: size.withLock { $0 }) }
    func immediateLookup(parent: UInt64, name: FileName) -> Result<Entry, FSError>? {
        guard parent == 1, name == "a", exists.withLock({ $0 }) else { return .failure(FSError.noent()) }
        return .success(Entry(attr: fileAttr(), attrTimeout: 60, entryTimeout: 60))
    }
    func immediateGetattr(ino: UInt64) -> (Attr, Double)? {
        ino == 1 ? (Attr(ino: 1, mode: UInt32(S_IFDIR) | 0o755, nlink: 2), 60) : (fileAttr(), 60)
    }
}

private func statSize(_ path: String) -> Int64? {
    var st = stat()
    return stat(path, &st) == 0 ? Int64(st.st_size) : nil
}

private func eventually(_ condition: () -> Bool) async -> Bool {
    for _ in 0..<100 {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

@Suite("KernelNotifier on a real mount", .enabled(if: getuid() == 0 && access("/dev/fuse", F_OK) == 0))
struct KernelNotifierMountTests {
    @Test func invalidationsReachTheKernel() async throws {
        var template = Array("/tmp/fusekit-notify.XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        defer { rmdir(dir) }
        let fs = ChangingFS()
        let session = try FuseSession(filesystem: fs, mountpoint: dir, options: ["fsname=fusekit-test"], debug: false)
        try session.mount()
        let loop = Task { await session.run(maxThreads: 4) }
        let file = dir + "/a"

        #expect(statSize(file) == 1)
        fs.size.withLock { $0 = 5 }
        #expect(statSize(file) == 1, "cached for a minute")
        let notifier = try #require(fs.notifier.withLock { $0 })
        notifier.invalidateInode(ino: 2)
        #expect(await eventually { statSize(file) == 5 })

        fs.exists.withLock { $0 = false }
        #expect(statSize(file) == 5, "the entry is cached too")
        notifier.invalidateEntry(parent: 1, name: "a")
        #expect(await eventually { statSize(file) == nil })
        // Not cached any more: the kernel's ENOENT is ignored.
        notifier.invalidateEntry(parent: 1, name: "a")
        notifier.invalidateInode(ino: 12345)

        #expect(umount2(dir, 0) == 0)
        _ = await loop.value
        await session.drain()
        session.teardown()
        notifier.invalidateInode(ino: 2)   // after teardown: dropped, not sent to a dead session
    }
}
