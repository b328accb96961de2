import CFuse3
import FuseTypes
#if canImport(Glibc)
import Glibc
#endif

/// The reply to one request, typed by its shape (after fuser's `ReplyEntry`, `ReplyAttr`, ...):
/// a `Reply<EntryReply>` can only send an entry or an error. It must be consumed exactly once;
/// if it is dropped, the request is answered EIO (fuser's drop rule), so no request is ever left
/// without a reply. Replies go through a `ReplySink`: libfuse in production, a recorder in tests.
/// When the kernel no longer waits for a reply (the request was interrupted: libfuse returns
/// -ENOENT), what the reply granted is taken back through `ReplyHooks` (a lookup count, an open
/// handle), so nothing leaks.
struct Reply<Shape: ReplyShape>: ~Copyable, Sendable {
    /// Sink and hooks, held through a retained reference that is released by hand: `discard
    /// self` needs trivially destroyed stored properties.
    private let target: Unmanaged<ReplyTarget>
    let op: StaticString

    init(_ sink: any ReplySink, _ op: StaticString, hooks: ReplyHooks, observer: RequestObserver = .standalone,
         started: ContinuousClock.Instant = .now) {
        target = .passRetained(ReplyTarget(sink: sink, hooks: hooks, observer: observer, started: started))
        self.op = op
    }

    /// The one error adapter: logs and replies with the errno. No Swift error reaches C.
    consuming func fail(_ error: FSError) {
        let t = target.takeRetainedValue(), op = op
        discard self
        t.observer.failed(op, error)
        let errno = error.errno == 0 ? EIO : error.errno
        _ = t.sink.error(errno)
        t.observer.answered(op, started: t.started, errno: errno)
    }

    consuming func send(_ value: Shape.Value) {
        let t = target.takeRetainedValue(), op = op
        discard self
        Shape.send(value, to: t.sink, hooks: t.hooks)
        t.observer.answered(op, started: t.started, errno: nil)
    }

    consuming func finish(_ result: Result<Shape.Value, FSError>) {
        switch result {
        case .success(let v): send(v)
        case .failure(let e): fail(e)
        }
    }

    deinit {
        let t = target.takeRetainedValue()
        t.observer.logger.error("\(op): no reply was sent; replying EIO", metadata: ["op": "\(op)"])
        _ = t.sink.error(EIO)
        t.observer.answered(op, started: t.started, errno: EIO)
    }
}

final class ReplyTarget: Sendable {
    let sink: any ReplySink
    let hooks: ReplyHooks
    let observer: RequestObserver
    let started: ContinuousClock.Instant
    init(sink: any ReplySink, hooks: ReplyHooks, observer: RequestObserver, started: ContinuousClock.Instant) {
        self.sink = sink
        self.hooks = hooks
        self.observer = observer
        self.started = started
    }
}

/// What an interrupted reply takes back (see `Reply`). From the filesystem in production.
struct ReplyHooks: Sendable {
    var forget: @Sendable (_ ino: UInt64, _ nlookup: UInt64) -> Void
    var grantLookups: @Sendable (_ inos: [UInt64]) -> Void
    var releaseFile: @Sendable (_ ino: UInt64, _ fh: UInt64) async -> Void
    var releaseDir: @Sendable (_ ino: UInt64, _ fh: UInt64) async -> Void

    static func of(_ fs: any FuseFilesystem) -> ReplyHooks {
        ReplyHooks(forget: { fs.forget(ino: $0, nlookup: $1) }, grantLookups: { fs.grantLookups($0) },
                   releaseFile: { try? await fs.release(ino: $0, fh: $1) }, releaseDir: { try? await fs.releasedir(ino: $0, fh: $1) })
    }
}

/// One shape of reply: the value it carries and how it is sent.
protocol ReplyShape: SendableMetatype {
    associatedtype Value: Sendable
    static func send(_ value: Value, to sink: any ReplySink, hooks: ReplyHooks)
}

/// unlink, rename, flush, release, fsync, setxattr, ...: success is errno 0.
enum EmptyReply: ReplyShape {
    static func send(_ value: Void, to sink: any ReplySink, hooks: ReplyHooks) { _ = sink.error(0) }
}

/// lookup, mkdir, mknod, symlink, link: an interrupted reply gives back its lookup count.
enum EntryReply: ReplyShape {
    static func send(_ e: Entry, to sink: any ReplySink, hooks: ReplyHooks) {
        if sink.entry(e) == -ENOENT, e.attr.ino != 0 { hooks.forget(e.attr.ino, 1) }
    }
}

/// create: an interrupted reply gives back its lookup count and closes its handle.
enum CreateReply: ReplyShape {
    static func send(_ v: (Entry, Opened, fuse_file_info), to sink: any ReplySink, hooks: ReplyHooks) {
        let (e, o, info) = v
        if sink.create(e, o, info) == -ENOENT {
            hooks.forget(e.attr.ino, 1)
            let ino = e.attr.ino, fh = o.fh
            Task { await hooks.releaseFile(ino, fh) }
        }
    }
}

/// open: an interrupted reply closes its handle.
enum OpenReply: ReplyShape {
    static func send(_ v: (Opened, fuse_file_info, ino: UInt64), to sink: any ReplySink, hooks: ReplyHooks) {
        if sink.open(v.0, v.1) == -ENOENT {
            let ino = v.ino, fh = v.0.fh
            Task { await hooks.releaseFile(ino, fh) }
        }
    }
}

/// opendir: an interrupted reply closes its directory handle.
enum OpenDirReply: ReplyShape {
    static func send(_ v: (Opened, fuse_file_info, ino: UInt64), to sink: any ReplySink, hooks: ReplyHooks) {
        if sink.open(v.0, v.1) == -ENOENT {
            let ino = v.ino, fh = v.0.fh
            Task { await hooks.releaseDir(ino, fh) }
        }
    }
}

/// getattr, setattr.
enum AttrReply: ReplyShape {
    static func send(_ v: (Attr, Double), to sink: any ReplySink, hooks: ReplyHooks) { _ = sink.attr(v.0, timeout: v.1) }
}

enum ReadlinkReply: ReplyShape {
    static func send(_ target: FileName, to sink: any ReplySink, hooks: ReplyHooks) { _ = sink.readlink(target) }
}

/// read.
enum DataReply: ReplyShape {
    static func send(_ bytes: [UInt8], to sink: any ReplySink, hooks: ReplyHooks) { _ = sink.buffer(bytes) }
}

enum WriteReply: ReplyShape {
    static func send(_ count: Int, to sink: any ReplySink, hooks: ReplyHooks) { _ = sink.write(count) }
}

enum StatfsReply: ReplyShape {
    static func send(_ s: StatFS, to sink: any ReplySink, hooks: ReplyHooks) { _ = sink.statfs(s) }
}

/// getxattr, listxattr: a size, the value, or ERANGE.
enum XattrReply: ReplyShape {
    static func send(_ answer: XattrAnswer, to sink: any ReplySink, hooks: ReplyHooks) {
        switch answer {
        case .size(let n): _ = sink.xattrSize(n)
        case .tooSmall: _ = sink.error(ERANGE)
        case .data(let bytes): _ = sink.buffer(bytes)
        }
    }
}

/// getlk: the conflicting lock, or nil (F_UNLCK).
enum LockReply: ReplyShape {
    static func send(_ lock: FileLock?, to sink: any ReplySink, hooks: ReplyHooks) { _ = sink.lock(lock) }
}

/// readdir, readdirplus: the entries that fit in the kernel's buffer (`DirectoryPage`). With
/// plus, each entry sent with attributes counts as a lookup: granted before the reply goes, given
/// back when the kernel did not take it.
enum DirectoryReply: ReplyShape {
    static func send(_ v: (entries: [DirEntry], size: Int, plus: Bool), to sink: any ReplySink, hooks: ReplyHooks) {
        let page = DirectoryPage(v.entries, size: v.size, plus: v.plus)
        if !page.granted.isEmpty { hooks.grantLookups(page.granted) }
        if sink.directory(page) == -ENOENT { for ino in page.granted { hooks.forget(ino, 1) } }
    }
}

/// The entries of a readdir reply that fit in `size` bytes, in order, as libfuse packs them
/// (`fuse_add_direntry`: a 24-byte header and the name, 8-byte aligned; `fuse_add_direntry_plus`:
/// a 128-byte `fuse_entry_out` more). Pure: tested against libfuse's own sizes.
struct DirectoryPage: Sendable {
    let entries: [DirEntry]
    let plus: Bool
    /// Bytes the packed entries take.
    let used: Int
    /// Inodes sent with attributes (readdirplus), each one lookup.
    let granted: [UInt64]

    static let headerSize = 24
    static let plusHeaderSize = 128 + 24

    static func packedSize(nameLength: Int, plus: Bool) -> Int {
        ((plus ? plusHeaderSize : headerSize) + nameLength + 7) & ~7
    }

    init(_ all: [DirEntry], size: Int, plus: Bool) {
        var used = 0, taken: [DirEntry] = [], granted: [UInt64] = []
        for d in all {
            let n = Self.packedSize(nameLength: d.name.count, plus: plus)
            if used + n > size { break }
            used += n
            taken.append(d)
            if plus, let e = d.entry { granted.append(e.attr.ino) }
        }
        entries = taken
        self.plus = plus
        self.used = used
        self.granted = granted
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
