// One TCP connection to a tracker or storage: a NIOAsyncChannel whose inbound side is the
// streaming FDFSFrameDecoder (head / body chunks / end, never a whole body) with backpressure
// (the socket is read only as fast as the caller consumes), an outbound writer that suspends
// while the socket is not writable, and the network_timeout handler. One request at a time: the
// pool hands a connection to one task, which runs one exchange (write request, read reply).

import FastDFSProtocol
import NIOCore
import NIOPosix
import Synchronization

final class FDFSConnection: PoolableConnection {
    let address: StorageAddress
    let channel: any Channel
    let networkTimeout: Duration
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let exchange: ExchangeState
    private let flags: Flags

    /// Flags set from the event loop / cancellation handlers, read by the owning task.
    final class Flags: Sendable {
        let timedOut = Atomic<Bool>(false)
        let cancelled = Atomic<Bool>(false)
    }

    /// The inbound iterator and per-request bookkeeping.
    /// Invariant (why @unchecked Sendable is sound): only the task holding the pool lease on this
    /// connection touches these fields, and the pool leases a connection to one task at a time.
    final class ExchangeState: @unchecked Sendable {
        var iterator: NIOAsyncChannelInboundStream<FDFSFramePart>.AsyncIterator
        var replyBytes: Int64 = 0
        var requestComplete = false
        var responseComplete = true
        var failed = false
        init(iterator: NIOAsyncChannelInboundStream<FDFSFramePart>.AsyncIterator) { self.iterator = iterator }
    }

    private init(
        address: StorageAddress, channel: any Channel, networkTimeout: Duration,
        inbound: NIOAsyncChannelInboundStream<FDFSFramePart>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        flags: Flags
    ) {
        self.address = address
        self.channel = channel
        self.networkTimeout = networkTimeout
        self.outbound = outbound
        self.exchange = ExchangeState(iterator: inbound.makeAsyncIterator())
        self.flags = flags
    }

    deinit {
        // NIOAsyncWriter traps when dropped unfinished.
        outbound.finish()
        channel.close(promise: nil)
    }

    // MARK: - Connect

    static func connect(
        to address: StorageAddress, group: any EventLoopGroup, connectTimeout: Duration, networkTimeout: Duration
    ) async throws(FastDFSError) -> FDFSConnection {
        let flags = Flags()
        let timeoutAmount = TimeAmount(networkTimeout)
        do {
            let asyncChannel = try await ClientBootstrap(group: group)
                .connectTimeout(TimeAmount(connectTimeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: address.host, port: address.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(
                            InactivityTimeoutHandler(timeout: timeoutAmount) { flags.timedOut.store(true, ordering: .relaxed) })
                        try sync.addHandler(ByteToMessageHandler(FramePartDecoder()))
                        return try NIOAsyncChannel<FDFSFramePart, ByteBuffer>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8)))
                    }
                }
            let streams = asyncChannel as any AsyncChannelStreams<FDFSFramePart, ByteBuffer>
            return FDFSConnection(
                address: address, channel: asyncChannel.channel, networkTimeout: networkTimeout,
                inbound: streams.inboundStream, outbound: streams.outboundWriter, flags: flags)
        } catch {
            throw ConnectErrorMapper.map(error, address: address, connectTimeout: connectTimeout)
        }
    }

    // MARK: - PoolableConnection

    var isUsable: Bool { channel.isActive && !exchange.failed }

    /// Lets the event loop process what already arrived (a FIN from a server that closed this
    /// idle connection) before the connection is reused, then checks it is still open.
    func isStillUsable() async -> Bool {
        guard isUsable else { return false }
        try? await channel.eventLoop.submit {}.get()
        return isUsable
    }

    func close() {
        channel.close(promise: nil)
    }

    func onClose(_ callback: @escaping @Sendable () -> Void) {
        channel.closeFuture.whenComplete { _ in callback() }
    }

    /// Closes the connection because the task using it was cancelled.
    func cancel() {
        flags.cancelled.store(true, ordering: .relaxed)
        channel.close(promise: nil)
    }

    // MARK: - Exchange

    /// Starts a request: resets the bookkeeping and starts network_timeout accounting.
    func beginExchange() {
        exchange.replyBytes = 0
        exchange.requestComplete = false
        exchange.responseComplete = false
        channel.pipeline.triggerUserOutboundEvent(RequestPhaseEvent.began, promise: nil)
    }

    /// A second request on the same lease (SET_METADATA after UPLOAD): keeps the reply byte count
    /// (so a failure is never mistaken for a dead pooled connection) and expects a new reply.
    func beginFollowUpRequest() {
        exchange.requestComplete = false
        exchange.responseComplete = false
    }

    /// Ends a request (stops network_timeout accounting).
    func endExchange() {
        channel.pipeline.triggerUserOutboundEvent(RequestPhaseEvent.ended, promise: nil)
    }

    /// Reply bytes seen in this exchange (0 means the server never answered).
    var replyBytes: Int64 { exchange.replyBytes }
    /// The whole request was handed to the socket.
    var requestComplete: Bool { exchange.requestComplete }
    /// True when the connection can go back to the pool: the reply was read to its end and
    /// nothing failed.
    var reusable: Bool { exchange.responseComplete && !exchange.failed && channel.isActive }

    func markFailed() { exchange.failed = true }

    /// Writes bytes (suspends while the socket is not writable).
    func write(_ buffer: ByteBuffer, command: FDFSCommand) async throws(FastDFSError) {
        do {
            try await outbound.write(buffer)
        } catch {
            exchange.failed = true
            throw mapError(error, command: command, phase: "sending the request")
        }
    }

    /// Marks the request as completely written.
    func requestWritten() { exchange.requestComplete = true }

    /// Reads the reply header. A non-zero status becomes a `.serverStatus` error.
    func readHead(command: FDFSCommand) async throws(FastDFSError) -> FDFSHeader {
        guard let part = try await nextPart(command: command) else {
            throw closedError(command: command)
        }
        guard case .head(let header) = part else {
            exchange.failed = true
            throw .protocolViolation("expected a reply header", command: command, server: address)
        }
        exchange.replyBytes += Int64(FDFSHeader.size)
        guard header.command == FDFSCommand.response.rawValue else {
            exchange.failed = true
            throw .protocolViolation(
                "reply header carries command \(header.command), expected 100", command: command, server: address)
        }
        if header.status != 0 {
            exchange.failed = true  // the C client closes after any error; storages close after EINVAL
            throw .status(header.status, command: command, server: address)
        }
        return header
    }

    /// The next body chunk, or nil at the end of the reply.
    func readBodyChunk(command: FDFSCommand) async throws(FastDFSError) -> ByteBuffer? {
        guard let part = try await nextPart(command: command) else {
            throw closedError(command: command)
        }
        switch part {
        case .body(let chunk):
            exchange.replyBytes += Int64(chunk.readableBytes)
            return chunk
        case .end:
            exchange.responseComplete = true
            return nil
        case .head:
            exchange.failed = true
            throw .protocolViolation("unexpected second reply header", command: command, server: address)
        }
    }

    /// Reads the whole body (for small replies); fails if it exceeds `limit`.
    func readBody(header: FDFSHeader, command: FDFSCommand, limit: Int = 16 << 20) async throws(FastDFSError)
        -> ByteBuffer
    {
        guard header.bodyLength <= Int64(limit) else {
            exchange.failed = true
            throw .protocolViolation(
                "reply body of \(header.bodyLength) bytes is larger than the \(limit) bytes allowed", command: command,
                server: address)
        }
        var body = channel.allocator.buffer(capacity: Int(header.bodyLength))
        while var chunk = try await readBodyChunk(command: command) {
            body.writeBuffer(&chunk)
        }
        return body
    }

    // MARK: - Internals

    private func nextPart(command: FDFSCommand) async throws(FastDFSError) -> FDFSFramePart? {
        do {
            let part = try await exchange.iterator.next()
            if part == nil { exchange.failed = true }
            return part
        } catch {
            exchange.failed = true
            throw mapError(error, command: command, phase: "reading the reply")
        }
    }

    private func closedError(command: FDFSCommand) -> FastDFSError {
        exchange.failed = true
        if flags.cancelled.load(ordering: .relaxed) { return .cancelled(command: command, server: address) }
        if flags.timedOut.load(ordering: .relaxed) { return timeoutError(command: command) }
        let when =
            exchange.replyBytes == 0
            ? "the server closed the connection without replying"
            : "the server closed the connection after \(exchange.replyBytes) bytes of the reply"
        return FastDFSError(
            code: .connectionClosed, command: command, server: address, message: when, errno: LinuxErrno.EIO)
    }

    private func timeoutError(command: FDFSCommand) -> FastDFSError {
        FastDFSError(
            code: .timeout, command: command, server: address,
            message: "no network progress for \(networkTimeout.secondsDescription) (network_timeout)",
            errno: LinuxErrno.ETIMEDOUT)
    }

    func mapError(_ error: any Error, command: FDFSCommand, phase: String) -> FastDFSError {
        exchange.failed = true
        if flags.cancelled.load(ordering: .relaxed) || error is CancellationError {
            return .cancelled(command: command, server: address)
        }
        if flags.timedOut.load(ordering: .relaxed) || error is NetworkTimeoutError { return timeoutError(command: command) }
        if let e = error as? FastDFSError { return e.with(command: command, server: address) }
        if let e = error as? FDFSProtocolError {
            if case .malformed(command: "frame", let reason) = e {
                return FastDFSError(
                    code: .connectionClosed, command: command, server: address,
                    message: "the reply was cut short: \(reason)", underlying: e, errno: LinuxErrno.EIO)
            }
            return .protocolViolation(e.description, command: command, server: address, underlying: e)
        }
        if let e = error as? IOError {
            let code = e.errnoCode
            return FastDFSError(
                code: .connectionClosed, command: command, server: address,
                message: "connection error while \(phase): \(e)", underlying: e,
                errno: code == LinuxErrno.ECONNRESET || code == LinuxErrno.EPIPE ? LinuxErrno.EIO : LinuxErrno.EIO)
        }
        if let e = error as? ChannelError {
            return FastDFSError(
                code: .connectionClosed, command: command, server: address,
                message: "connection closed while \(phase) (\(e))", underlying: e, errno: LinuxErrno.EIO)
        }
        return FastDFSError(
            code: .ioError, command: command, server: address, message: "\(phase): \(error)", underlying: error)
    }
}

// MARK: - Helpers

/// NIOAsyncChannel's long-lived stream accessors are deprecated in favour of the scoped
/// `executeThenClose`; a pooled connection outlives any one scope, so we keep the streams.
protocol AsyncChannelStreams<Inbound, Outbound> {
    associatedtype Inbound: Sendable
    associatedtype Outbound: Sendable
    var inboundStream: NIOAsyncChannelInboundStream<Inbound> { get }
    var outboundWriter: NIOAsyncChannelOutboundWriter<Outbound> { get }
}

extension NIOAsyncChannel: AsyncChannelStreams {
    @available(*, deprecated, message: "internal accessor of the deprecated streams")
    var inboundStream: NIOAsyncChannelInboundStream<Inbound> { inbound }
    @available(*, deprecated, message: "internal accessor of the deprecated streams")
    var outboundWriter: NIOAsyncChannelOutboundWriter<Outbound> { outbound }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

extension Duration {
    /// "30 s", "1.5 s".
    var secondsDescription: String {
        let (s, atto) = components
        if atto == 0 { return "\(s) s" }
        let ms = s * 1000 + atto / 1_000_000_000_000_000
        return "\(Double(ms) / 1000) s"
    }
}
