import CFuse3
import FuseTypes
#if canImport(Glibc)
import Glibc
#endif

/// A libfuse request handle that can travel to a Task.
/// Invariant (libfuse, fuse_lowlevel.h): "the request handle is valid until one of the reply
/// functions is called", from any thread; every `FuseRequest` is replied exactly once through a
/// `Reply` token, so sharing the pointer across threads is safe.
struct FuseRequest: @unchecked Sendable {
    let raw: fuse_req_t
}

/// What a request is answered with. Built by the operation, sent by `Reply.send`.
enum ReplyValue: Sendable {
    case empty
    case entry(Entry)
    case create(Entry, Opened, fuse_file_info)
    case attr(Attr, Double)
    case readlink(FileName)
    case open(Opened, fuse_file_info)
    case data([UInt8])
    case write(Int)
    case statfs(StatFS)
    case xattr(XattrAnswer)
    case directory([DirEntry], size: Int, plus: Bool)
    /// getlk: the conflicting lock, or nil (replied as F_UNLCK).
    case lock(FileLock?)
}

/// The reply token: must be consumed exactly once; if it is dropped, the request is answered EIO
/// (fuser's ReplyRaw drop rule), so no request is ever left without a reply.
struct Reply: ~Copyable, Sendable {
    let req: FuseRequest
    let op: StaticString

    init(_ req: FuseRequest, _ op: StaticString) { self.req = req; self.op = op }

    /// The one error adapter: logs and replies with the errno. No Swift error reaches C.
    consuming func fail(_ error: FSError) {
        if error.quiet || !Log.enabled(.info) {
            Log.debug("\(op): \(error)")
        } else if error.errno == EIO || error.errno == ENOSYS {
            Log.error("\(op): \(error)")
        } else {
            Log.info("\(op): \(error)")
        }
        fuse_reply_err(req.raw, error.errno == 0 ? EIO : error.errno)
        discard self
    }

    /// Sends `value`; `fs` is told about discarded entry replies so lookup counts stay right.
    consuming func send(_ value: ReplyValue, fs: any FuseFilesystem) {
        let r = req.raw
        switch value {
        case .empty:
            fuse_reply_err(r, 0)
        case .entry(let e):
            var p = entryParam(e)
            if fuse_reply_entry(r, &p) == -ENOENT { fs.forget(ino: e.attr.ino, nlookup: 1) }
        case .create(let e, let o, var fi):
            var p = entryParam(e)
            fi.fh = o.fh
            fi.direct_io = o.directIO ? 1 : 0
            fi.keep_cache = o.keepCache ? 1 : 0
            if fuse_reply_create(r, &p, &fi) == -ENOENT {
                fs.forget(ino: e.attr.ino, nlookup: 1)
                let ino = e.attr.ino, fh = o.fh
                Task { try? await fs.release(ino: ino, fh: fh) }
            }
        case .attr(let a, let timeout):
            var st = statFrom(a)
            fuse_reply_attr(r, &st, timeout)
        case .readlink(let target):
            withCString(target) { fuse_reply_readlink(r, $0) }
        case .open(let o, var fi):
            fi.fh = o.fh
            fi.direct_io = o.directIO ? 1 : 0
            fi.keep_cache = o.keepCache ? 1 : 0
            if fuse_reply_open(r, &fi) == -ENOENT {
                let fh = o.fh
                Task { try? await fs.release(ino: 0, fh: fh) }
            }
        case .data(let bytes):
            bytes.withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: CChar.self) { c in _ = fuse_reply_buf(r, c.baseAddress, c.count) }
            }
        case .write(let n):
            fuse_reply_write(r, n)
        case .statfs(let s):
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
            fuse_reply_statfs(r, &v)
        case .xattr(let answer):
            switch answer {
            case .size(let n): fuse_reply_xattr(r, n)
            case .tooSmall: fuse_reply_err(r, ERANGE)
            case .data(let bytes):
                bytes.withUnsafeBufferPointer { p in
                    p.withMemoryRebound(to: CChar.self) { c in _ = fuse_reply_buf(r, c.baseAddress, c.count) }
                }
            }
        case .directory(let entries, let size, let plus):
            sendDirectory(entries, size: size, plus: plus, fs: fs)
        case .lock(let lock):
            var l = cFlock(lock)
            fuse_reply_lock(r, &l)
        }
        discard self
    }

    private func sendDirectory(_ entries: [DirEntry], size: Int, plus: Bool, fs: any FuseFilesystem) {
        let r = req.raw
        var buf = [CChar](repeating: 0, count: max(size, 1))
        var used = 0
        var granted: [UInt64] = []
        buf.withUnsafeMutableBufferPointer { bp in
            for d in entries {
                let remaining = size - used
                let n: Int
                if plus {
                    var p = cfuse_entry_param_zero()
                    if let e = d.entry {
                        p = entryParam(e)
                    } else {
                        p.attr.st_ino = ino_t(d.ino)
                        p.attr.st_mode = mode_t(d.mode)
                    }
                    n = withCString(d.name) { fuse_add_direntry_plus(r, bp.baseAddress! + used, remaining, $0, &p, off_t(d.nextOffset)) }
                } else {
                    var st = stat()
                    st.st_ino = ino_t(d.ino)
                    st.st_mode = mode_t(d.mode)
                    n = withCString(d.name) { fuse_add_direntry(r, bp.baseAddress! + used, remaining, $0, &st, off_t(d.nextOffset)) }
                }
                if n > remaining { break }
                used += n
                if plus, let e = d.entry { granted.append(e.attr.ino) }
            }
        }
        if !granted.isEmpty { fs.grantLookups(granted) }
        let rc = buf.withUnsafeBufferPointer { fuse_reply_buf(r, $0.baseAddress, used) }
        if rc == -ENOENT { for ino in granted { fs.forget(ino: ino, nlookup: 1) } }
    }

    deinit {
        Log.error("\(op): no reply was sent; replying EIO")
        fuse_reply_err(req.raw, EIO)
    }
}

func statFrom(_ a: Attr) -> stat {
    var st = stat()
    st.st_ino = ino_t(a.ino)
    st.st_mode = mode_t(a.mode)
    st.st_nlink = nlink_t(a.nlink)
    st.st_uid = uid_t(a.uid)
    st.st_gid = gid_t(a.gid)
    st.st_size = off_t(a.size)
    st.st_blksize = blksize_t(a.blksize)
    st.st_rdev = dev_t(a.rdev)
    st.st_blocks = blkcnt_t((a.size + 511) / 512)
    st.st_atim = timespec(tv_sec: Int(a.atime.sec), tv_nsec: Int(a.atime.nsec))
    st.st_mtim = timespec(tv_sec: Int(a.mtime.sec), tv_nsec: Int(a.mtime.nsec))
    st.st_ctim = timespec(tv_sec: Int(a.ctime.sec), tv_nsec: Int(a.ctime.nsec))
    return st
}

/// A name's bytes as a NUL-terminated C string (names never contain NUL).
func withCString<R>(_ name: FileName, _ body: (UnsafePointer<CChar>) -> R) -> R {
    (name.bytes + [0]).withUnsafeBufferPointer { p in p.withMemoryRebound(to: CChar.self) { body($0.baseAddress!) } }
}

func entryParam(_ e: Entry) -> fuse_entry_param {
    var p = cfuse_entry_param_zero()
    p.ino = fuse_ino_t(e.attr.ino)
    p.generation = e.generation
    p.attr = statFrom(e.attr)
    p.attr_timeout = e.attrTimeout
    p.entry_timeout = e.entryTimeout
    return p
}
