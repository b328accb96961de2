// Running one request on a pooled connection: lease, cancellation (closes the connection),
// release (reusable only when the reply was read to its end without error), the one retry on a
// pooled connection found dead, and tracker failover.

import FastDFSProtocol
import NIOCore

/// When a request may be repeated on a fresh connection after a pooled connection turned out
/// dead (write failed or EOF before any reply byte).
enum RetryPolicy: Sendable {
    /// Repeating it has the same effect (queries, download, set-metadata, modify, truncate).
    case idempotent
    /// Only when the request was not completely sent (the server cannot have acted on it).
    case ifNotFullySent
    /// Never (the content cannot be replayed).
    case never
}

extension FastDFSClient {
    typealias Lease = PooledConnection<FDFSConnection>

    /// Leases a connection, maps pool errors.
    func lease(from pool: Pool, address: StorageAddress, command: FDFSCommand) async throws(FastDFSError) -> Lease {
        if Task.isCancelled { throw .cancelled(command: command, server: address) }
        do {
            return try await pool.lease()
        } catch let error as FastDFSError {
            throw error.with(command: command, server: address)
        } catch is CancellationError {
            throw .cancelled(command: command, server: address)
        } catch is PoolShutdownError {
            throw FastDFSError(code: .cancelled, command: command, server: address, message: "the client was shut down")
        } catch {
            throw .wrap(error, command: command, server: address)
        }
    }

    /// Runs `body` on a leased connection with cancellation → close.
    func run<T>(
        _ lease: Lease, command: FDFSCommand,
        _ body: (FDFSConnection) async throws(FastDFSError) -> T
    ) async throws(FastDFSError) -> T {
        let connection = lease.connection
        do {
            return try await withTaskCancellationHandler {
                try await body(connection)
            } onCancel: {
                connection.cancel()
            }
        } catch {
            connection.markFailed()
            if Task.isCancelled { throw .cancelled(command: command, server: connection.address) }
            throw .wrap(error, command: command, server: connection.address)
        }
    }

    static func shouldRetry(_ error: FastDFSError, lease: Lease, policy: RetryPolicy) -> Bool {
        guard lease.reused, error.code == .connectionClosed, lease.connection.replyBytes == 0 else { return false }
        switch policy {
        case .idempotent: return true
        case .ifNotFullySent: return !lease.connection.requestComplete
        case .never: return false
        }
    }

    /// Leases a connection to `address`, runs `body`, releases. Retries once on a fresh
    /// connection when a pooled one was dead and `policy` allows. With `keepLease` the lease is
    /// not released on success (the caller owns it, e.g. a download stream).
    func withConnection<T>(
        to address: StorageAddress, tracker: Bool = false, command: FDFSCommand, policy: RetryPolicy,
        firstLease: Lease? = nil, keepLease: Bool = false,
        _ body: (Lease) async throws(FastDFSError) -> T
    ) async throws(FastDFSError) -> T {
        let started = ContinuousClock.now
        do {
            let result = try await exchange(to: address, tracker: tracker, command: command, policy: policy,
                                            firstLease: firstLease, keepLease: keepLease, body)
            metrics.finished(command, started: started, failed: false)
            if logger.logLevel <= .debug {
                logger.debug("request", metadata: ["command": "\(command.name)", "server": "\(address)", "duration_us": "\(Self.microseconds(since: started))"])
            }
            return result
        } catch {
            metrics.finished(command, started: started, failed: true)
            logger.debug("request failed: \(error.message)", metadata: [
                "command": "\(command.name)", "server": "\(address)", "duration_us": "\(Self.microseconds(since: started))",
                "code": "\(error.code)",
            ])
            throw error
        }
    }

    static func microseconds(since start: ContinuousClock.Instant) -> Int64 {
        let d = start.duration(to: .now)
        return d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000
    }

    private func exchange<T>(
        to address: StorageAddress, tracker: Bool, command: FDFSCommand, policy: RetryPolicy,
        firstLease: Lease?, keepLease: Bool,
        _ body: (Lease) async throws(FastDFSError) -> T
    ) async throws(FastDFSError) -> T {
        let pool = try pool(for: address, tracker: tracker)
        var attempt = 0
        var pending = firstLease
        while true {
            attempt += 1
            let lease: Lease
            if let p = pending {
                lease = p
                pending = nil
            } else {
                lease = try await self.lease(from: pool, address: address, command: command)
            }
            if lease.reused, await !lease.connection.isStillUsable() {
                // The server closed it while it sat in the pool (restart, its idle timeout):
                // nothing was sent, so take another without spending the retry.
                pool.release(lease, reusable: false)
                attempt -= 1
                continue
            }
            let connection = lease.connection
            connection.beginExchange()
            do {
                let result = try await run(lease, command: command) { (_) async throws(FastDFSError) -> T in
                    try await body(lease)
                }
                if !keepLease {
                    connection.endExchange()
                    pool.release(lease, reusable: connection.reusable)
                }
                return result
            } catch {
                connection.endExchange()
                pool.release(lease, reusable: false)
                if attempt == 1, Self.shouldRetry(error, lease: lease, policy: policy) { continue }
                throw error
            }
        }
    }

    /// Gives back a lease kept with `keepLease`.
    func release(_ lease: Lease, reusable: Bool) {
        lease.connection.endExchange()
        guard let pool = try? pool(for: lease.connection.address, tracker: false) else {
            lease.connection.close()
            return
        }
        pool.release(lease, reusable: reusable && lease.connection.reusable)
    }

    /// Runs `body` on a tracker connection: starts at the rotating index, fails over to the
    /// next tracker only when connecting fails; a tracker's error reply is final.
    func withTracker<T>(
        command: FDFSCommand, _ body: (FDFSConnection) async throws(FastDFSError) -> T
    ) async throws(FastDFSError) -> T {
        let (trackers, order) = selector.withLock { ($0.trackers, $0.candidates()) }
        guard !trackers.isEmpty else {
            throw FastDFSError(
                code: .noTracker, command: command, message: "no tracker_server configured", errno: LinuxErrno.EINVAL)
        }
        var failures: [FastDFSError] = []
        for index in order {
            let address = trackers[index]
            let pool = try pool(for: address, tracker: true)
            let lease: Lease
            do {
                lease = try await self.lease(from: pool, address: address, command: command)
            } catch where error.code == .connectFailed {
                failures.append(error)
                continue
            }
            selector.withLock { $0.callFinished(connectedIndex: index) }
            do {
                return try await withConnection(
                    to: address, tracker: true, command: command, policy: .idempotent, firstLease: lease
                ) { (lease) async throws(FastDFSError) -> T in
                    try await body(lease.connection)
                }
            } catch where error.code == .connectFailed {
                // The pooled connection was dead and reconnecting failed: the tracker went away
                // between calls. Nothing reached it, so the next tracker may be asked.
                failures.append(error)
                continue
            }
        }
        selector.withLock { $0.callFinished(connectedIndex: nil) }
        if failures.count == 1 { throw failures[0].with(command: command, server: nil) }
        let detail = failures.map { "\($0.server.map { "\($0)" } ?? "?"): \($0.message)" }.joined(separator: "; ")
        var error = FastDFSError(
            code: .connectFailed, command: command,
            message: "no tracker reachable (\(detail))", underlying: failures.last, errno: failures.last?.errno)
        error.server = nil
        throw error
    }

    // MARK: - Small request/response helpers

    /// Writes a whole request packet (then the streamed `content` that follows a request head,
    /// if any), reads the reply, returns its body (small replies only).
    func request<R: FDFSRequest>(
        _ request: R, on connection: FDFSConnection, limit: Int = 16 << 20, inline: ByteBuffer? = nil,
        content: ContentWriter = { _, _ async throws(FastDFSError) in }
    ) async throws(FastDFSError) -> ByteBuffer {
        var packet = FDFSPacket.encode(request, allocator: connection.channel.allocator)
        if let inline {
            // A small body goes out with its header in one write (one trip to the event loop,
            // one send).
            packet.writeImmutableBuffer(inline)
            try await connection.write(packet, command: request.command)
        } else {
            try await connection.write(packet, command: request.command)
            try await content(connection, request.command)
        }
        connection.requestWritten()
        let header = try await connection.readHead(command: request.command)
        return try await connection.readBody(header: header, command: request.command, limit: limit)
    }

    /// Decodes a reply body, mapping codec errors to protocol violations of `command` on `server`.
    func decode<T>(
        _ body: ByteBuffer, command: FDFSCommand, server: StorageAddress,
        _ decoder: (inout ByteBuffer) throws(FDFSProtocolError) -> T
    ) throws(FastDFSError) -> T {
        var body = body
        do {
            return try decoder(&body)
        } catch {
            throw .protocolViolation(error.description, command: command, server: server, underlying: error)
        }
    }

    func learnIPWidth(_ width: Int) {
        learnedIPWidth.store(width, ordering: .relaxed)
    }
}
