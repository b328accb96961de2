// The pool driver with fake connections and a manual clock (no sockets).

import Synchronization
import Testing
@testable import FastDFS

final class FakeConnection: PoolableConnection {
    let serial: Int
    let alive = Atomic<Bool>(true)
    let closed = Atomic<Bool>(false)
    private let callbacks = Mutex<[@Sendable () -> Void]>([])

    init(serial: Int) { self.serial = serial }

    var isClosed: Bool { closed.load(ordering: .relaxed) }

    var isUsable: Bool { alive.load(ordering: .relaxed) && !closed.load(ordering: .relaxed) }

    func close() {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        let cbs = callbacks.withLock { $0 }
        for cb in cbs { cb() }
    }

    func onClose(_ callback: @escaping @Sendable () -> Void) {
        callbacks.withLock { $0.append(callback) }
    }

    /// The peer went away without us noticing (yet).
    func die() { alive.store(false, ordering: .relaxed) }
}

final class FakeFactory: Sendable {
    let made = Mutex<[FakeConnection]>([])
    let failNext = Atomic<Int>(0)
    struct Refused: Error {}

    func make() async throws -> FakeConnection {
        if failNext.load(ordering: .relaxed) > 0 {
            failNext.subtract(1, ordering: .relaxed)
            throw Refused()
        }
        return made.withLock { made in
            let c = FakeConnection(serial: made.count)
            made.append(c)
            return c
        }
    }
    var count: Int { made.withLock { $0.count } }
}

@Suite("Connection pool driver (fake connections)")
struct ConnectionPoolTests {
    typealias Pool = ConnectionPool<FakeConnection, ManualClock>

    /// Runs `body` on a pool whose `run()` is running, then shuts the pool down (which ends
    /// `run()`).
    func withPool(
        max: Int = 2, idle: Duration = .seconds(60), clock: ManualClock = ManualClock(), factory: FakeFactory,
        _ body: (Pool) async throws -> Void
    ) async throws {
        let pool = Pool(configuration: .init(maxConnections: max, maxIdleTime: idle), clock: clock) {
            try await factory.make()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            do {
                try await body(pool)
            } catch {
                pool.shutdown()
                throw error
            }
            pool.shutdown()
            try await group.waitForAll()
        }
    }

    @Test func reusesAReleasedConnection() async throws {
        let factory = FakeFactory()
        try await withPool(factory: factory) { pool in
            let a = try await pool.lease()
            #expect(!a.reused)
            pool.release(a, reusable: true)
            let b = try await pool.lease()
            #expect(b.connection === a.connection)
            #expect(b.reused)
            pool.release(b, reusable: true)
            #expect(factory.count == 1)
        }
    }

    @Test func closesAConnectionReleasedAfterAnError() async throws {
        let factory = FakeFactory()
        try await withPool(factory: factory) { pool in
            let a = try await pool.lease()
            pool.release(a, reusable: false)
            #expect(a.connection.isClosed)
            let b = try await pool.lease()
            #expect(b.connection !== a.connection)
            #expect(factory.count == 2)
            pool.release(b, reusable: true)
        }
    }

    @Test func replacesADeadIdleConnection() async throws {
        let factory = FakeFactory()
        try await withPool(factory: factory) { pool in
            let a = try await pool.lease()
            pool.release(a, reusable: true)
            a.connection.die()  // server restarted while the connection sat in the pool
            let b = try await pool.lease()
            #expect(b.connection !== a.connection)
            #expect(!b.reused)
            #expect(a.connection.isClosed)
            pool.release(b, reusable: true)
        }
    }

    @Test func idleExpiryUsesTheInjectedClock() async throws {
        let clock = ManualClock()
        let factory = FakeFactory()
        try await withPool(idle: .seconds(30), clock: clock, factory: factory) { pool in
            let a = try await pool.lease()
            pool.release(a, reusable: true)
            clock.advance(by: .seconds(31))
            let b = try await pool.lease()
            #expect(b.connection !== a.connection)
            #expect(a.connection.isClosed)
            pool.release(b, reusable: true)
        }
    }

    @Test func idleConnectionClosesOnTimeWithNoOtherPoolEvent() async throws {
        let clock = ManualClock()
        let factory = FakeFactory()
        try await withPool(max: 2, idle: .seconds(30), clock: clock, factory: factory) { pool in
            let a = try await pool.lease()
            let b = try await pool.lease()
            pool.release(a, reusable: true)
            clock.advance(by: .seconds(10))
            pool.release(b, reusable: true)
            // Exactly 30 s idle: still open.
            clock.advance(by: .seconds(20))
            try await Task.sleep(for: .milliseconds(50))
            #expect(!a.connection.isClosed && pool.counts.idle == 2)
            // Past 30 s: the timer closes `a` by itself, then `b` 10 s later.
            clock.advance(by: .milliseconds(1))
            #expect(await eventually { a.connection.isClosed })
            #expect(!b.connection.isClosed && pool.counts.idle == 1)
            clock.advance(by: .seconds(10))
            #expect(await eventually { b.connection.isClosed })
            #expect(pool.counts.idle == 0)
        }
    }

    @Test func cancellingRunShutsThePoolDown() async throws {
        let factory = FakeFactory()
        let pool = Pool(configuration: .init(maxConnections: 1, maxIdleTime: .seconds(60)), clock: ManualClock()) {
            try await factory.make()
        }
        let runner = Task { await pool.run() }
        let a = try await pool.lease()
        pool.release(a, reusable: true)
        runner.cancel()
        await runner.value
        #expect(a.connection.isClosed)
        await #expect(throws: PoolShutdownError.self) { _ = try await pool.lease() }
    }

    @Test func aLeaseWaitsForRunToConnect() async throws {
        let factory = FakeFactory()
        let pool = Pool(configuration: .init(maxConnections: 1, maxIdleTime: .seconds(60)), clock: ManualClock()) {
            try await factory.make()
        }
        let waiter = Task { try await pool.lease() }
        #expect(await eventually { pool.counts.connecting == 1 })
        try await Task.sleep(for: .milliseconds(20))
        #expect(factory.count == 0, "no connect happens outside run()")
        let runner = Task { await pool.run() }
        let lease = try await waiter.value
        #expect(factory.count == 1)
        pool.release(lease, reusable: true)
        pool.shutdown()
        await runner.value
    }

    @Test func waitersGetConnectionsInOrderAtMax() async throws {
        let factory = FakeFactory()
        try await withPool(max: 1, factory: factory) { pool in
            let first = try await pool.lease()
            let order = OrderLog()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<3 {
                    group.addTask {
                        let lease = try await pool.lease()
                        order.append(i)
                        pool.release(lease, reusable: true)
                    }
                    // Let each task enqueue before the next one (FIFO is what we check).
                    #expect(await eventually { pool.counts.waiting >= i + 1 })
                }
                #expect(pool.counts.waiting == 3)
                pool.release(first, reusable: true)
                try await group.waitForAll()
            }
            #expect(order.values == [0, 1, 2])
            #expect(factory.count == 1)
        }
    }

    @Test func connectErrorGoesToTheWaiter() async throws {
        let factory = FakeFactory()
        factory.failNext.store(1, ordering: .relaxed)
        try await withPool(factory: factory) { pool in
            await #expect(throws: FakeFactory.Refused.self) { _ = try await pool.lease() }
            let ok = try await pool.lease()
            pool.release(ok, reusable: true)
        }
    }

    @Test func cancellingAWaiterThrowsCancellationError() async throws {
        let factory = FakeFactory()
        try await withPool(max: 1, factory: factory) { pool in
            let held = try await pool.lease()
            let task = Task { try await pool.lease() }
            #expect(await eventually { pool.counts.waiting >= 1 })
            task.cancel()
            await #expect(throws: CancellationError.self) { _ = try await task.value }
            #expect(pool.counts.waiting == 0)
            pool.release(held, reusable: true)
        }
    }

    @Test func shutdownFailsWaitersAndClosesIdle() async throws {
        let factory = FakeFactory()
        try await withPool(max: 1, factory: factory) { pool in
            let held = try await pool.lease()
            let task = Task { try await pool.lease() }
            #expect(await eventually { pool.counts.waiting >= 1 })
            pool.shutdown()
            await #expect(throws: PoolShutdownError.self) { _ = try await task.value }
            pool.release(held, reusable: true)
            #expect(held.connection.isClosed)
        }
    }
}

final class OrderLog: Sendable {
    private let log = Mutex<[Int]>([])
    func append(_ v: Int) { log.withLock { $0.append(v) } }
    var values: [Int] { log.withLock { $0 } }
}
