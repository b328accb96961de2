// Turns NIO connect failures into FastDFSError (.connectFailed with the socket errno), and
// decides which of them the storage connect retry (§10.2: FastDFS 6.15.3+ retries on
// EADDRINUSE, EAGAIN, ECONNREFUSED, ETIMEDOUT) may retry.

import FastDFSProtocol
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

enum ConnectErrorMapper {
    static func map(_ error: any Error, address: StorageAddress, connectTimeout: Duration) -> FastDFSError {
        if let e = error as? FastDFSError { return e }
        if error is CancellationError {
            return FastDFSError(code: .cancelled, server: address, message: "connect cancelled")
        }
        if let e = error as? NIOConnectionError {
            if let first = e.connectionErrors.first {
                return map(first.error, address: address, connectTimeout: connectTimeout)
            }
            let dnsError = e.dnsAError ?? e.dnsAAAAError
            return FastDFSError(
                code: .connectFailed, server: address,
                message: "connect failed: cannot resolve host \"\(address.host)\"\(dnsError.map { " (\($0))" } ?? "")",
                underlying: error, errno: LinuxErrno.EHOSTUNREACH)
        }
        if let e = error as? ChannelError, case .connectTimeout = e {
            return FastDFSError(
                code: .connectFailed, server: address,
                message: "connect timed out after \(connectTimeout.secondsDescription) (connect_timeout)",
                underlying: error, errno: LinuxErrno.ETIMEDOUT)
        }
        if let e = error as? IOError {
            let code = e.errnoCode
            return FastDFSError(
                code: .connectFailed, server: address,
                message: "connect failed: \(Errno(rawValue: code).description)", underlying: error, errno: code)
        }
        return FastDFSError(code: .connectFailed, server: address, message: "connect failed: \(error)", underlying: error)
    }

    /// The errors FastDFS's client retries a storage connect on.
    static func isRetryable(_ error: FastDFSError) -> Bool {
        guard error.code == .connectFailed else { return false }
        return [LinuxErrno.ECONNREFUSED, LinuxErrno.ETIMEDOUT, LinuxErrno.EAGAIN, LinuxErrno.EADDRINUSE]
            .contains(error.errno)
    }

    /// Delay before retry `attempt` (1-based): 100 ms doubling, capped at 5 s.
    static func backoff(attempt: Int) -> Duration {
        let ms = min(5000, 100 << min(attempt - 1, 10))
        return .milliseconds(ms)
    }
}
