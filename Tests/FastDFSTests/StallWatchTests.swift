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

    @Test func theMonitorAbortsOnlyTheStalledRead() async throws {
        // A limit far above the 20 ms between the live read's bytes: the whole suite shares 2 cores.
        let monitor = StallMonitor(limit: .seconds(2), loop: MultiThreadedEventLoopGroup.singleton.next())
        defer { monitor.close() }
        let stalled = ReadProgress(), live = ReadProgress(), waiting = ReadProgress()
        let a = monitor.watch(stalled), b = monitor.watch(live), c = monitor.watch(waiting)
        stalled.began()
        live.began()
        let clock = ContinuousClock(), until = clock.now + .seconds(30)
        while !stalled.wasAborted && clock.now < until {
            live.add(1)
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(stalled.wasAborted)
        #expect(!live.wasAborted, "bytes kept arriving")
        #expect(!waiting.wasAborted, "its request never went out")
        monitor.unwatch(a); monitor.unwatch(b); monitor.unwatch(c)
    }
}
