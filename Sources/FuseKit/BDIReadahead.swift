import FuseTypes
import Logging
#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// The kernel read-ahead of a FUSE mount: `/sys/class/bdi/MAJ:MIN/read_ahead_kb`, where MAJ:MIN
/// is the mount's `st_dev`.
///
/// The kernel offers `max_readahead` = the bdi's default (128 KiB) in FUSE_INIT and a filesystem
/// can only lower it there, so the only way to get 1 MiB READ requests for sequential reads
/// (max_pages is 256 with max_write 1 MiB) is to raise the bdi value after the mount, as root.
/// FUSE_INIT also clamps the bdi value to what the reply said, so the write must come after
/// the INIT reply: a `stat` of the mount point waits for it, hence a thread of its own.
public enum BDIReadahead {
    /// Linux `major()`/`minor()` of a `dev_t` (glibc's encoding; the macros do not import).
    public static func majorMinor(_ dev: UInt64) -> (UInt64, UInt64) {
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
        let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
        return (major, minor)
    }

    public static func sysfsPath(device: UInt64) -> String {
        let (ma, mi) = majorMinor(device)
        return "/sys/class/bdi/\(ma):\(mi)/read_ahead_kb"
    }

    /// Sets the read-ahead of the mount at `mountpoint` to `kb` KiB once its FUSE_INIT has been
    /// answered, on a detached thread. Does nothing (debug log only) when the file is not
    /// writable (not root, sysfs read-only in a container). `then` runs afterwards, on that
    /// thread: the mount has answered a request by then (the daemon reports itself ready there,
    /// so an unmount right after the mount command cannot find this thread's `stat` in flight).
    public static func apply(kb: Int, mountpoint: String, logger: Logger, then: @escaping @Sendable () -> Void = {}) {
        let box = Unmanaged.passRetained(Request(kb: kb, mountpoint: mountpoint, logger: logger, then: then)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { raw in
            let req = Unmanaged<Request>.fromOpaque(raw!).takeRetainedValue()
            BDIReadahead.set(req)
            req.then()
            return nil
        }, box)
        if rc == 0 { pthread_detach(tid) } else { Unmanaged<Request>.fromOpaque(box).release() }
    }

    private final class Request: Sendable {
        let kb: Int
        let mountpoint: String
        let logger: Logger
        let then: @Sendable () -> Void
        init(kb: Int, mountpoint: String, logger: Logger, then: @escaping @Sendable () -> Void) {
            self.kb = kb; self.mountpoint = mountpoint; self.logger = logger; self.then = then
        }
    }

    private static func set(_ req: Request) {
        var st = stat()
        // Blocks until the kernel has the INIT reply (every request waits for it).
        guard stat(req.mountpoint, &st) == 0 else { return }
        let path = sysfsPath(device: UInt64(st.st_dev))
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else {
            req.logger.debug("read-ahead: cannot open the bdi setting; leaving the kernel's value", metadata: ["path": "\(path)", "error": "\(Errno(rawValue: errno).description)"])
            return
        }
        defer { close(fd) }
        let text = Array("\(req.kb)\n".utf8)
        let n = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n == text.count { req.logger.info("read-ahead set", metadata: ["path": "\(path)", "kib": "\(req.kb)"]) }
        else { req.logger.debug("read-ahead: cannot write the bdi setting", metadata: ["path": "\(path)", "error": "\(Errno(rawValue: errno).description)"]) }
    }
}
