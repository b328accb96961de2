import Testing
import NIOPosix
@testable import FastDFS

/// The stall decision of a watched read (pure), and the client's monitor aborting a read that
/// stalled while leaving a live one alone.
@Suite("Stalled reads")
struct StallWatchTests {
    @Test func silenceAfterTheRequestForTheLimitIsAStall() {
        let t0 = ContinuousClock.now
        var w = StallWatch(limit: .seconds(2), now: t0)
        // Waiting for a connection: never a stall, however long.
        do { let stalled = w.ticked(now: t0 + .seconds(5), sent: false, bytes: 0); #expect(!stalled) }
        // Sent at 5 s: the limit counts from the last tick that saw progress or no request.
        do { let stalled = w.ticked(now: t0 + .seconds(6), sent: true, bytes: 0); #expect(!stalled) }
        do { let stalled = w.ticked(now: t0 + .seconds(7), sent: true, bytes: 0); #expect(stalled) }
        // Bytes arriving reset it.
        var v = StallWatch(limit: .seconds(2), now: t0)
        do { let stalled = v.ticked(now: t0 + .seconds(1), sent: true, bytes: 0); #expect(!stalled) }
        do { let stalled = v.ticked(now: t0 + .seconds(2), sent: true, bytes: 10); #expect(!stalled) }
        do { let stalled = v.ticked(now: t0 + .milliseconds(3_900), sent: true, bytes: 10); #expect(!stalled) }
        do { let stalled = v.ticked(now: t0 + .seconds(4), sent: true, bytes: 10); #expect(stalled) }
    }

    @Test func theMonitorAbortsOnlyTheStalledReadAndALateCheckOnlyRestartsTheClocks() {
        let monitor = StallMonitor(limit: .seconds(2), loop: MultiThreadedEventLoopGroup.singleton.next(), timed: false)
        let stalled = ReadProgress(), live = ReadProgress(), waiting = ReadProgress()
        let t0 = ContinuousClock.now
        let tokens = [monitor.watch(stalled, now: t0), monitor.watch(live, now: t0), monitor.watch(waiting, now: t0)]
        stalled.began()
        live.began()
        // Checks every quarter of the limit, as the timer makes them.
        for step in 1...3 {
            live.add(1)
            monitor.check(now: t0 + .milliseconds(500 * step))
        }
        #expect(!stalled.wasAborted)
        live.add(1)
        monitor.check(now: t0 + .seconds(2))
        #expect(stalled.wasAborted, "nothing for the limit")
        #expect(!live.wasAborted, "bytes kept arriving")
        #expect(!waiting.wasAborted, "its request never went out")
        // A check long after the previous one (the pool was starved: the readers could not count
        // their bytes either) concludes nothing; regular checks after it judge again.
        monitor.check(now: t0 + .seconds(30))
        #expect(!live.wasAborted)
        monitor.check(now: t0 + .milliseconds(30_500))
        monitor.check(now: t0 + .milliseconds(31_000))
        monitor.check(now: t0 + .milliseconds(31_500))
        #expect(!live.wasAborted)
        monitor.check(now: t0 + .seconds(32))
        #expect(live.wasAborted, "silent for the limit since the late check")
        for t in tokens { monitor.unwatch(t) }
    }

    @Test func theTimerChecksOnItsOwn() async throws {
        let monitor = StallMonitor(limit: .milliseconds(200), loop: MultiThreadedEventLoopGroup.singleton.next())
        defer { monitor.close() }
        let p = ReadProgress()
        let token = monitor.watch(p)
        p.began()
        let clock = ContinuousClock(), until = clock.now + .seconds(60)
        while !p.wasAborted && clock.now < until { try await Task.sleep(for: .milliseconds(20)) }
        #expect(p.wasAborted)
        monitor.unwatch(token)
    }
}
