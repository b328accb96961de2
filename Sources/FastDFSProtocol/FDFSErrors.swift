// Error types of the codec (the errno values of the status byte are in FDFSErrno.swift).

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
