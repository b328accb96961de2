// Runs ConnectionPoolStateMachine for one server: keeps the real connections and the waiting
// continuations behind one lock, asks the machine what to do, and does it after the lock is
// released (resume waiters, close connections, hand connects and idle timers to `run()`).
// Generic over the connection and the clock so tests can drive it with fake connections and a
// manual clock.
//
// Background work — connecting and the idle timers — runs in `run()`, in one task group fed by
// an AsyncStream of work (postgres-nio's pool `run()`): `shutdown()` or cancelling `run()` ends
// it, and nothing of the pool outlives it.

import Synchronization

/// What the pool needs from a connection.
protocol PoolableConnection: AnyObject, Sendable {
    /// False once the peer closed the connection or it failed; such a connection is never leased.
    var isUsable: Bool { get }
    func close()
    /// Calls `callback` once when the connection closes (for whatever reason).
    func onClose(_ callback: @escaping @Sendable () -> Void)
}

/// A connection checked out of a pool. Give it back with `ConnectionPool.release(_:reusable:)`.
struct PooledConnection<Connection: PoolableConnection>: Sendable {
    let id: Int
    let connection: Connection
    /// True when the connection served an earlier request (so it may have died while idle).
    let reused: Bool
}

struct PoolShutdownError: Error, Sendable {}

final class ConnectionPool<Connection: PoolableConnection, Clock: _Concurrency.Clock>: Sendable
where Clock.Duration == Duration, Clock: Sendable, Clock.Instant: Sendable {
    typealias Machine = ConnectionPoolStateMachine<UInt64, Clock>
    typealias Lease = PooledConnection<Connection>

    private struct State: ~Copyable {
        var machine: Machine
        var connections: [Int: Connection] = [:]
        var usedBefore: Set<Int> = []
        var waiters: [UInt64: CheckedContinuation<Lease, any Error>] = [:]
        var nextRequestID: UInt64 = 0
    }

    /// Work to do once the lock is released.
    private struct Effects {
        var resume: [(CheckedContinuation<Lease, any Error>, Result<Lease, any Error>)] = []
        var close: [Connection] = []
        var create: [Int] = []
        var timer: Clock.Instant?
    }

    /// Work for `run()`.
    private enum Work: Sendable {
        case connect(Int)
        case idleTimer(Clock.Instant)
    }

    private let state: Mutex<State>
    private let clock: Clock
    private let factory: @Sendable () async throws -> Connection
    private let work: AsyncStream<Work>
    private let workSink: AsyncStream<Work>.Continuation

    init(
        configuration: Machine.Configuration, clock: Clock,
        factory: @escaping @Sendable () async throws -> Connection
    ) {
        self.state = Mutex(State(machine: Machine(configuration: configuration)))
        self.clock = clock
        self.factory = factory
        (self.work, self.workSink) = AsyncStream.makeStream(of: Work.self)
    }

    /// Connects and runs the idle timers until `shutdown()` (or until the task running it is
    /// cancelled, which shuts the pool down). Must be running for leases to get new connections.
    func run() async {
        await withDiscardingTaskGroup { group in
            for await item in work {
                switch item {
                case .connect(let id):
                    group.addTask { await self.connect(id) }
                case .idleTimer(let deadline):
                    group.addTask {
                        do {
                            try await self.clock.sleep(until: deadline, tolerance: nil)
                        } catch {
                            return  // cancelled: the pool is shutting down
                        }
                        self.idleTimerFired(deadline)
                    }
                }
            }
            // Shut down (or run() cancelled): connects in flight and sleeping timers end now.
            group.cancelAll()
        }
        shutdown()
    }

    /// Waits for a connection (idle, new, or released by another task). Throws the connect
    /// error when the connection made for this request failed, CancellationError when the task
    /// is cancelled while waiting, PoolShutdownError after shutdown.
    func lease() async throws -> Lease {
        let requestID = state.withLock { s in
            s.nextRequestID += 1
            return s.nextRequestID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Lease, any Error>) in
                let now = clock.now
                let effects = state.withLock { s -> Effects in
                    if Task.isCancelled {
                        return Effects(resume: [(continuation, .failure(CancellationError()))])
                    }
                    s.waiters[requestID] = continuation
                    let action = s.machine.leaseRequested(requestID, now: now)
                    return Self.apply(action, to: &s, now: now, connectError: nil)
                }
                perform(effects)
            }
        } onCancel: {
            let effects = state.withLock { s -> Effects in
                let action = s.machine.requestCancelled(requestID)
                return Self.apply(action, to: &s, now: clock.now, connectError: nil)
            }
            perform(effects)
        }
    }

    /// Gives a leased connection back. `reusable: false` closes it (it saw an error).
    func release(_ lease: Lease, reusable: Bool) {
        let now = clock.now
        let effects = state.withLock { s -> Effects in
            let ok = reusable && lease.connection.isUsable
            if ok { s.usedBefore.insert(lease.id) }
            let action = s.machine.connectionReleased(lease.id, reusable: ok, now: now)
            return Self.apply(action, to: &s, now: now, connectError: nil)
        }
        perform(effects)
    }

    /// Closes idle connections and fails waiters; leased connections close when released.
    /// Ends `run()`.
    func shutdown() {
        let now = clock.now
        let effects = state.withLock { s -> Effects in
            Self.apply(s.machine.shutdown(), to: &s, now: now, connectError: nil)
        }
        perform(effects)
        workSink.finish()
    }

    /// (connecting, idle, leased, waiting) — for tests and diagnostics.
    var counts: (connecting: Int, idle: Int, leased: Int, waiting: Int) {
        state.withLock { s in
            (s.machine.connectingCount, s.machine.idleCount, s.machine.leasedCount, s.machine.waiters.count)
        }
    }

    // MARK: - Internals

    private func connect(_ id: Int) async {
        do {
            let connection = try await factory()
            connectionEstablished(id, connection)
        } catch {
            connectionFailed(id, error)
        }
    }

    private func idleTimerFired(_ deadline: Clock.Instant) {
        let now = clock.now
        let effects = state.withLock { s -> Effects in
            Self.apply(s.machine.idleTimerFired(deadline: deadline, now: now), to: &s, now: now, connectError: nil)
        }
        perform(effects)
    }

    private func connectionEstablished(_ id: Int, _ connection: Connection) {
        let now = clock.now
        let effects = state.withLock { s -> Effects in
            s.connections[id] = connection
            return Self.apply(s.machine.connectionEstablished(id, now: now), to: &s, now: now, connectError: nil)
        }
        connection.onClose { [weak self] in self?.connectionClosed(id) }
        perform(effects)
    }

    private func connectionFailed(_ id: Int, _ error: any Error) {
        let now = clock.now
        let effects = state.withLock { s -> Effects in
            Self.apply(s.machine.connectionFailed(id, now: now), to: &s, now: now, connectError: error)
        }
        perform(effects)
    }

    private func connectionClosed(_ id: Int) {
        let now = clock.now
        let effects = state.withLock { s -> Effects in
            Self.apply(s.machine.connectionClosed(id, now: now), to: &s, now: now, connectError: nil)
        }
        perform(effects)
    }

    /// Turns machine actions into effects. Leases of dead connections are fed back as
    /// `connectionFoundDead` right here, so a waiter only ever receives a usable connection.
    private static func apply(_ first: Machine.Action, to s: inout State, now: Clock.Instant, connectError: (any Error)?)
        -> Effects
    {
        var effects = Effects()
        var pending = [first]
        while !pending.isEmpty {
            let action = pending.removeFirst()
            for id in action.close {
                if let c = s.connections.removeValue(forKey: id) { effects.close.append(c) }
                s.usedBefore.remove(id)
            }
            for failure in action.failures {
                guard let continuation = s.waiters.removeValue(forKey: failure.request) else { continue }
                let error: any Error
                switch failure.reason {
                case .connectFailed: error = connectError ?? PoolShutdownError()
                case .cancelled: error = CancellationError()
                case .shutdown: error = PoolShutdownError()
                }
                effects.resume.append((continuation, .failure(error)))
            }
            for lease in action.leases {
                guard let connection = s.connections[lease.connection] else { continue }
                if !connection.isUsable {
                    pending.append(s.machine.connectionFoundDead(lease.connection, request: lease.request, now: now))
                    continue
                }
                guard let continuation = s.waiters.removeValue(forKey: lease.request) else {
                    // Waiter vanished (cannot happen: cancelled waiters leave the queue first).
                    pending.append(s.machine.connectionReleased(lease.connection, reusable: true, now: now))
                    continue
                }
                let reused = s.usedBefore.contains(lease.connection)
                effects.resume.append(
                    (continuation, .success(Lease(id: lease.connection, connection: connection, reused: reused))))
            }
            effects.create.append(contentsOf: action.create)
            if let deadline = action.scheduleIdleTimer { effects.timer = deadline }
        }
        return effects
    }

    private func perform(_ effects: Effects) {
        for connection in effects.close { connection.close() }
        for (continuation, result) in effects.resume { continuation.resume(with: result) }
        for id in effects.create { workSink.yield(.connect(id)) }
        if let deadline = effects.timer { workSink.yield(.idleTimer(deadline)) }
    }
}
