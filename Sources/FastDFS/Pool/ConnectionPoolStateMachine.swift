// Pure state of one server's connection pool: which connections exist (connecting, idle since
// when, leased), who waits for one, what to create, close or hand out next. No I/O and no clock
// reads: every event takes `now`, so tests drive time by hand. ConnectionPool.swift runs the
// returned actions.
//
// Rules (C client semantics plus a bound):
// - at most `maxConnections` connections (connecting + idle + leased) per server;
// - requests beyond that wait in FIFO order;
// - an idle connection is reused most-recently-used first; one idle for longer than
//   `maxIdleTime` is closed (connection_pool_max_idle_time) when its timer fires — the machine
//   asks the driver for a timer at the earliest expiry — or when seen by any other event;
// - a connection released as not reusable (it saw an error, or pooling is off) is closed;
// - a leased connection found dead (peer closed it while idle) is closed and its request is
//   served again first in line.

struct ConnectionPoolStateMachine<RequestID: Hashable & Sendable, Clock: _Concurrency.Clock>
where Clock.Duration == Duration {
    typealias ConnectionID = Int
    typealias Instant = Clock.Instant

    struct Configuration: Sendable {
        var maxConnections: Int
        var maxIdleTime: Duration
        /// false: every released connection is closed (client.conf use_connection_pool = false).
        var pooling: Bool = true
    }

    enum FailureReason: Hashable, Sendable {
        /// The connection being created for this request could not be established.
        case connectFailed
        case shutdown
        case cancelled
    }

    struct Lease: Hashable, Sendable {
        var connection: ConnectionID
        var request: RequestID
    }

    struct Failure: Hashable, Sendable {
        var request: RequestID
        var reason: FailureReason
    }

    /// What the driver must do after an event, in this order: close, fail, lease, create,
    /// schedule.
    struct Action: Hashable, Sendable {
        var leases: [Lease] = []
        var create: [ConnectionID] = []
        var close: [ConnectionID] = []
        var failures: [Failure] = []
        /// Call `idleTimerFired(deadline:now:)` at this instant (an idle connection expires then).
        var scheduleIdleTimer: Instant? = nil
        static var none: Action { Action() }
    }

    enum ConnectionState: Hashable {
        case connecting
        case idle(since: Instant)
        case leased
    }

    private(set) var configuration: Configuration
    private(set) var connections: [ConnectionID: ConnectionState] = [:]
    /// Idle connections, most recently released last.
    private var idleOrder: [ConnectionID] = []
    private(set) var waiters: [RequestID] = []
    private var nextConnectionID: ConnectionID = 0
    private(set) var isShutdown = false
    /// The earliest idle timer the driver has running (nil: none).
    private(set) var idleTimer: Instant?

    init(configuration: Configuration) {
        precondition(configuration.maxConnections > 0)
        self.configuration = configuration
    }

    var connectingCount: Int { connections.values.filter { $0 == .connecting }.count }
    var idleCount: Int { idleOrder.count }
    var leasedCount: Int { connections.values.filter { $0 == .leased }.count }

    // MARK: - Events

    /// A task wants a connection.
    mutating func leaseRequested(_ request: RequestID, now: Instant) -> Action {
        guard !isShutdown else { return Action(failures: [Failure(request: request, reason: .shutdown)]) }
        var action = Action()
        expireIdle(now: now, into: &action)
        waiters.append(request)
        serveWaiters(into: &action)
        return action
    }

    /// The connection created for the pool is ready.
    mutating func connectionEstablished(_ id: ConnectionID, now: Instant) -> Action {
        guard connections[id] == .connecting else { return .none }
        var action = Action()
        if isShutdown {
            connections[id] = nil
            action.close.append(id)
            return action
        }
        expireIdle(now: now, into: &action)
        makeIdle(id, now: now)
        serveWaiters(into: &action)
        scheduleIdleTimer(into: &action)
        return action
    }

    /// Creating the connection failed: the oldest waiter gets the error (it is the one the
    /// connection was started for, or one that waited longer); the others get new attempts.
    mutating func connectionFailed(_ id: ConnectionID, now: Instant) -> Action {
        guard connections[id] == .connecting else { return .none }
        connections[id] = nil
        var action = Action()
        if !waiters.isEmpty {
            action.failures.append(Failure(request: waiters.removeFirst(), reason: .connectFailed))
        }
        expireIdle(now: now, into: &action)
        serveWaiters(into: &action)
        return action
    }

    /// The task is done with a leased connection. `reusable` is false when the connection saw
    /// any error (it is then closed, never pooled).
    mutating func connectionReleased(_ id: ConnectionID, reusable: Bool, now: Instant) -> Action {
        guard connections[id] == .leased else { return .none }
        var action = Action()
        if !reusable || !configuration.pooling || isShutdown {
            connections[id] = nil
            action.close.append(id)
        } else {
            makeIdle(id, now: now)
        }
        expireIdle(now: now, into: &action)
        serveWaiters(into: &action)
        scheduleIdleTimer(into: &action)
        return action
    }

    /// The lease handed `id` to `request` but the connection turned out dead (peer closed it
    /// while it was idle). Close it and serve the request again, first in line.
    mutating func connectionFoundDead(_ id: ConnectionID, request: RequestID, now: Instant) -> Action {
        var action = Action()
        if connections[id] != nil {
            connections[id] = nil
            idleOrder.removeAll { $0 == id }
            action.close.append(id)
        }
        guard !isShutdown else {
            action.failures.append(Failure(request: request, reason: .shutdown))
            return action
        }
        waiters.insert(request, at: 0)
        expireIdle(now: now, into: &action)
        serveWaiters(into: &action)
        return action
    }

    /// The connection closed by itself (peer closed an idle connection, or an error). Idle
    /// connections are forgotten; a leased one is forgotten when it is released.
    mutating func connectionClosed(_ id: ConnectionID, now: Instant) -> Action {
        guard case .idle = connections[id] else { return .none }
        connections[id] = nil
        idleOrder.removeAll { $0 == id }
        var action = Action()
        serveWaiters(into: &action)
        return action
    }

    /// A waiting task was cancelled.
    mutating func requestCancelled(_ request: RequestID) -> Action {
        guard let index = waiters.firstIndex(of: request) else { return .none }
        waiters.remove(at: index)
        return Action(failures: [Failure(request: request, reason: .cancelled)])
    }

    /// The idle timer scheduled for `deadline` fired: close connections idle for longer than
    /// maxIdleTime and ask for the next timer.
    mutating func idleTimerFired(deadline: Instant, now: Instant) -> Action {
        if idleTimer == deadline { idleTimer = nil }
        var action = Action()
        guard !isShutdown else { return action }
        expireIdle(now: now, into: &action)
        scheduleIdleTimer(into: &action)
        return action
    }

    /// Close idle connections, fail waiters; leased and connecting ones close when they come back.
    mutating func shutdown() -> Action {
        var action = Action()
        isShutdown = true
        for id in idleOrder {
            connections[id] = nil
            action.close.append(id)
        }
        idleOrder.removeAll()
        action.failures = waiters.map { Failure(request: $0, reason: .shutdown) }
        waiters.removeAll()
        return action
    }

    // MARK: - Internals

    /// Asks for a timer at the earliest idle expiry unless one that fires no later is running.
    private mutating func scheduleIdleTimer(into action: inout Action) {
        guard !isShutdown else { return }
        var next: Instant?
        for id in idleOrder {
            guard case .idle(let since) = connections[id] else { continue }
            // The first instant at which it counts as expired (idle for longer than maxIdleTime).
            let expiry = since.advanced(by: configuration.maxIdleTime + .nanoseconds(1))
            if next.map({ expiry < $0 }) ?? true { next = expiry }
        }
        guard let next else { return }
        if let running = idleTimer, running <= next { return }
        idleTimer = next
        action.scheduleIdleTimer = next
    }

    private mutating func makeIdle(_ id: ConnectionID, now: Instant) {
        connections[id] = .idle(since: now)
        idleOrder.removeAll { $0 == id }
        idleOrder.append(id)
    }

    private mutating func expireIdle(now: Instant, into action: inout Action) {
        idleOrder.removeAll { id in
            guard case .idle(let since) = connections[id] else { return true }
            if since.duration(to: now) > configuration.maxIdleTime {
                connections[id] = nil
                action.close.append(id)
                return true
            }
            return false
        }
    }

    /// Hand idle connections to waiters, then start enough new connections for the rest.
    private mutating func serveWaiters(into action: inout Action) {
        while !waiters.isEmpty, let id = idleOrder.popLast() {
            connections[id] = .leased
            action.leases.append(Lease(connection: id, request: waiters.removeFirst()))
        }
        var pendingCreations = connectingCount
        while waiters.count > pendingCreations, connections.count < configuration.maxConnections {
            let id = nextConnectionID
            nextConnectionID += 1
            connections[id] = .connecting
            action.create.append(id)
            pendingCreations += 1
        }
    }
}
