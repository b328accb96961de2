// The pool state machine without sockets: every event with an explicit instant.

import Testing
@testable import FastDFS

@Suite("Connection pool state machine")
struct PoolStateMachineTests {
    typealias SM = ConnectionPoolStateMachine<Int, ManualClock>
    typealias Action = SM.Action

    func machine(max: Int = 2, idle: Duration = .seconds(60), pooling: Bool = true) -> SM {
        SM(configuration: .init(maxConnections: max, maxIdleTime: idle, pooling: pooling))
    }

    /// When a connection idle since `second` expires (idle for longer than `idle` seconds).
    func expiry(_ second: Int, idle: Int = 60) -> ManualClock.Instant {
        ManualClock.at(second).advanced(by: .seconds(idle) + .nanoseconds(1))
    }

    @Test func firstLeaseCreatesAConnectionAndGetsIt() {
        var sm = machine()
        #expect(sm.leaseRequested(1, now: ManualClock.at(0)) == Action(create: [0]))
        #expect(sm.connectionEstablished(0, now: ManualClock.at(0)) == Action(leases: [.init(connection: 0, request: 1)]))
        #expect(sm.leasedCount == 1)
    }

    @Test func releasedConnectionIsReused() {
        var sm = machine()
        _ = sm.leaseRequested(1, now: ManualClock.at(0))
        _ = sm.connectionEstablished(0, now: ManualClock.at(0))
        #expect(sm.connectionReleased(0, reusable: true, now: ManualClock.at(1)) == Action(scheduleIdleTimer: expiry(1)))
        #expect(sm.idleCount == 1)
        #expect(sm.leaseRequested(2, now: ManualClock.at(2)) == Action(leases: [.init(connection: 0, request: 2)]))
    }

    @Test func mostRecentlyUsedIdleConnectionFirst() {
        var sm = machine()
        _ = sm.leaseRequested(1, now: ManualClock.at(0))
        _ = sm.leaseRequested(2, now: ManualClock.at(0))
        _ = sm.connectionEstablished(0, now: ManualClock.at(0))
        _ = sm.connectionEstablished(1, now: ManualClock.at(0))
        _ = sm.connectionReleased(0, reusable: true, now: ManualClock.at(1))
        _ = sm.connectionReleased(1, reusable: true, now: ManualClock.at(2))
        #expect(sm.leaseRequested(3, now: ManualClock.at(3)) == Action(leases: [.init(connection: 1, request: 3)]))
    }

    @Test func maxConnectionsMakesRequestsWaitInOrder() {
        var sm = machine(max: 2)
        #expect(sm.leaseRequested(1, now: ManualClock.at(0)) == Action(create: [0]))
        #expect(sm.leaseRequested(2, now: ManualClock.at(0)) == Action(create: [1]))
        #expect(sm.leaseRequested(3, now: ManualClock.at(0)) == .none)  // at max: waits
        #expect(sm.leaseRequested(4, now: ManualClock.at(0)) == .none)
        #expect(sm.waiters == [1, 2, 3, 4])
        #expect(sm.connectionEstablished(1, now: ManualClock.at(0)) == Action(leases: [.init(connection: 1, request: 1)]))
        #expect(sm.connectionEstablished(0, now: ManualClock.at(0)) == Action(leases: [.init(connection: 0, request: 2)]))
        #expect(sm.connectionReleased(1, reusable: true, now: ManualClock.at(1)) == Action(leases: [.init(connection: 1, request: 3)]))
        // A broken connection is closed and its slot refilled for the next waiter.
        #expect(sm.connectionReleased(0, reusable: false, now: ManualClock.at(1)) == Action(create: [2], close: [0]))
        #expect(sm.connectionEstablished(2, now: ManualClock.at(1)) == Action(leases: [.init(connection: 2, request: 4)]))
        #expect(sm.waiters.isEmpty)
    }

    @Test func connectionThatSawAnErrorIsClosedNotPooled() {
        var sm = machine()
        _ = sm.leaseRequested(1, now: ManualClock.at(0))
        _ = sm.connectionEstablished(0, now: ManualClock.at(0))
        #expect(sm.connectionReleased(0, reusable: false, now: ManualClock.at(0)) == Action(close: [0]))
        #expect(sm.idleCount == 0)
        #expect(sm.connections.isEmpty)
    }

    @Test func poolingOffClosesEveryReleasedConnection() {
        var sm = machine(pooling: false)
        _ = sm.leaseRequested(1, now: ManualClock.at(0))
        _ = sm.connectionEstablished(0, now: ManualClock.at(0))
        #expect(sm.connectionReleased(0, reusable: true, now: ManualClock.at(0)) == Action(close: [0]))
    }

    @Test func idleConnectionExpiresAfterMaxIdleTime() {
        var sm = machine(idle: .seconds(60))
        _ = sm.leaseRequested(1, now: ManualClock.at(0))
        _ = sm.connectionEstablished(0, now: ManualClock.at(0))
        _ = sm.connectionReleased(0, reusable: true, now: ManualClock.at(10))
        // 60 s idle exactly: still fine.
        #expect(sm.leaseRequested(2, now: ManualClock.at(70)) == Action(leases: [.init(connection: 0, request: 2)]))
        _ = sm.connectionReleased(0, reusable: true, now: ManualClock.at(70))
        // 61 s idle: closed when next picked, a new one is made.
        #expect(sm.leaseRequested(3, now: ManualClock.at(131)) == Action(create: [1], close: [0]))
    }

    @Test func idleTimerClosesOnlyExpiredConnectionsAndAsksForTheNext() {
        var sm = machine(max: 3, idle: .seconds(60))
        for r in 1...2 { _ = sm.leaseRequested(r, now: ManualClock.at(0)) }
        _ = sm.connectionEstablished(0, now: ManualClock.at(0))
        _ = sm.connectionEstablished(1, now: ManualClock.at(0))
        // The first idle connection asks for a timer at its expiry; the second expires later,
        // so the running timer covers it.
        #expect(sm.connectionReleased(0, reusable: true, now: ManualClock.at(0)) == Action(scheduleIdleTimer: expiry(0)))
        #expect(sm.connectionReleased(1, reusable: true, now: ManualClock.at(50)) == .none)
        #expect(sm.idleTimer == expiry(0))
        // The timer fires on time: connection 0 goes, the next timer is for connection 1.
        #expect(
            sm.idleTimerFired(deadline: expiry(0), now: expiry(0)) == Action(close: [0], scheduleIdleTimer: expiry(50)))
        #expect(sm.idleCount == 1)
        #expect(sm.idleTimerFired(deadline: expiry(50), now: expiry(50)) == Action(close: [1]))
        #expect(sm.idleCount == 0 && sm.idleTimer == nil)
    }

    @Test func idleTimerFiringEarlyClosesNothingAndRunsAgain() {
        var sm = machine(idle: .seconds(60))
        _ = sm.leaseRequested(1, now: ManualClock.at(0))
        _ = sm.connectionEstablished(0, now: ManualClock.at(0))
        #expect(sm.connectionReleased(0, reusable: true, now: ManualClock.at(0)) == Action(scheduleIdleTimer: expiry(0)))
        // Exactly maxIdleTime idle is not expired yet.
        #expect(sm.idleTimerFired(deadline: expiry(0), now: ManualClock.at(60)) == Action(scheduleIdleTimer: expiry(0)))
        #expect(sm.idleCount == 1)
        // Reused before the timer fired: the stale timer closes nothing and asks for none.
        #expect(sm.leaseRequested(2, now: ManualClock.at(30)) == Action(leases: [.init(connection: 0, request: 2)]))
        #expect(sm.idleTimerFired(deadline: expiry(0), now: expiry(0)) == .none)
        #expect(sm.connectionReleased(0, reusable: true, now: ManualClock.at(62)) == Action(scheduleIdleTimer: expiry(62)))
    }

    @Test func aStaleTimerHandsOverToTheNextExpiry() {
        var sm = machine(max: 2, idle: .seconds(60))
        for r in 1...2 { _ = sm.leaseRequested(r, now: ManualClock.at(0)) }
        _ = sm.connectionEstablished(0, now: ManualClock.at(0))
        _ = sm.connectionEstablished(1, now: ManualClock.at(0))
        #expect(sm.connectionReleased(0, reusable: true, now: ManualClock.at(10)) == Action(scheduleIdleTimer: expiry(10)))
        #expect(sm.leaseRequested(3, now: ManualClock.at(20)) == Action(leases: [.init(connection: 0, request: 3)]))
        // Connection 1 expires after the running (now stale) timer: no second timer yet...
        #expect(sm.connectionReleased(1, reusable: true, now: ManualClock.at(30)) == .none)
        // ...the stale one asks for it when it fires.
        #expect(sm.idleTimerFired(deadline: expiry(10), now: expiry(10)) == Action(scheduleIdleTimer: expiry(30)))
        #expect(sm.connectionReleased(0, reusable: true, now: ManualClock.at(40)) == .none)
        #expect(sm.idleTimerFired(deadline: expiry(30), now: expiry(30)) == Action(close: [1], scheduleIdleTimer: expiry(40)))
    }

    @Test func noIdleTimerAfterShutdown() {
        var sm = machine()
        _ = sm.leaseRequested(1, now: ManualClock.at(0))
        _ = sm.connectionEstablished(0, now: ManualClock.at(0))
        _ = sm.connectionReleased(0, reusable: true, now: ManualClock.at(0))
        #expect(sm.shutdown() == Action(close: [0]))
        #expect(sm.idleTimerFired(deadline: expiry(0), now: expiry(0)) == .none)
    }

    @Test func deadConnectionIsReplacedAndTheRequestServedFirst() {
        var sm = machine(max: 1)
        _ = sm.leaseRequested(1, now: ManualClock.at(0))
        _ = sm.connectionEstablished(0, now: ManualClock.at(0))
        _ = sm.connectionReleased(0, reusable: true, now: ManualClock.at(1))
        #expect(sm.leaseRequested(2, now: ManualClock.at(2)) == Action(leases: [.init(connection: 0, request: 2)]))
        #expect(sm.leaseRequested(3, now: ManualClock.at(2)) == .none)  // waits behind 2
        // The driver finds connection 0 dead (server restarted while it was idle).
        #expect(sm.connectionFoundDead(0, request: 2, now: ManualClock.at(2)) == Action(create: [1], close: [0]))
        #expect(sm.waiters == [2, 3])
        #expect(sm.connectionEstablished(1, now: ManualClock.at(3)) == Action(leases: [.init(connection: 1, request: 2)]))
    }

    @Test func idleConnectionClosedByPeerIsForgotten() {
        var sm = machine()
        _ = sm.leaseRequested(1, now: ManualClock.at(0))
        _ = sm.connectionEstablished(0, now: ManualClock.at(0))
        _ = sm.connectionReleased(0, reusable: true, now: ManualClock.at(0))
        #expect(sm.connectionClosed(0, now: ManualClock.at(1)) == .none)
        #expect(sm.leaseRequested(2, now: ManualClock.at(1)) == Action(create: [1]))
    }

    @Test func connectFailureFailsTheOldestWaiterAndRetriesForOthers() {
        var sm = machine(max: 1)
        _ = sm.leaseRequested(1, now: ManualClock.at(0))
        _ = sm.leaseRequested(2, now: ManualClock.at(0))
        #expect(
            sm.connectionFailed(0, now: ManualClock.at(0))
                == Action(create: [1], failures: [.init(request: 1, reason: .connectFailed)]))
        #expect(sm.connectionEstablished(1, now: ManualClock.at(0)) == Action(leases: [.init(connection: 1, request: 2)]))
    }

    @Test func cancelledWaiterLeavesTheQueue() {
        var sm = machine(max: 1)
        _ = sm.leaseRequested(1, now: ManualClock.at(0))
        _ = sm.leaseRequested(2, now: ManualClock.at(0))
        #expect(sm.requestCancelled(2) == Action(failures: [.init(request: 2, reason: .cancelled)]))
        #expect(sm.requestCancelled(2) == .none)
        #expect(sm.connectionEstablished(0, now: ManualClock.at(0)) == Action(leases: [.init(connection: 0, request: 1)]))
        #expect(sm.connectionReleased(0, reusable: true, now: ManualClock.at(0)) == Action(scheduleIdleTimer: expiry(0)))
    }

    @Test func shutdownClosesIdleFailsWaitersAndClosesReturningConnections() {
        var sm = machine(max: 2)
        _ = sm.leaseRequested(1, now: ManualClock.at(0))
        _ = sm.leaseRequested(2, now: ManualClock.at(0))
        _ = sm.leaseRequested(3, now: ManualClock.at(0))
        _ = sm.connectionEstablished(0, now: ManualClock.at(0))  // → 1
        let action = sm.shutdown()
        #expect(action == Action(failures: [.init(request: 2, reason: .shutdown), .init(request: 3, reason: .shutdown)]))
        #expect(sm.connectionEstablished(1, now: ManualClock.at(0)) == Action(close: [1]))
        #expect(sm.connectionReleased(0, reusable: true, now: ManualClock.at(0)) == Action(close: [0]))
        #expect(sm.leaseRequested(4, now: ManualClock.at(0)) == Action(failures: [.init(request: 4, reason: .shutdown)]))
    }
}
