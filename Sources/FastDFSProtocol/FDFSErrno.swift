// The one errno table of the package: the Linux errno values FastDFS servers put in the status
// byte, which the client also reports (`FastDFSError.errno`), the dev server sends and the mount
// hands to the kernel. Linux numbering on every platform.

/// A Linux errno as the servers send it in the status byte.
public struct FDFSErrno: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The errno `code` (nil outside the status byte's range 0...255).
    public init?(code: Int32) {
        guard let raw = UInt8(exactly: code) else { return nil }
        self.init(rawValue: raw)
    }

    /// The errno called `name` ("ENOENT", any case); nil for a name not in the table.
    public init?(name: String) {
        let wanted = name.uppercased()
        guard let entry = Self.table.first(where: { $0.value.0 == wanted }) else { return nil }
        self.init(rawValue: entry.key)
    }

    /// The value as a C `errno` (`Int32`), e.g. to compare with `FastDFSError.errno`.
    public var code: Int32 { Int32(rawValue) }

    public static let eperm = FDFSErrno(rawValue: 1)
    public static let enoent = FDFSErrno(rawValue: 2)
    public static let eintr = FDFSErrno(rawValue: 4)
    public static let eio = FDFSErrno(rawValue: 5)
    public static let ebadf = FDFSErrno(rawValue: 9)
    public static let eagain = FDFSErrno(rawValue: 11)
    public static let enomem = FDFSErrno(rawValue: 12)
    public static let eacces = FDFSErrno(rawValue: 13)
    public static let ebusy = FDFSErrno(rawValue: 16)
    public static let eexist = FDFSErrno(rawValue: 17)
    public static let enotdir = FDFSErrno(rawValue: 20)
    public static let eisdir = FDFSErrno(rawValue: 21)
    public static let einval = FDFSErrno(rawValue: 22)
    public static let efbig = FDFSErrno(rawValue: 27)
    public static let enospc = FDFSErrno(rawValue: 28)
    public static let epipe = FDFSErrno(rawValue: 32)
    public static let enametoolong = FDFSErrno(rawValue: 36)
    public static let eproto = FDFSErrno(rawValue: 71)
    public static let eopnotsupp = FDFSErrno(rawValue: 95)
    public static let eaddrinuse = FDFSErrno(rawValue: 98)
    public static let enetunreach = FDFSErrno(rawValue: 101)
    public static let econnreset = FDFSErrno(rawValue: 104)
    public static let etimedout = FDFSErrno(rawValue: 110)
    public static let econnrefused = FDFSErrno(rawValue: 111)
    public static let ehostunreach = FDFSErrno(rawValue: 113)
    public static let ealready = FDFSErrno(rawValue: 114)
    public static let ecanceled = FDFSErrno(rawValue: 125)

    private static let table: [UInt8: (String, String)] = [
        1: ("EPERM", "Operation not permitted"),
        2: ("ENOENT", "No such file or directory"),
        3: ("ESRCH", "No such process"),
        4: ("EINTR", "Interrupted system call"),
        5: ("EIO", "Input/output error"),
        6: ("ENXIO", "No such device or address"),
        7: ("E2BIG", "Argument list too long"),
        9: ("EBADF", "Bad file descriptor"),
        11: ("EAGAIN", "Resource temporarily unavailable"),
        12: ("ENOMEM", "Cannot allocate memory"),
        13: ("EACCES", "Permission denied"),
        14: ("EFAULT", "Bad address"),
        16: ("EBUSY", "Device or resource busy"),
        17: ("EEXIST", "File exists"),
        20: ("ENOTDIR", "Not a directory"),
        21: ("EISDIR", "Is a directory"),
        22: ("EINVAL", "Invalid argument"),
        24: ("EMFILE", "Too many open files"),
        27: ("EFBIG", "File too large"),
        28: ("ENOSPC", "No space left on device"),
        30: ("EROFS", "Read-only file system"),
        32: ("EPIPE", "Broken pipe"),
        34: ("ERANGE", "Numerical result out of range"),
        36: ("ENAMETOOLONG", "File name too long"),
        38: ("ENOSYS", "Function not implemented"),
        61: ("ENODATA", "No data available"),
        71: ("EPROTO", "Protocol error"),
        95: ("EOPNOTSUPP", "Operation not supported"),
        98: ("EADDRINUSE", "Address already in use"),
        101: ("ENETUNREACH", "Network is unreachable"),
        104: ("ECONNRESET", "Connection reset by peer"),
        110: ("ETIMEDOUT", "Connection timed out"),
        111: ("ECONNREFUSED", "Connection refused"),
        113: ("EHOSTUNREACH", "No route to host"),
        114: ("EALREADY", "Operation already in progress"),
        115: ("EINPROGRESS", "Operation now in progress"),
        122: ("EDQUOT", "Disk quota exceeded"),
        125: ("ECANCELED", "Operation canceled"),
    ]

    /// "ENOENT"; "errno 77" for values without a name here.
    public var name: String { Self.table[rawValue]?.0 ?? "errno \(rawValue)" }
    /// "No such file or directory"; "Unknown error 77" for values without a name here.
    public var message: String { Self.table[rawValue]?.1 ?? "Unknown error \(rawValue)" }
    /// "ENOENT (No such file or directory)"
    public var description: String { "\(name) (\(message))" }
}
