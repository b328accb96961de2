// FuseTypes: the value types and the `FuseFilesystem` protocol a filesystem implements.
//
// Design: this target has no libfuse import, so the filesystem (FDFSFileSystem) cannot see C
// and can be unit-tested without a kernel. FuseKit translates libfuse callbacks into calls of
// `FuseFilesystem` methods and the returned values (`Entry`, `Attr`, `Opened`, ...) into
// `fuse_reply_*` calls. Errors are `FSError` (an errno plus a message); FuseKit's single
// adapter logs them and replies with the errno, so no Swift error ever crosses into C.
#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// A filesystem error: the errno the kernel gets and a message for the log.
public struct FSError: Error, Sendable, CustomStringConvertible {
    public var errno: Int32
    public var message: String
    /// Expected errors (ENOENT on lookup, ...) are logged at debug level only.
    public var quiet: Bool
    public init(_ errno: Int32, _ message: String = "", quiet: Bool = false) {
        self.errno = errno
        self.message = message
        self.quiet = quiet
    }
    public var description: String {
        let text = Errno(rawValue: errno).description
        return message.isEmpty ? "errno \(errno) (\(text))" : "\(message): errno \(errno) (\(text))"
    }
    public static func noent(_ m: String = "") -> FSError { FSError(ENOENT, m, quiet: true) }
}

/// A file name, or a symlink target, exactly as the caller gave it. Linux names are bytes, not
/// text: any byte but NUL (and `/` in a name) may appear, so `bad\xff` and `bad\xfe` are two
/// names. A `String` would replace invalid UTF-8 with U+FFFD and make them one, so names stay
/// bytes from libfuse to the naming database and back.
public struct FileName: Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var bytes: [UInt8]
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ string: String) { bytes = Array(string.utf8) }
    public init(stringLiteral value: String) { self.init(value) }
    /// The name as text when it is valid UTF-8 (by-id names, group names), else nil.
    public var string: String? { String(validating: bytes, as: UTF8.self) }
    /// Length in bytes (what NAME_MAX and PATH_MAX count).
    public var count: Int { bytes.count }
    public var isEmpty: Bool { bytes.isEmpty }
    /// For messages: the text, or with bytes that are not UTF-8 shown as `\xNN`.
    public var description: String {
        if let s = string { return s }
        return bytes.map { $0 >= 0x20 && $0 < 0x7f ? String(UnicodeScalar($0)) : "\\x" + ($0 < 16 ? "0" : "") + String($0, radix: 16, uppercase: true) }.joined()
    }
}

/// Seconds and nanoseconds since the epoch.
public struct Timespec: Sendable, Hashable, Comparable {
    public var sec: Int64
    public var nsec: Int64
    public init(sec: Int64, nsec: Int64 = 0) { self.sec = sec; self.nsec = nsec }
    public static func now() -> Timespec {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timespec(sec: Int64(ts.tv_sec), nsec: Int64(ts.tv_nsec))
    }
    /// Nanoseconds since the epoch (fits Int64 until 2262).
    public var nanoseconds: Int64 { sec &* 1_000_000_000 &+ nsec }
    public init(nanoseconds ns: Int64) { sec = ns / 1_000_000_000; nsec = ns % 1_000_000_000 }
    public static func < (a: Timespec, b: Timespec) -> Bool { a.nanoseconds < b.nanoseconds }
}

/// The attributes of an inode (maps to `struct stat`).
public struct Attr: Sendable, Hashable {
    public var ino: UInt64
    /// File type bits and permission bits (`S_IFREG | 0o644`).
    public var mode: UInt32
    public var nlink: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: Int64
    public var atime: Timespec
    public var mtime: Timespec
    public var ctime: Timespec
    public var blksize: UInt32
    /// Device number of a character or block device node (`st_rdev`, as the kernel encodes it).
    public var rdev: UInt64
    public init(ino: UInt64, mode: UInt32, nlink: UInt32 = 1, uid: UInt32 = 0, gid: UInt32 = 0, size: Int64 = 0,
                atime: Timespec = Timespec(sec: 0), mtime: Timespec = Timespec(sec: 0), ctime: Timespec = Timespec(sec: 0),
                blksize: UInt32 = 1 << 20, rdev: UInt64 = 0) {
        self.ino = ino; self.mode = mode; self.nlink = nlink; self.uid = uid; self.gid = gid; self.size = size
        self.atime = atime; self.mtime = mtime; self.ctime = ctime; self.blksize = blksize; self.rdev = rdev
    }
    public var isDirectory: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFDIR) }
    public var isRegular: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFREG) }
    public var isSymlink: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFLNK) }
}

/// A directory entry reply (`fuse_entry_param`). Each `Entry` handed to the kernel counts as
/// one lookup of `attr.ino`; the filesystem increments its count before returning it.
public struct Entry: Sendable, Hashable {
    public var attr: Attr
    public var generation: UInt64
    public var attrTimeout: Double
    public var entryTimeout: Double
    public init(attr: Attr, generation: UInt64 = 0, attrTimeout: Double, entryTimeout: Double) {
        self.attr = attr; self.generation = generation; self.attrTimeout = attrTimeout; self.entryTimeout = entryTimeout
    }
}

/// An open file or directory handle (`fuse_file_info` on open/opendir/create).
public struct Opened: Sendable, Hashable {
    public var fh: UInt64
    public var directIO: Bool
    public var keepCache: Bool
    public init(fh: UInt64, directIO: Bool = false, keepCache: Bool = false) {
        self.fh = fh; self.directIO = directIO; self.keepCache = keepCache
    }
}

/// One readdir entry. `nextOffset` is the offset the kernel passes to continue after it.
/// `entry` is present for readdirplus (the bridge grants its lookup only if it is emitted).
public struct DirEntry: Sendable, Hashable {
    public var name: FileName
    public var ino: UInt64
    public var mode: UInt32
    public var nextOffset: Int64
    public var entry: Entry?
    public init(name: FileName, ino: UInt64, mode: UInt32, nextOffset: Int64, entry: Entry? = nil) {
        self.name = name; self.ino = ino; self.mode = mode; self.nextOffset = nextOffset; self.entry = entry
    }
}

/// statfs reply (`struct statvfs`).
public struct StatFS: Sendable, Hashable {
    public var blockSize: UInt64
    public var blocks: UInt64
    public var blocksFree: UInt64
    public var blocksAvailable: UInt64
    public var files: UInt64
    public var filesFree: UInt64
    public var nameMax: UInt64
    public init(blockSize: UInt64, blocks: UInt64, blocksFree: UInt64, blocksAvailable: UInt64,
                files: UInt64, filesFree: UInt64, nameMax: UInt64 = 255) {
        self.blockSize = blockSize; self.blocks = blocks; self.blocksFree = blocksFree
        self.blocksAvailable = blocksAvailable; self.files = files; self.filesFree = filesFree; self.nameMax = nameMax
    }
}

/// A time to set in setattr.
public enum TimeSet: Sendable, Hashable { case now, time(Timespec) }

/// The attribute changes requested by setattr (only non-nil fields change).
public struct SetAttr: Sendable, Hashable {
    public var mode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    public var size: Int64?
    public var atime: TimeSet?
    public var mtime: TimeSet?
    public var fh: UInt64?
    public init(mode: UInt32? = nil, uid: UInt32? = nil, gid: UInt32? = nil, size: Int64? = nil,
                atime: TimeSet? = nil, mtime: TimeSet? = nil, fh: UInt64? = nil) {
        self.mode = mode; self.uid = uid; self.gid = gid; self.size = size; self.atime = atime; self.mtime = mtime; self.fh = fh
    }
}

/// Who made the request (`fuse_req_ctx`).
public struct RequestContext: Sendable, Hashable {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32
    public var umask: UInt32
    public init(uid: UInt32 = 0, gid: UInt32 = 0, pid: Int32 = 0, umask: UInt32 = 0o022) {
        self.uid = uid; self.gid = gid; self.pid = pid; self.umask = umask
    }
}

/// setxattr flags.
public struct XattrFlags: OptionSet, Sendable, Hashable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let create = XattrFlags(rawValue: 1)   // XATTR_CREATE
    public static let replace = XattrFlags(rawValue: 2)  // XATTR_REPLACE
}

/// How a getxattr/listxattr answer is sent, following the size protocol of getxattr(2).
public enum XattrAnswer: Sendable, Hashable {
    /// The caller asked for the size (size 0).
    case size(Int)
    /// The value fits.
    case data([UInt8])
    /// The caller's buffer is too small.
    case tooSmall

    /// Applies the getxattr(2) size rules: size 0 → size query, too small → ERANGE.
    public static func resolve(value: [UInt8], requestedSize: Int) -> XattrAnswer {
        if requestedSize == 0 { return .size(value.count) }
        if value.count > requestedSize { return .tooSmall }
        return .data(value)
    }

    /// listxattr's value: NUL-terminated names.
    public static func list(_ names: [String]) -> [UInt8] {
        var out: [UInt8] = []
        for n in names { out.append(contentsOf: Array(n.utf8)); out.append(0) }
        return out
    }
}
