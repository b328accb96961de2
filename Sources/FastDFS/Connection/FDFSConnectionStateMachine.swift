// Pure state of one FastDFS connection, exchange by exchange: idle → request sent → head
// received → streaming body → idle (or closed), plus failed and cancelled. No I/O, no clock, no
// locks: FDFSConnection feeds it what happened (past-tense events) and does what it returns
// (actions), the way postgres-nio's ConnectionStateMachine drives its channel handler.
//
// What it decides:
// - whether the connection can go back to the pool (only idle: the last reply was read to its
//   end and nothing failed);
// - which error an exchange ends with when several things happen at once: a cancelled task wins
//   over network_timeout, which wins over whatever the socket reported;
// - the bookkeeping the retry rules read (reply bytes seen, request completely sent);
// - that an event arriving in a state where it cannot happen (a driver bug) fails the exchange
//   instead of corrupting the next one.

struct FDFSConnectionStateMachine: Hashable, Sendable {
    /// Bookkeeping of one exchange: from `exchangeStarted` to `exchangeEnded`; a follow-up
    /// request on the same lease continues it.
    struct Exchange: Hashable, Sendable {
        /// Reply bytes seen (0: the server never answered).
        var replyBytes: Int64 = 0
        /// The whole request was handed to the socket.
        var requestComplete = false
    }

    /// Why an exchange failed. FDFSConnection turns it into a FastDFSError.
    enum Failure: Hashable, Sendable {
        /// The task using the connection was cancelled (the channel was closed for it).
        case cancelled
        /// network_timeout: no progress while waiting for the network.
        case timedOut
        /// The reply stream ended before the reply did (the peer closed the connection).
        case closed(replyBytes: Int64)
        /// A read or write failed; FDFSConnection maps the error the socket reported.
        case transportError
        /// The peer sent something that is not a valid reply.
        case protocolViolation(String)
        /// The reply header carried a non-zero status.
        case status(UInt8)
        /// The caller gave up on the exchange (a local error, an abandoned download, a reply
        /// it refused) before the reply was read to its end.
        case abandoned
        /// `event` cannot happen in `state`: a bug in the driver. The connection is not reused.
        case illegal(event: String, state: String)
    }

    /// How a read or write failed, as the driver classified the error.
    enum TransportCause: Hashable, Sendable {
        case cancellation
        case timeout
        case other
    }

    enum State: Hashable, Sendable {
        /// No request in progress; the last reply, if any, was read to its end.
        /// Can transition to: sendingRequest, closed, failed, cancelled.
        case idle(Exchange)
        /// Request bytes are going out. Can transition to: requestSent, failed, cancelled.
        case sendingRequest(Exchange)
        /// The whole request was written; waiting for the reply header.
        /// Can transition to: headReceived, failed, cancelled.
        case requestSent(Exchange)
        /// A good reply header arrived. Can transition to: streamingBody, idle, failed, cancelled.
        case headReceived(Exchange)
        /// Body chunks are arriving. Can transition to: idle, failed, cancelled.
        case streamingBody(Exchange)
        /// The channel closed while idle. Can transition to: failed (a request started on it),
        /// cancelled.
        case closed(Exchange)
        /// The exchange failed; the connection is never reused. Can transition to: cancelled.
        case failed(Exchange, Failure)
        /// The task using the connection was cancelled. Final.
        case cancelled(Exchange)
    }

    enum Action: Hashable, Sendable {
        /// Nothing to do; carry on.
        case none
        /// Start network_timeout accounting (a request began).
        case startNetworkTimer
        /// Stop network_timeout accounting (the lease ends).
        case stopNetworkTimer
        /// Close the channel (the task was cancelled).
        case closeChannel
        /// End the current call with this failure.
        case fail(Failure)
    }

    private(set) var state: State = .idle(Exchange())

    /// Reply bytes seen in the current (or last) exchange.
    var replyBytes: Int64 { exchange.replyBytes }
    /// The whole request of the current (or last) exchange was handed to the socket.
    var requestComplete: Bool { exchange.requestComplete }

    /// True when the connection may go back to the pool: idle, nothing failed.
    var isReusable: Bool {
        switch state {
        case .idle: true
        case .sendingRequest, .requestSent, .headReceived, .streamingBody, .closed, .failed, .cancelled: false
        }
    }

    /// A request is on its way or its reply is being read (what network_timeout times).
    var isMidExchange: Bool {
        switch state {
        case .sendingRequest, .requestSent, .headReceived, .streamingBody: true
        case .idle, .closed, .failed, .cancelled: false
        }
    }

    /// False once the exchange failed, was cancelled or the channel closed while idle.
    var isUsable: Bool {
        switch state {
        case .idle, .sendingRequest, .requestSent, .headReceived, .streamingBody: true
        case .closed, .failed, .cancelled: false
        }
    }

    // MARK: - Events

    /// A lease starts a request (the first of the lease).
    mutating func exchangeStarted() -> Action {
        switch state {
        case .idle:
            state = .sendingRequest(Exchange())
            return .startNetworkTimer
        case .closed:
            // Closed while it sat in the pool and nobody noticed yet: nothing was sent, so the
            // failure reads as a connection closed before any reply byte (retry rules apply).
            state = .failed(Exchange(), .closed(replyBytes: 0))
            return .startNetworkTimer
        case .sendingRequest, .requestSent, .headReceived, .streamingBody, .failed, .cancelled:
            return illegal("exchangeStarted")
        }
    }

    /// A second request on the same lease (SET_METADATA after UPLOAD): keeps the reply byte
    /// count, so a failure is never mistaken for a dead pooled connection.
    mutating func followUpStarted() -> Action {
        switch state {
        case .idle(var exchange):
            exchange.requestComplete = false
            state = .sendingRequest(exchange)
            return .none
        case .closed(let exchange):
            state = .failed(exchange, .closed(replyBytes: exchange.replyBytes))
            return .none
        case .sendingRequest, .requestSent, .headReceived, .streamingBody, .failed, .cancelled:
            return illegal("followUpStarted")
        }
    }

    /// The caller is about to write request bytes.
    mutating func writeRequested() -> Action {
        switch state {
        case .sendingRequest:
            return .none
        case .failed(_, let failure):
            return .fail(failure)
        case .cancelled:
            return .fail(.cancelled)
        case .idle, .requestSent, .headReceived, .streamingBody, .closed:
            return illegal("writeRequested")
        }
    }

    /// The whole request was handed to the socket.
    mutating func requestWritten() -> Action {
        switch state {
        case .sendingRequest(var exchange):
            exchange.requestComplete = true
            state = .requestSent(exchange)
            return .none
        case .failed(_, let failure):
            return .fail(failure)
        case .cancelled:
            return .fail(.cancelled)
        case .idle, .requestSent, .headReceived, .streamingBody, .closed:
            return illegal("requestWritten")
        }
    }

    /// A reply header arrived (`size` bytes). A command other than RESPONSE (100) is a protocol
    /// violation; a non-zero status fails the exchange (the C client closes after any error,
    /// storages close after EINVAL).
    mutating func headReceived(command: UInt8, status: UInt8, size: Int) -> Action {
        switch state {
        case .requestSent(var exchange):
            exchange.replyBytes += Int64(size)
            if command != 100 {
                return fail(exchange, .protocolViolation("reply header carries command \(command), expected 100"))
            }
            if status != 0 { return fail(exchange, .status(status)) }
            state = .headReceived(exchange)
            return .none
        case .headReceived(let exchange), .streamingBody(let exchange):
            return fail(exchange, .protocolViolation("unexpected second reply header"))
        case .failed(_, let failure):
            return .fail(failure)
        case .cancelled:
            return .fail(.cancelled)
        case .idle, .sendingRequest, .closed:
            return illegal("headReceived")
        }
    }

    /// A body chunk of `size` bytes arrived.
    mutating func bodyChunkReceived(size: Int) -> Action {
        switch state {
        case .headReceived(var exchange), .streamingBody(var exchange):
            exchange.replyBytes += Int64(size)
            state = .streamingBody(exchange)
            return .none
        case .requestSent(let exchange):
            return fail(exchange, .protocolViolation("expected a reply header"))
        case .failed(_, let failure):
            return .fail(failure)
        case .cancelled:
            return .fail(.cancelled)
        case .idle, .sendingRequest, .closed:
            return illegal("bodyChunkReceived")
        }
    }

    /// The reply's last byte arrived: the connection is idle again.
    mutating func endReceived() -> Action {
        switch state {
        case .headReceived(let exchange), .streamingBody(let exchange):
            state = .idle(exchange)
            return .none
        case .requestSent(let exchange):
            return fail(exchange, .protocolViolation("expected a reply header"))
        case .failed(_, let failure):
            return .fail(failure)
        case .cancelled:
            return .fail(.cancelled)
        case .idle, .sendingRequest, .closed:
            return illegal("endReceived")
        }
    }

    /// The reply stream ended (the channel closed and everything it delivered was read).
    mutating func inboundFinished() -> Action {
        switch state {
        case .sendingRequest(let exchange), .requestSent(let exchange), .headReceived(let exchange),
            .streamingBody(let exchange):
            return fail(exchange, .closed(replyBytes: exchange.replyBytes))
        case .failed(_, let failure):
            return .fail(failure)
        case .cancelled:
            return .fail(.cancelled)
        case .idle, .closed:
            return illegal("inboundFinished")
        }
    }

    /// A read or a write failed.
    mutating func transportFailed(_ cause: TransportCause) -> Action {
        switch state {
        case .sendingRequest(let exchange), .requestSent(let exchange), .headReceived(let exchange),
            .streamingBody(let exchange), .idle(let exchange), .closed(let exchange):
            switch cause {
            case .cancellation: return fail(exchange, .cancelled)
            case .timeout: return fail(exchange, .timedOut)
            case .other: return fail(exchange, .transportError)
            }
        case .failed(let exchange, let failure):
            // A timeout recorded first explains the failure better than what the socket said.
            if case .cancellation = cause { return fail(exchange, .cancelled) }
            return .fail(failure == .abandoned ? .transportError : failure)
        case .cancelled:
            return .fail(.cancelled)
        }
    }

    /// network_timeout expired (the handler closes the channel next).
    mutating func timedOut() -> Action {
        switch state {
        case .sendingRequest(let exchange), .requestSent(let exchange), .headReceived(let exchange),
            .streamingBody(let exchange), .idle(let exchange), .closed(let exchange):
            state = .failed(exchange, .timedOut)
            return .none
        case .failed, .cancelled:
            return .none
        }
    }

    /// The task using the connection was cancelled: close the channel so its reads and writes
    /// end at once.
    mutating func cancelled() -> Action {
        switch state {
        case .idle(let exchange), .sendingRequest(let exchange), .requestSent(let exchange),
            .headReceived(let exchange), .streamingBody(let exchange), .failed(let exchange, _):
            state = .cancelled(exchange)
            return .closeChannel
        case .closed(let exchange):
            state = .cancelled(exchange)
            return .none
        case .cancelled:
            return .none
        }
    }

    /// The caller gave up on the exchange (a local error, a reply it refused): never reused.
    mutating func exchangeAbandoned() -> Action {
        switch state {
        case .idle(let exchange), .sendingRequest(let exchange), .requestSent(let exchange),
            .headReceived(let exchange), .streamingBody(let exchange), .closed(let exchange):
            state = .failed(exchange, .abandoned)
            return .none
        case .failed, .cancelled:
            return .none
        }
    }

    /// The lease ends. A reply not read to its end makes the connection unusable.
    mutating func exchangeEnded() -> Action {
        switch state {
        case .sendingRequest(let exchange), .requestSent(let exchange), .headReceived(let exchange),
            .streamingBody(let exchange):
            state = .failed(exchange, .abandoned)
            return .stopNetworkTimer
        case .idle, .closed, .failed, .cancelled:
            return .stopNetworkTimer
        }
    }

    /// The channel closed. While idle the connection is simply closed; during an exchange the
    /// reads still deliver what arrived before the close, then `inboundFinished` ends it.
    mutating func channelClosed() -> Action {
        switch state {
        case .idle(let exchange):
            state = .closed(exchange)
            return .none
        case .sendingRequest, .requestSent, .headReceived, .streamingBody, .closed, .failed, .cancelled:
            return .none
        }
    }

    // MARK: - Internals

    private var exchange: Exchange {
        switch state {
        case .idle(let e), .sendingRequest(let e), .requestSent(let e), .headReceived(let e), .streamingBody(let e),
            .closed(let e), .failed(let e, _), .cancelled(let e):
            e
        }
    }

    private mutating func fail(_ exchange: Exchange, _ failure: Failure) -> Action {
        state = .failed(exchange, failure)
        return .fail(failure)
    }

    private mutating func illegal(_ event: String) -> Action {
        let failure = Failure.illegal(event: event, state: Self.name(of: state))
        state = .failed(exchange, failure)
        return .fail(failure)
    }

    static func name(of state: State) -> String {
        switch state {
        case .idle: "idle"
        case .sendingRequest: "sendingRequest"
        case .requestSent: "requestSent"
        case .headReceived: "headReceived"
        case .streamingBody: "streamingBody"
        case .closed: "closed"
        case .failed: "failed"
        case .cancelled: "cancelled"
        }
    }
}
