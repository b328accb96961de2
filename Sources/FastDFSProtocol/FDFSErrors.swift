// Error types of the codec and the Linux errno values servers put in the status byte.

/// A Linux errno as the servers send it in the status byte (Linux numbering on every platform).
public struct FDFSErrno: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let eperm = FDFSErrno(rawValue: 1)
    public static let enoent = FDFSErrno(rawValue: 2)
    public static let eio = FDFSErrno(rawValue: 5)
    public static let eagain = FDFSErrno(rawValue: 11)
    public static let enomem = FDFSErrno(rawValue: 12)
    public static let eacces = FDFSErrno(rawValue: 13)
    public static let ebusy = FDFSErrno(rawValue: 16)
    public static let eexist = FDFSErrno(rawValue: 17)
    public static let eisdir = FDFSErrno(rawValue: 21)
    public static let einval = FDFSErrno(rawValue: 22)
    public static let enospc = FDFSErrno(rawValue: 28)
    public static let enametoolong = FDFSErrno(rawValue: 36)
    public static let eopnotsupp = FDFSErrno(rawValue: 95)
    public static let econnreset = FDFSErrno(rawValue: 104)
    public static let etimedout = FDFSErrno(rawValue: 110)
    public static let econnrefused = FDFSErrno(rawValue: 111)
    public static let ealready = FDFSErrno(rawValue: 114)

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
        95: ("EOPNOTSUPP", "Operation not supported"),
        98: ("EADDRINUSE", "Address already in use"),
        104: ("ECONNRESET", "Connection reset by peer"),
        110: ("ETIMEDOUT", "Connection timed out"),
        111: ("ECONNREFUSED", "Connection refused"),
        113: ("EHOSTUNREACH", "No route to host"),
        114: ("EALREADY", "Operation already in progress"),
        115: ("EINPROGRESS", "Operation now in progress"),
    ]

    /// "ENOENT"; "errno 77" for values without a name here.
    public var name: String { Self.table[rawValue]?.0 ?? "errno \(rawValue)" }
    /// "No such file or directory"; "Unknown error 77" for values without a name here.
    public var message: String { Self.table[rawValue]?.1 ?? "Unknown error \(rawValue)" }
    /// "ENOENT (No such file or directory)"
    public var description: String { "\(name) (\(message))" }
}

/// Flags of QUERY_FILE_INFO, sent in the request header's status byte (6.15.1+).
public struct FDFSQueryFileInfoFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Don't calculate the CRC32 of appender/slave files.
    public static let noCRC32 = FDFSQueryFileInfoFlags(rawValue: 1)
    /// Don't log ENOENT on the server.
    public static let keepSilent = FDFSQueryFileInfoFlags(rawValue: 2)
}

/// Everything the codec can reject.
public enum FDFSProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    case negativeBodyLength(Int64)
    case bodyTooLarge(command: String, length: Int64, limit: Int)
    case invalidLength(command: String, length: Int, expected: String)  // expected e.g. "40 or 70"
    case malformed(command: String, reason: String)
    case unexpectedResponseCommand(UInt8)
    case invalidFileID(String, reason: String)
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .negativeBodyLength(let length):
            "FastDFS protocol error: negative body length \(length) in packet header; the peer is not speaking FastDFS or the stream is out of sync"
        case .bodyTooLarge(let command, let length, let limit):
            "FastDFS protocol error: \(command) body of \(length) bytes exceeds the limit of \(limit) bytes"
        case .invalidLength(let command, let length, let expected):
            "FastDFS protocol error: \(command) body is \(length) bytes, expected \(expected); the server version may use a layout this codec does not know"
        case .malformed(let command, let reason):
            "FastDFS protocol error: malformed \(command): \(reason)"
        case .unexpectedResponseCommand(let code):
            "FastDFS protocol error: response header carries command \(code), expected 100"
        case .invalidFileID(let id, let reason):
            "invalid FastDFS file id \"\(id)\": \(reason)"
        case .invalidArgument(let reason):
            "invalid argument: \(reason)"
        }
    }
}
