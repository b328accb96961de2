// Stalled reads (issue 12): one timer per client instead of a watchdog task per read. A read
// that another storage could serve registers its `ReadProgress` while its attempt runs; every
// quarter of `readStallTimeout` the client's timer (a repeated task on an event loop) starts a
// check on the cooperative pool, which gives each watched read's progress to `StallWatch` and
// aborts the attempt of a read that received nothing for the limit: its connection is closed,
// the attempt fails, and the read moves to the next storage. The check runs where the readers
// run, and a check that comes late (the pool was starved: the readers could not count their
// bytes either) only restarts the clocks, so a busy machine is not mistaken for a stalled
// storage. A read costs two short locked steps, not two child tasks and a sleeping timer
// (about 30 us and several thread hops per read before).

import NIOCore
import Synchronization

/// One watched read: the pure stall decision (ticks in, "stalled" out).
struct StallWatch: Sendable, Equatable {
    let limit: Duration
    private var seen: Int64 = 0
    private var since: ContinuousClock.Instant

    init(limit: Duration, now: ContinuousClock.Instant) {
        self.limit = limit
        since = now
    }

    /// A tick with what the read has done so far: true when it sent its request and nothing
    /// arrived for `limit`. Time spent before the request went out (waiting for a pooled
    /// connection) is not the storage's fault.
    mutating func ticked(now: ContinuousClock.Instant, sent: Bool, bytes: Int64) -> Bool {
        if !sent || bytes != seen {
            seen = bytes
            since = now
            return false
        }
        return since.duration(to: now) >= limit
    }

    /// The check came late: nothing can be concluded from the time that passed.
    mutating func restart(now: ContinuousClock.Instant, bytes: Int64) {
        seen = bytes
        since = now
    }
}

/// The client's watched reads and its timer.
final class StallMonitor: Sendable {
    private struct State {
        var next = 0
        var watched: [Int: (progress: ReadProgress, watch: StallWatch)] = [:]
        var timer: RepeatedTask?
        var closed = false
        var lastCheck: ContinuousClock.Instant?
    }
    private let state = Mutex(State())
    let limit: Duration
    private let period: Duration
    private let loop: any EventLoop
    private let timed: Bool

    /// `timed` false: no timer (tests call `check(now:)` themselves).
    init(limit: Duration, loop: any EventLoop, timed: Bool = true) {
        self.limit = limit
        self.period = max(.milliseconds(1), limit / 4)
        self.loop = loop
        self.timed = timed
    }

    /// Watches `progress` until `unwatch`; the timer starts with the first read watched.
    func watch(_ progress: ReadProgress, now: ContinuousClock.Instant = .now) -> Int {
        state.withLock { s in
            s.next += 1
            s.watched[s.next] = (progress, StallWatch(limit: limit, now: now))
            if timed && s.timer == nil && !s.closed {
                let every = TimeAmount(period)
                s.timer = loop.scheduleRepeatedTask(initialDelay: every, delay: every) { [weak self] _ in
                    guard let self else { return }
                    Task { self.check() }
                }
            }
            return s.next
        }
    }

    func unwatch(_ token: Int) {
        _ = state.withLock { $0.watched.removeValue(forKey: token) }
    }

    /// Checks every watched read; aborts (outside the lock) the ones that stalled. A check more
    /// than two periods after the previous one only restarts the clocks.
    func check(now: ContinuousClock.Instant = .now) {
        let stalled = state.withLock { s -> [ReadProgress] in
            let late = s.lastCheck.map { $0.duration(to: now) > period * 2 } ?? false
            s.lastCheck = now
            var out: [ReadProgress] = []
            for (token, var w) in s.watched {
                if late {
                    w.watch.restart(now: now, bytes: w.progress.bytes)
                    s.watched[token] = w
                } else if w.watch.ticked(now: now, sent: w.progress.hasSent, bytes: w.progress.bytes) {
                    out.append(w.progress)
                    s.watched[token] = nil
                } else {
                    s.watched[token] = w
                }
            }
            return out
        }
        for p in stalled { p.abort() }
    }

    /// At the client's shutdown: no more ticks.
    func close() {
        let timer = state.withLock { s -> RepeatedTask? in
            s.closed = true
            defer { s.timer = nil }
            return s.timer
        }
        timer?.cancel()
    }
}
