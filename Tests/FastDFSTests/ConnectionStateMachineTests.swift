// The connection state machine without sockets: every event in every state, legal and illegal.

import Testing
@testable import FastDFS

@Suite("Connection state machine")
struct ConnectionStateMachineTests {
    typealias SM = FDFSConnectionStateMachine
    typealias Exchange = SM.Exchange

    // Machines in each state, reached through legal events only.
    static func idle() -> SM { SM() }
    static func sending() -> SM {
        var sm = idle()
        _ = sm.exchangeStarted()
        return sm
    }
    static func requestSent() -> SM {
        var sm = sending()
        _ = sm.requestWritten()
        return sm
    }
    static func headReceived() -> SM {
        var sm = requestSent()
        _ = sm.headReceived(command: 100, status: 0, size: 10)
        return sm
    }
    static func streaming() -> SM {
        var sm = headReceived()
        _ = sm.bodyChunkReceived(size: 5)
        return sm
    }
    static func closed() -> SM {
        var sm = idle()
        _ = sm.channelClosed()
        return sm
    }
    static func failed() -> SM {
        var sm = requestSent()
        _ = sm.headReceived(command: 100, status: 2, size: 10)
        return sm
    }
    static func cancelled() -> SM {
        var sm = streaming()
        _ = sm.cancelled()
        return sm
    }

    // MARK: - The normal path

    @Test func aWholeExchangeAndTheNextOne() {
        var sm = SM()
        #expect(sm.state == .idle(Exchange()) && sm.isReusable && sm.isUsable)
        #expect(sm.exchangeStarted() == .startNetworkTimer)
        #expect(sm.state == .sendingRequest(Exchange()) && !sm.isReusable && sm.isUsable)
        #expect(sm.writeRequested() == .none)
        #expect(sm.writeRequested() == .none)
        #expect(sm.requestWritten() == .none)
        #expect(sm.state == .requestSent(Exchange(replyBytes: 0, requestComplete: true)))
        #expect(sm.headReceived(command: 100, status: 0, size: 10) == .none)
        #expect(sm.state == .headReceived(Exchange(replyBytes: 10, requestComplete: true)))
        #expect(sm.bodyChunkReceived(size: 100) == .none)
        #expect(sm.bodyChunkReceived(size: 50) == .none)
        #expect(sm.state == .streamingBody(Exchange(replyBytes: 160, requestComplete: true)))
        #expect(sm.endReceived() == .none)
        #expect(sm.state == .idle(Exchange(replyBytes: 160, requestComplete: true)) && sm.isReusable)
        #expect(sm.exchangeEnded() == .stopNetworkTimer)
        #expect(sm.isReusable)
        // The next lease starts from zero.
        #expect(sm.exchangeStarted() == .startNetworkTimer)
        #expect(sm.replyBytes == 0 && !sm.requestComplete)
    }

    @Test func anEmptyReplyGoesStraightFromHeadToIdle() {
        var sm = Self.headReceived()
        #expect(sm.endReceived() == .none)
        #expect(sm.state == .idle(Exchange(replyBytes: 10, requestComplete: true)))
    }

    @Test func aFollowUpRequestKeepsTheReplyByteCount() {
        var sm = Self.streaming()
        _ = sm.endReceived()
        #expect(sm.followUpStarted() == .none)
        #expect(sm.state == .sendingRequest(Exchange(replyBytes: 15, requestComplete: false)))
        #expect(sm.requestWritten() == .none)
        #expect(sm.inboundFinished() == .fail(.closed(replyBytes: 15)))
    }

    // MARK: - Failures

    @Test func aStatusFailsTheExchange() {
        var sm = Self.requestSent()
        #expect(sm.headReceived(command: 100, status: 2, size: 10) == .fail(.status(2)))
        #expect(sm.state == .failed(Exchange(replyBytes: 10, requestComplete: true), .status(2)))
        #expect(!sm.isReusable && !sm.isUsable)
        #expect(sm.exchangeEnded() == .stopNetworkTimer)
        #expect(!sm.isReusable)
    }

    @Test func aHeaderOfAnotherCommandIsAProtocolViolation() {
        var sm = Self.requestSent()
        #expect(sm.headReceived(command: 11, status: 0, size: 10) == .fail(.protocolViolation("reply header carries command 11, expected 100")))
        #expect(!sm.isUsable)
    }

    @Test func aSecondHeaderIsAProtocolViolation() {
        for start in [Self.headReceived(), Self.streaming()] {
            var sm = start
            #expect(sm.headReceived(command: 100, status: 0, size: 10) == .fail(.protocolViolation("unexpected second reply header")))
            #expect(!sm.isUsable)
        }
    }

    @Test func bodyBytesBeforeTheHeaderAreAProtocolViolation() {
        var sm = Self.requestSent()
        #expect(sm.bodyChunkReceived(size: 1) == .fail(.protocolViolation("expected a reply header")))
        var sm2 = Self.requestSent()
        #expect(sm2.endReceived() == .fail(.protocolViolation("expected a reply header")))
    }

    @Test func theStreamEndingEarlyIsAClosedConnectionWithTheBytesSeen() {
        var sending = Self.sending()
        #expect(sending.inboundFinished() == .fail(.closed(replyBytes: 0)))
        var waiting = Self.requestSent()
        #expect(waiting.inboundFinished() == .fail(.closed(replyBytes: 0)))
        #expect(waiting.requestComplete, "the retry rules still see that the request went out")
        var head = Self.headReceived()
        #expect(head.inboundFinished() == .fail(.closed(replyBytes: 10)))
        var body = Self.streaming()
        #expect(body.inboundFinished() == .fail(.closed(replyBytes: 15)))
        #expect(!body.isUsable)
    }

    @Test func transportErrorsByCause() {
        for make in [Self.sending, Self.requestSent, Self.headReceived, Self.streaming] {
            var a = make()
            #expect(a.transportFailed(.other) == .fail(.transportError))
            var b = make()
            #expect(b.transportFailed(.timeout) == .fail(.timedOut))
            var c = make()
            #expect(c.transportFailed(.cancellation) == .fail(.cancelled))
            #expect(!a.isUsable && !b.isUsable && !c.isUsable)
        }
    }

    @Test func networkTimeoutWinsOverWhatTheSocketSaid() {
        var sm = Self.streaming()
        #expect(sm.timedOut() == .none)
        #expect(!sm.isUsable)
        #expect(sm.transportFailed(.other) == .fail(.timedOut))
        var eof = Self.requestSent()
        _ = eof.timedOut()
        #expect(eof.inboundFinished() == .fail(.timedOut))
        #expect(eof.writeRequested() == .fail(.timedOut))
    }

    @Test func cancellationClosesTheChannelAndWinsOverEverything() {
        for make in [Self.idle, Self.sending, Self.requestSent, Self.headReceived, Self.streaming, Self.failed] {
            var sm = make()
            #expect(sm.cancelled() == .closeChannel)
            #expect(!sm.isUsable && !sm.isReusable)
            #expect(sm.inboundFinished() == .fail(.cancelled))
            #expect(sm.transportFailed(.other) == .fail(.cancelled))
            #expect(sm.writeRequested() == .fail(.cancelled))
            #expect(sm.headReceived(command: 100, status: 0, size: 10) == .fail(.cancelled))
            #expect(sm.bodyChunkReceived(size: 1) == .fail(.cancelled))
            #expect(sm.endReceived() == .fail(.cancelled))
            #expect(sm.requestWritten() == .fail(.cancelled))
        }
        var timedOut = Self.streaming()
        _ = timedOut.timedOut()
        #expect(timedOut.cancelled() == .closeChannel)
        #expect(timedOut.transportFailed(.timeout) == .fail(.cancelled))
        // Already closed: nothing left to close; cancelled twice: nothing more to do.
        var closed = Self.closed()
        #expect(closed.cancelled() == .none)
        var twice = Self.cancelled()
        #expect(twice.cancelled() == .none)
        #expect(twice.timedOut() == .none && twice.exchangeAbandoned() == .none)
        #expect(twice.state == .cancelled(Exchange(replyBytes: 15, requestComplete: true)))
    }

    @Test func aCancellationErrorIsReportedAsCancelledEvenAfterAFailure() {
        var sm = Self.failed()
        #expect(sm.transportFailed(.cancellation) == .fail(.cancelled))
        var other = Self.failed()
        #expect(other.transportFailed(.other) == .fail(.status(2)))
    }

    @Test func abandoningAnExchangeMakesTheConnectionUnusable() {
        for make in [Self.idle, Self.sending, Self.requestSent, Self.headReceived, Self.streaming, Self.closed] {
            var sm = make()
            #expect(sm.exchangeAbandoned() == .none)
            #expect(!sm.isUsable && !sm.isReusable)
            #expect(sm.writeRequested() == .fail(.abandoned))
            #expect(sm.transportFailed(.other) == .fail(.transportError))
        }
        var failed = Self.failed()
        #expect(failed.exchangeAbandoned() == .none)
        #expect(failed.state == .failed(Exchange(replyBytes: 10, requestComplete: true), .status(2)), "the first failure is kept")
    }

    @Test func endingALeaseMidReplyMakesTheConnectionUnusable() {
        for make in [Self.sending, Self.requestSent, Self.headReceived, Self.streaming] {
            var sm = make()
            #expect(sm.exchangeEnded() == .stopNetworkTimer)
            #expect(!sm.isUsable && !sm.isReusable)
            if case .failed(_, .abandoned) = sm.state {} else { Issue.record("not failed: \(sm.state)") }
        }
        for make in [Self.closed, Self.failed, Self.cancelled] {
            var sm = make()
            let before = sm.state
            #expect(sm.exchangeEnded() == .stopNetworkTimer)
            #expect(sm.state == before)
        }
    }

    // MARK: - The channel closing

    @Test func aChannelClosedWhileIdleIsClosed() {
        var sm = SM()
        #expect(sm.channelClosed() == .none)
        #expect(sm.state == .closed(Exchange()) && !sm.isUsable && !sm.isReusable)
        #expect(sm.channelClosed() == .none)
        // A request started on it before anyone noticed fails as a connection closed before
        // any reply byte (so the retry rules may use another connection).
        #expect(sm.exchangeStarted() == .startNetworkTimer)
        #expect(sm.writeRequested() == .fail(.closed(replyBytes: 0)))
        var followUp = Self.closed()
        #expect(followUp.followUpStarted() == .none)
        #expect(followUp.requestWritten() == .fail(.closed(replyBytes: 0)))
    }

    @Test func aChannelClosedDuringAnExchangeStillDeliversWhatArrived() {
        // A storage sends an EINVAL reply and closes at once: the reply is still read.
        var sm = Self.requestSent()
        #expect(sm.channelClosed() == .none)
        #expect(sm.headReceived(command: 100, status: 22, size: 10) == .fail(.status(22)))
        var body = Self.streaming()
        #expect(body.channelClosed() == .none)
        #expect(body.bodyChunkReceived(size: 5) == .none)
        #expect(body.endReceived() == .none)
        #expect(body.isReusable, "the channel's own state says whether it is open")
        for make in [Self.sending, Self.headReceived, Self.failed, Self.cancelled] {
            var other = make()
            let before = other.state
            #expect(other.channelClosed() == .none)
            #expect(other.state == before)
        }
    }

    @Test func aTimeoutWhileIdleOrClosedFailsTheConnection() {
        for make in [Self.idle, Self.closed] {
            var sm = make()
            #expect(sm.timedOut() == .none)
            #expect(!sm.isUsable)
        }
        var failed = Self.failed()
        #expect(failed.timedOut() == .none)
        #expect(failed.state == .failed(Exchange(replyBytes: 10, requestComplete: true), .status(2)))
    }

    // MARK: - Illegal events: the exchange fails and names what happened

    @Test func illegalEventsFailTheConnection() {
        typealias Case = (name: String, make: () -> SM, event: (inout SM) -> SM.Action)
        let cases: [Case] = [
            ("exchangeStarted", Self.sending, { $0.exchangeStarted() }),
            ("exchangeStarted", Self.requestSent, { $0.exchangeStarted() }),
            ("exchangeStarted", Self.headReceived, { $0.exchangeStarted() }),
            ("exchangeStarted", Self.streaming, { $0.exchangeStarted() }),
            ("exchangeStarted", Self.failed, { $0.exchangeStarted() }),
            ("exchangeStarted", Self.cancelled, { $0.exchangeStarted() }),
            ("followUpStarted", Self.sending, { $0.followUpStarted() }),
            ("followUpStarted", Self.requestSent, { $0.followUpStarted() }),
            ("followUpStarted", Self.headReceived, { $0.followUpStarted() }),
            ("followUpStarted", Self.streaming, { $0.followUpStarted() }),
            ("followUpStarted", Self.failed, { $0.followUpStarted() }),
            ("followUpStarted", Self.cancelled, { $0.followUpStarted() }),
            ("writeRequested", Self.idle, { $0.writeRequested() }),
            ("writeRequested", Self.requestSent, { $0.writeRequested() }),
            ("writeRequested", Self.headReceived, { $0.writeRequested() }),
            ("writeRequested", Self.streaming, { $0.writeRequested() }),
            ("writeRequested", Self.closed, { $0.writeRequested() }),
            ("requestWritten", Self.idle, { $0.requestWritten() }),
            ("requestWritten", Self.requestSent, { $0.requestWritten() }),
            ("requestWritten", Self.headReceived, { $0.requestWritten() }),
            ("requestWritten", Self.streaming, { $0.requestWritten() }),
            ("requestWritten", Self.closed, { $0.requestWritten() }),
            ("headReceived", Self.idle, { $0.headReceived(command: 100, status: 0, size: 10) }),
            ("headReceived", Self.sending, { $0.headReceived(command: 100, status: 0, size: 10) }),
            ("headReceived", Self.closed, { $0.headReceived(command: 100, status: 0, size: 10) }),
            ("bodyChunkReceived", Self.idle, { $0.bodyChunkReceived(size: 1) }),
            ("bodyChunkReceived", Self.sending, { $0.bodyChunkReceived(size: 1) }),
            ("bodyChunkReceived", Self.closed, { $0.bodyChunkReceived(size: 1) }),
            ("endReceived", Self.idle, { $0.endReceived() }),
            ("endReceived", Self.sending, { $0.endReceived() }),
            ("endReceived", Self.closed, { $0.endReceived() }),
            ("inboundFinished", Self.idle, { $0.inboundFinished() }),
            ("inboundFinished", Self.closed, { $0.inboundFinished() }),
        ]
        for c in cases {
            var sm = c.make()
            let stateName = SM.name(of: sm.state)
            let action = c.event(&sm)
            #expect(action == .fail(.illegal(event: c.name, state: stateName)), "\(c.name) in \(stateName)")
            #expect(!sm.isUsable && !sm.isReusable, "\(c.name) in \(stateName)")
            // The failure sticks: the next call reports it again.
            #expect(sm.inboundFinished() == .fail(.illegal(event: c.name, state: stateName)))
        }
    }

    @Test func eventsAfterAFailureReportThatFailure() {
        var sm = Self.failed()
        #expect(sm.writeRequested() == .fail(.status(2)))
        #expect(sm.requestWritten() == .fail(.status(2)))
        #expect(sm.headReceived(command: 100, status: 0, size: 10) == .fail(.status(2)))
        #expect(sm.bodyChunkReceived(size: 1) == .fail(.status(2)))
        #expect(sm.endReceived() == .fail(.status(2)))
        #expect(sm.inboundFinished() == .fail(.status(2)))
        #expect(sm.replyBytes == 10 && sm.requestComplete)
    }
}
