// The one error type of the FastDFS client: what failed (command, server), why (code, status),
// and the best Linux errno for callers that must answer with one (the FUSE mount, the CLI).

import FastDFSProtocol

/// Every failure of the client library.
///
/// `description` is one line meant for humans, e.g.
/// `DOWNLOAD_FILE on 127.0.0.1:23000 failed: ENOENT (No such file or directory)`.
public struct FastDFSError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Opaque so that new kinds can be added without a source break.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: Hashable, Sendable {
            case serverStatus, connectFailed, connectionClosed, timeout, protocolViolation
            case invalidArgument, configuration, noTracker, ioError, cancelled, sourceUnavailable, readStalled
        }
        let base: Base
        /// The server answered with a non-zero status byte (see `status`).
        public static let serverStatus = Code(base: .serverStatus)
        /// A TCP connection could not be established (refused, unreachable, connect_timeout).
        public static let connectFailed = Code(base: .connectFailed)
        /// The peer closed the connection (or reset it) before the reply was complete.
        public static let connectionClosed = Code(base: .connectionClosed)
        /// No progress on the network for network_timeout (or connect_timeout while connecting).
        public static let timeout = Code(base: .timeout)
        /// The server sent bytes that are not a valid reply.
        public static let protocolViolation = Code(base: .protocolViolation)
        /// The caller passed something the protocol cannot carry (bad file id, ext too long...).
        public static let invalidArgument = Code(base: .invalidArgument)
        /// client.conf (or storage_ids.conf) could not be read or is wrong.
        public static let configuration = Code(base: .configuration)
        /// No tracker is configured.
        public static let noTracker = Code(base: .noTracker)
        /// A local file could not be read or written.
        public static let ioError = Code(base: .ioError)
        /// The task was cancelled (or the client shut down) while the operation ran.
        public static let cancelled = Code(base: .cancelled)
        /// An appender file's source storage cannot be reached (or is not ACTIVE), and no other
        /// storage is proven to hold the same bytes. Changes to appender files go to the source
        /// only: a replica's copy may lag, and an APPEND there lands at the wrong offset.
        public static let sourceUnavailable = Code(base: .sourceUnavailable)
        /// A read received nothing for `readStallTimeout` while another storage could serve it
        /// (the read moved on; seen only when every storage failed).
        public static let readStalled = Code(base: .readStalled)

        public var description: String {
            switch base {
            case .serverStatus: "serverStatus"
            case .connectFailed: "connectFailed"
            case .connectionClosed: "connectionClosed"
            case .timeout: "timeout"
            case .protocolViolation: "protocolViolation"
            case .invalidArgument: "invalidArgument"
            case .configuration: "configuration"
            case .noTracker: "noTracker"
            case .ioError: "ioError"
            case .cancelled: "cancelled"
            case .sourceUnavailable: "sourceUnavailable"
            case .readStalled: "readStalled"
            }
        }
    }

    public var code: Code
    /// The FastDFS command that failed, when the failure belongs to one.
    public var command: FDFSCommand?
    /// The tracker or storage the failure happened on.
    public var server: StorageAddress?
    /// The server's status byte for `.serverStatus`; a mapped value for some local errors.
    public var status: FDFSErrno?
    /// What went wrong, in words (without the command/server prefix).
    public var message: String
    public var underlying: (any Error)?
    /// Explicit errno; when nil `errno` is derived from status and code.
    var errnoOverride: Int32?

    public init(
        code: Code, command: FDFSCommand? = nil, server: StorageAddress? = nil, status: FDFSErrno? = nil,
        message: String, underlying: (any Error)? = nil, errno: Int32? = nil
    ) {
        self.code = code
        self.command = command
        self.server = server
        self.status = status
        self.message = message
        self.underlying = underlying
        self.errnoOverride = errno
    }

    /// The best Linux errno for this error (Linux numbering on every platform).
    public var errno: Int32 {
        if let errnoOverride { return errnoOverride }
        if let status { return Int32(status.rawValue) }
        switch code.base {
        case .serverStatus: return FDFSErrno.eio.code
        case .connectFailed: return FDFSErrno.econnrefused.code
        case .connectionClosed: return FDFSErrno.eio.code
        case .timeout: return FDFSErrno.etimedout.code
        case .protocolViolation: return FDFSErrno.eproto.code
        case .invalidArgument: return FDFSErrno.einval.code
        case .configuration: return FDFSErrno.einval.code
        case .noTracker: return FDFSErrno.einval.code
        case .ioError: return FDFSErrno.eio.code
        case .cancelled: return FDFSErrno.eintr.code
        case .sourceUnavailable: return FDFSErrno.eio.code
        case .readStalled: return FDFSErrno.etimedout.code
        }
    }

    /// One line: `DOWNLOAD_FILE on 127.0.0.1:23000 failed: ENOENT (No such file or directory)`.
    public var description: String {
        var prefix = ""
        if let command {
            prefix = command.name
            if let server { prefix += " on \(server)" }
            prefix += " failed: "
        } else if let server {
            prefix = "\(server): "
        }
        if code == .serverStatus, let status {
            return prefix + status.description + (message.isEmpty ? "" : "; \(message)")
        }
        return prefix + message
    }

    /// Sets command/server when they are not known yet (errors from lower layers get context on the way up).
    func with(command: FDFSCommand?, server: StorageAddress?) -> FastDFSError {
        var copy = self
        if copy.command == nil { copy.command = command }
        if copy.server == nil { copy.server = server }
        return copy
    }

    /// Server status error for `command` on `server`.
    static func status(_ raw: UInt8, command: FDFSCommand, server: StorageAddress, hint: String = "") -> FastDFSError {
        FastDFSError(code: .serverStatus, command: command, server: server, status: FDFSErrno(rawValue: raw), message: hint)
    }

    static func invalidArgument(_ message: String, command: FDFSCommand? = nil, underlying: (any Error)? = nil) -> FastDFSError {
        FastDFSError(code: .invalidArgument, command: command, message: message, underlying: underlying)
    }

    static func protocolViolation(
        _ message: String, command: FDFSCommand?, server: StorageAddress?, underlying: (any Error)? = nil
    ) -> FastDFSError {
        FastDFSError(code: .protocolViolation, command: command, server: server, message: message, underlying: underlying)
    }

    static func cancelled(command: FDFSCommand? = nil, server: StorageAddress? = nil) -> FastDFSError {
        FastDFSError(code: .cancelled, command: command, server: server, message: "operation cancelled")
    }

    static func io(_ message: String, underlying: (any Error)?, errno: Int32? = nil) -> FastDFSError {
        FastDFSError(code: .ioError, message: message, underlying: underlying, errno: errno)
    }

    /// Wraps whatever a lower layer threw into a FastDFSError (keeps FastDFSErrors as they are).
    static func wrap(_ error: any Error, command: FDFSCommand? = nil, server: StorageAddress? = nil) -> FastDFSError {
        if let e = error as? FastDFSError { return e.with(command: command, server: server) }
        if error is CancellationError { return .cancelled(command: command, server: server) }
        if let e = error as? FDFSProtocolError {
            switch e {
            case .invalidFileID, .invalidArgument:
                return FastDFSError(code: .invalidArgument, command: command, server: server, message: e.description, underlying: e)
            default:
                return .protocolViolation(e.description, command: command, server: server, underlying: e)
            }
        }
        return FastDFSError(code: .ioError, command: command, server: server, message: "\(error)", underlying: error)
    }
}

extension FastDFSError: Equatable {
    /// Equal when code, command, server, status, message and errno agree (the underlying error is ignored).
    public static func == (lhs: FastDFSError, rhs: FastDFSError) -> Bool {
        lhs.code == rhs.code && lhs.command == rhs.command && lhs.server == rhs.server
            && lhs.status == rhs.status && lhs.message == rhs.message && lhs.errno == rhs.errno
    }
}

/// Linux errno values as `Int32`, the type of `FastDFSError.errno` (Linux numbering on every
/// platform: the mount and the servers speak it). The names forward to the one table,
/// `FDFSErrno` (`LinuxErrno.EIO == FDFSErrno.eio.code`).
public enum LinuxErrno {
    public static let EPERM = FDFSErrno.eperm.code
    public static let ENOENT = FDFSErrno.enoent.code
    public static let EINTR = FDFSErrno.eintr.code
    public static let EIO = FDFSErrno.eio.code
    public static let EBADF = FDFSErrno.ebadf.code
    public static let EAGAIN = FDFSErrno.eagain.code
    public static let EACCES = FDFSErrno.eacces.code
    public static let EEXIST = FDFSErrno.eexist.code
    public static let ENOTDIR = FDFSErrno.enotdir.code
    public static let EISDIR = FDFSErrno.eisdir.code
    public static let EINVAL = FDFSErrno.einval.code
    public static let ENOSPC = FDFSErrno.enospc.code
    public static let EPIPE = FDFSErrno.epipe.code
    public static let EPROTO = FDFSErrno.eproto.code
    public static let EADDRINUSE = FDFSErrno.eaddrinuse.code
    public static let ENETUNREACH = FDFSErrno.enetunreach.code
    public static let ECONNRESET = FDFSErrno.econnreset.code
    public static let ETIMEDOUT = FDFSErrno.etimedout.code
    public static let ECONNREFUSED = FDFSErrno.econnrefused.code
    public static let EHOSTUNREACH = FDFSErrno.ehostunreach.code
    public static let ECANCELED = FDFSErrno.ecanceled.code
}
