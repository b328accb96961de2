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
    private let inbound: Inbound
    /// The exchange state. Events come from the task holding the lease, its cancellation
    /// handler and the event loop (network_timeout, close); the lock is held only while the
    /// machine decides, never across I/O.
    private let state: State

    /// The state machine behind its lock (a class: the timeout handler gets it before the
    /// connection exists).
    final class State: Sendable {
        let machine = Mutex(FDFSConnectionStateMachine())
        /// Counts started exchanges: the timeout handler sees a new one at its first write.
        let exchanges = Atomic<UInt64>(0)
        /// For the timeout handler: the current exchange and whether it is still going on.
        var exchange: (id: UInt64, active: Bool) {
            (exchanges.load(ordering: .acquiring), machine.withLock { $0.isMidExchange })
        }
    }

    /// The inbound iterator.
    /// Invariant (why @unchecked Sendable is sound): only the task holding the pool lease on this
    /// connection touches it, and the pool leases a connection to one task at a time.
    final class Inbound: @unchecked Sendable {
        var iterator: NIOAsyncChannelInboundStream<FDFSFramePart>.AsyncIterator
        init(iterator: NIOAsyncChannelInboundStream<FDFSFramePart>.AsyncIterator) { self.iterator = iterator }
    }

    private init(
        address: StorageAddress, channel: any Channel, networkTimeout: Duration,
        inbound: NIOAsyncChannelInboundStream<FDFSFramePart>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        state: State
    ) {
        self.address = address
        self.channel = channel
        self.networkTimeout = networkTimeout
        self.outbound = outbound
        self.inbound = Inbound(iterator: inbound.makeAsyncIterator())
        self.state = state
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
        let state = State()
        let timeoutAmount = TimeAmount(networkTimeout)
        do {
            let asyncChannel = try await ClientBootstrap(group: group)
                .connectTimeout(TimeAmount(connectTimeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: address.host, port: address.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(
                            InactivityTimeoutHandler(timeout: timeoutAmount, exchange: { state.exchange }) {
                                _ = state.machine.withLock { $0.timedOut() }
                            })
                        try sync.addHandler(ByteToMessageHandler(FramePartDecoder()))
                        return try NIOAsyncChannel<FDFSFramePart, ByteBuffer>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8)))
                    }
                }
            let streams = asyncChannel as any AsyncChannelStreams<FDFSFramePart, ByteBuffer>
            let connection = FDFSConnection(
                address: address, channel: asyncChannel.channel, networkTimeout: networkTimeout,
                inbound: streams.inboundStream, outbound: streams.outboundWriter, state: state)
            asyncChannel.channel.closeFuture.whenComplete { _ in
                _ = state.machine.withLock { $0.channelClosed() }
            }
            return connection
        } catch {
            throw ConnectErrorMapper.map(error, address: address, connectTimeout: connectTimeout)
        }
    }

    // MARK: - PoolableConnection

    var isUsable: Bool { channel.isActive && state.machine.withLock { $0.isUsable } }

    /// Lets the event loop process what already arrived (a FIN from a server that closed this
    /// idle connection) before the connection is reused, then checks it is still open. A
    /// connection whose last exchange ended less than a second ago skips the trip to the event
    /// loop (two thread hops; issue 12): servers close idle connections after their idle timeout,
    /// and a FIN that arrived meanwhile has been handled by the idle event loop already.
    func isStillUsable() async -> Bool {
        guard isUsable else { return false }
        if NIODeadline.now().uptimeNanoseconds &- lastExchangeEnded.load(ordering: .relaxed) < 1_000_000_000 { return true }
        try? await channel.eventLoop.submit {}.get()
        return isUsable
    }

    /// When the last exchange ended (`NIODeadline` uptime nanoseconds).
    private let lastExchangeEnded = Atomic<UInt64>(0)

    func close() {
        channel.close(promise: nil)
    }

    func onClose(_ callback: @escaping @Sendable () -> Void) {
        channel.closeFuture.whenComplete { _ in callback() }
    }

    /// Closes the connection because the task using it was cancelled.
    func cancel() {
        run(state.machine.withLock { $0.cancelled() })
    }

    // MARK: - Exchange

    /// Starts a request: resets the bookkeeping and starts network_timeout accounting.
    func beginExchange() {
        run(state.machine.withLock { $0.exchangeStarted() })
    }

    /// A second request on the same lease (SET_METADATA after UPLOAD): keeps the reply byte count
    /// (so a failure is never mistaken for a dead pooled connection) and expects a new reply.
    func beginFollowUpRequest() {
        run(state.machine.withLock { $0.followUpStarted() })
    }

    /// Ends a request (stops network_timeout accounting).
    func endExchange() {
        run(state.machine.withLock { $0.exchangeEnded() })
        lastExchangeEnded.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
    }

    /// Reply bytes seen in this exchange (0 means the server never answered).
    var replyBytes: Int64 { state.machine.withLock { $0.replyBytes } }
    /// The whole request was handed to the socket.
    var requestComplete: Bool { state.machine.withLock { $0.requestComplete } }
    /// True when the connection can go back to the pool: the reply was read to its end and
    /// nothing failed.
    var reusable: Bool { state.machine.withLock { $0.isReusable } && channel.isActive }

    /// The caller gave up on this exchange (the connection will not be reused).
    func markFailed() { run(state.machine.withLock { $0.exchangeAbandoned() }) }

    /// Writes bytes (suspends while the socket is not writable).
    func write(_ buffer: ByteBuffer, command: FDFSCommand) async throws(FastDFSError) {
        try check(state.machine.withLock { $0.writeRequested() }, command: command)
        do {
            try await outbound.write(buffer)
        } catch {
            throw transportError(error, command: command, phase: "sending the request")
        }
    }

    /// Marks the request as completely written.
    func requestWritten() {
        // A failure here surfaces on the next read, which reports it.
        _ = state.machine.withLock { $0.requestWritten() }
    }

    /// Reads the reply header. A non-zero status becomes a `.serverStatus` error.
    func readHead(command: FDFSCommand) async throws(FastDFSError) -> FDFSHeader {
        switch try await nextPart(command: command) {
        case .head(let header):
            try check(
                state.machine.withLock { $0.headReceived(command: header.command, status: header.status, size: FDFSHeader.size) },
                command: command)
            return header
        case .body(let chunk):
            try check(state.machine.withLock { $0.bodyChunkReceived(size: chunk.readableBytes) }, command: command)
        case .end:
            try check(state.machine.withLock { $0.endReceived() }, command: command)
        }
        // The machine accepts a body part only after a header.
        throw failure(.illegal(event: "body before header", state: "requestSent"), command: command)
    }

    /// The next body chunk, or nil at the end of the reply.
    func readBodyChunk(command: FDFSCommand) async throws(FastDFSError) -> ByteBuffer? {
        switch try await nextPart(command: command) {
        case .body(let chunk):
            try check(state.machine.withLock { $0.bodyChunkReceived(size: chunk.readableBytes) }, command: command)
            return chunk
        case .end:
            try check(state.machine.withLock { $0.endReceived() }, command: command)
            return nil
        case .head(let header):
            try check(
                state.machine.withLock { $0.headReceived(command: header.command, status: header.status, size: FDFSHeader.size) },
                command: command)
            throw failure(.protocolViolation("unexpected second reply header"), command: command)
        }
    }

    /// Reads the whole body (for small replies); fails if it exceeds `limit`.
    func readBody(header: FDFSHeader, command: FDFSCommand, limit: Int = 16 << 20) async throws(FastDFSError)
        -> ByteBuffer
    {
        guard header.bodyLength <= Int64(limit) else {
            markFailed()
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

    /// The next part of the reply; the end of the stream and read errors end the exchange.
    private func nextPart(command: FDFSCommand) async throws(FastDFSError) -> FDFSFramePart {
        let part: FDFSFramePart?
        do {
            part = try await inbound.iterator.next()
        } catch {
            throw transportError(error, command: command, phase: "reading the reply")
        }
        guard let part else {
            let action = state.machine.withLock { $0.inboundFinished() }
            try check(action, command: command)
            throw failure(.closed(replyBytes: replyBytes), command: command)
        }
        return part
    }

    /// Runs an action that needs no error context.
    private func run(_ action: FDFSConnectionStateMachine.Action) {
        switch action {
        case .none, .fail:
            break
        case .startNetworkTimer:
            // No trip to the event loop: the handler starts timing at the exchange's first write
            // and asks the machine whether it is still going on when its timer fires.
            state.exchanges.add(1, ordering: .acquiringAndReleasing)
        case .stopNetworkTimer:
            break
        case .closeChannel:
            channel.close(promise: nil)
        }
    }

    /// Runs an action of a reading or writing call: `.fail` throws.
    private func check(_ action: FDFSConnectionStateMachine.Action, command: FDFSCommand) throws(FastDFSError) {
        if case .fail(let f) = action { throw failure(f, command: command) }
        run(action)
    }

    /// A read or write error, classified by the machine (cancellation and network_timeout win).
    private func transportError(_ error: any Error, command: FDFSCommand, phase: String) -> FastDFSError {
        let cause: FDFSConnectionStateMachine.TransportCause =
            error is CancellationError ? .cancellation : error is NetworkTimeoutError ? .timeout : .other
        guard case .fail(let f) = state.machine.withLock({ $0.transportFailed(cause) }) else {
            return mapError(error, command: command, phase: phase)
        }
        if f == .transportError { return mapError(error, command: command, phase: phase) }
        return failure(f, command: command)
    }

    /// The FastDFSError for a failure the machine reported.
    private func failure(_ failure: FDFSConnectionStateMachine.Failure, command: FDFSCommand) -> FastDFSError {
        switch failure {
        case .cancelled:
            return .cancelled(command: command, server: address)
        case .timedOut:
            return FastDFSError(
                code: .timeout, command: command, server: address,
                message: "no network progress for \(networkTimeout.secondsDescription) (network_timeout)",
                errno: LinuxErrno.ETIMEDOUT)
        case .closed(let replyBytes):
            let when =
                replyBytes == 0
                ? "the server closed the connection without replying"
                : "the server closed the connection after \(replyBytes) bytes of the reply"
            return FastDFSError(
                code: .connectionClosed, command: command, server: address, message: when, errno: LinuxErrno.EIO)
        case .status(let status):
            return .status(status, command: command, server: address)
        case .protocolViolation(let reason):
            return .protocolViolation(reason, command: command, server: address)
        case .transportError, .abandoned:
            return FastDFSError(
                code: .connectionClosed, command: command, server: address,
                message: "the connection failed earlier in this exchange", errno: LinuxErrno.EIO)
        case .illegal(let event, let state):
            return .protocolViolation(
                "connection used out of order (\(event) while \(state))", command: command, server: address)
        }
    }

    /// Maps what the socket or the decoder threw.
    private func mapError(_ error: any Error, command: FDFSCommand, phase: String) -> FastDFSError {
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
            return FastDFSError(
                code: .connectionClosed, command: command, server: address,
                message: "connection error while \(phase): \(e)", underlying: e, errno: LinuxErrno.EIO)
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
