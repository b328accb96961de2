import CFuse3
import FuseTypes
#if canImport(Glibc)
import Glibc
#endif

/// Where a `Reply` goes. Each call is one `fuse_reply_*` and returns what libfuse returned: 0,
/// or -ENOENT when the kernel no longer waits for the request (it was interrupted). libfuse in
/// production (`LibfuseSink`); tests record the calls instead, so the rollbacks and the readdir
/// packing are exercised without a mount.
protocol ReplySink: Sendable {
    /// errno 0 is the empty success reply.
    func error(_ errno: Int32) -> Int32
    func entry(_ e: Entry) -> Int32
    func create(_ e: Entry, _ o: Opened, _ info: fuse_file_info) -> Int32
    func open(_ o: Opened, _ info: fuse_file_info) -> Int32
    func attr(_ a: Attr, timeout: Double) -> Int32
    func readlink(_ target: FileName) -> Int32
    func buffer(_ bytes: [UInt8]) -> Int32
    func write(_ count: Int) -> Int32
    func statfs(_ s: StatFS) -> Int32
    func xattrSize(_ n: Int) -> Int32
    func lock(_ l: FileLock?) -> Int32
    func directory(_ page: DirectoryPage) -> Int32
}

/// A libfuse request handle that can travel to a Task.
/// Invariant (libfuse, fuse_lowlevel.h): "the request handle is valid until one of the reply
/// functions is called", from any thread; every request is replied exactly once through a
/// `Reply`, so sharing the pointer across threads is safe.
struct LibfuseSink: ReplySink, @unchecked Sendable {
    let req: fuse_req_t

    func error(_ errno: Int32) -> Int32 { fuse_reply_err(req, errno) }

    func entry(_ e: Entry) -> Int32 {
        var p = entryParam(e)
        return fuse_reply_entry(req, &p)
    }

    func create(_ e: Entry, _ o: Opened, _ info: fuse_file_info) -> Int32 {
        var p = entryParam(e), fi = Self.fileInfo(o, info)
        return fuse_reply_create(req, &p, &fi)
    }

    func open(_ o: Opened, _ info: fuse_file_info) -> Int32 {
        var fi = Self.fileInfo(o, info)
        return fuse_reply_open(req, &fi)
    }

    static func fileInfo(_ o: Opened, _ info: fuse_file_info) -> fuse_file_info {
        var fi = info
        fi.fh = o.fh
        fi.direct_io = o.directIO ? 1 : 0
        fi.keep_cache = o.keepCache ? 1 : 0
        return fi
    }

    func attr(_ a: Attr, timeout: Double) -> Int32 {
        var st = statFrom(a)
        return fuse_reply_attr(req, &st, timeout)
    }

    func readlink(_ target: FileName) -> Int32 { withCString(target) { fuse_reply_readlink(req, $0) } }

    func buffer(_ bytes: [UInt8]) -> Int32 {
        bytes.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { c in fuse_reply_buf(req, c.baseAddress, c.count) }
        }
    }

    func write(_ count: Int) -> Int32 { fuse_reply_write(req, count) }

    func statfs(_ s: StatFS) -> Int32 {
        var v = statvfs()
        v.f_bsize = UInt(s.blockSize)
        v.f_frsize = UInt(s.blockSize)
        v.f_blocks = fsblkcnt_t(s.blocks)
        v.f_bfree = fsblkcnt_t(s.blocksFree)
        v.f_bavail = fsblkcnt_t(s.blocksAvailable)
        v.f_files = fsfilcnt_t(s.files)
        v.f_ffree = fsfilcnt_t(s.filesFree)
        v.f_favail = fsfilcnt_t(s.filesFree)
        v.f_namemax = UInt(s.nameMax)
        return fuse_reply_statfs(req, &v)
    }

    func xattrSize(_ n: Int) -> Int32 { fuse_reply_xattr(req, n) }

    func lock(_ l: FileLock?) -> Int32 {
        var fl = cFlock(l)
        return fuse_reply_lock(req, &fl)
    }

    /// The page's entries written with libfuse's own packing functions (which agree with
    /// `DirectoryPage`'s sizes; a test holds them to it).
    func directory(_ page: DirectoryPage) -> Int32 {
        var buf = [CChar](repeating: 0, count: max(page.used, 1))
        var used = 0
        buf.withUnsafeMutableBufferPointer { bp in
            for d in page.entries {
                let remaining = page.used - used
                let n: Int
                if page.plus {
                    var p = cfuse_entry_param_zero()
                    if let e = d.entry {
                        p = entryParam(e)
                    } else {
                        p.attr.st_ino = ino_t(d.ino)
                        p.attr.st_mode = mode_t(d.mode)
                    }
                    n = withCString(d.name) { fuse_add_direntry_plus(req, bp.baseAddress! + used, remaining, $0, &p, off_t(d.nextOffset)) }
                } else {
                    var st = stat()
                    st.st_ino = ino_t(d.ino)
                    st.st_mode = mode_t(d.mode)
                    n = withCString(d.name) { fuse_add_direntry(req, bp.baseAddress! + used, remaining, $0, &st, off_t(d.nextOffset)) }
                }
                used += min(n, remaining)
            }
        }
        return buf.withUnsafeBufferPointer { fuse_reply_buf(req, $0.baseAddress, used) }
    }
}
