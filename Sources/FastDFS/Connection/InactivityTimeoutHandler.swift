// network_timeout as the C client means it: while a request is in progress, fail if the
// network makes no progress for that long. "Waiting" means a read was asked for and nothing
// arrived, or a write is queued and has not completed; a slow *consumer* (no read asked for,
// e.g. a download stream nobody iterates) is not a network timeout. Idle pooled connections are
// not timed. Sits next to the socket (first in the pipeline) so it sees raw bytes both ways.
// A request starts at the first write of a new exchange (a counter FDFSConnection shares with
// it) and is over when the connection's state machine says so, asked when the timer fires:
// starting and ending a request cost no task on the event loop (issue 12).

import NIOCore

/// Raised into the pipeline (and so out of the inbound stream) when network_timeout expires.
struct NetworkTimeoutError: Error, Sendable {
    var timeout: TimeAmount
}

final class InactivityTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let timeout: TimeAmount
    private let onTimeout: @Sendable () -> Void
    private var busy = false
    private var readPending = false
    private var writesPending = 0
    private var lastProgress = NIODeadline.now()
    private var timer: Scheduled<Void>?
    private var fired = false
    /// The connection's current exchange and whether it is going on (read without a trip to the
    /// event loop on the connection's side: starting and ending a request cost no loop task).
    private let exchange: @Sendable () -> (id: UInt64, active: Bool)
    private var seenExchange: UInt64 = 0

    /// `onTimeout` runs on the event loop before the channel is closed (used to flag the error).
    init(timeout: TimeAmount, exchange: @escaping @Sendable () -> (id: UInt64, active: Bool), onTimeout: @escaping @Sendable () -> Void) {
        self.timeout = timeout
        self.exchange = exchange
        self.onTimeout = onTimeout
    }

    private var waiting: Bool { busy && (readPending || writesPending > 0) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        readPending = false
        progress()
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        let wasWaiting = waiting
        readPending = true
        if !wasWaiting { lastProgress = .now() }
        armIfNeeded(context: context)
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // The first write of a new exchange starts the timing afresh.
        let current = exchange().id
        if current != seenExchange {
            seenExchange = current
            busy = true
            lastProgress = .now()
        }
        let wasWaiting = waiting
        writesPending += 1
        if !wasWaiting { lastProgress = .now() }
        let promise = promise ?? context.eventLoop.makePromise()
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { _ in
            let handler = loopBound.value
            handler.writesPending -= 1
            handler.progress()
        }
        armIfNeeded(context: context)
        context.write(data, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    private func progress() {
        lastProgress = .now()
    }

    private func armIfNeeded(context: ChannelHandlerContext) {
        guard waiting, timer == nil, !fired else { return }
        schedule(context: context, at: lastProgress + timeout)
    }

    private func schedule(context: ChannelHandlerContext, at deadline: NIODeadline) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            handler.timerFired(context: context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        guard waiting, !fired else { return }
        // The exchange ended since (its reply read to the end): an idle connection is not timed.
        guard exchange().active else {
            busy = false
            return
        }
        let due = lastProgress + timeout
        if due > .now() {
            schedule(context: context, at: due)
            return
        }
        fired = true
        onTimeout()
        context.fireErrorCaught(NetworkTimeoutError(timeout: timeout))
        context.close(promise: nil)
    }
}
