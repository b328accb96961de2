// Stalled reads (issue 12): one timer per client instead of a watchdog task per read. A read
// that another storage could serve registers its `ReadProgress` while its attempt runs; the
// client's repeated tick (on an event loop, every quarter of `readStallTimeout`) gives each
// watched read's progress to `StallWatch`, and aborts the attempt of a read that received
// nothing for the limit: its connection is closed, the attempt fails, and the read moves to the
// next storage. A read costs two short locked steps, not two child tasks and a sleeping timer
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
}

/// The client's watched reads and its timer.
final class StallMonitor: Sendable {
    private struct State {
        var next = 0
        var watched: [Int: (progress: ReadProgress, watch: StallWatch)] = [:]
        var timer: RepeatedTask?
        var closed = false
    }
    private let state = Mutex(State())
    let limit: Duration
    private let loop: any EventLoop

    init(limit: Duration, loop: any EventLoop) {
        self.limit = limit
        self.loop = loop
    }

    /// Watches `progress` until `unwatch`; the timer starts with the first read watched.
    func watch(_ progress: ReadProgress) -> Int {
        let now = ContinuousClock.now
        return state.withLock { s in
            s.next += 1
            s.watched[s.next] = (progress, StallWatch(limit: limit, now: now))
            if s.timer == nil && !s.closed {
                let period = TimeAmount.nanoseconds(max(1_000_000, Int64(limit.components.seconds) * 1_000_000_000 / 4
                    + limit.components.attoseconds / 4_000_000_000))
                s.timer = loop.scheduleRepeatedTask(initialDelay: period, delay: period) { [weak self] _ in self?.tick() }
            }
            return s.next
        }
    }

    func unwatch(_ token: Int) {
        _ = state.withLock { $0.watched.removeValue(forKey: token) }
    }

    /// Checks every watched read; aborts (outside the lock) the ones that stalled.
    func tick() {
        let now = ContinuousClock.now
        let stalled = state.withLock { s -> [ReadProgress] in
            var out: [ReadProgress] = []
            for (token, var w) in s.watched {
                if w.watch.ticked(now: now, sent: w.progress.hasSent, bytes: w.progress.bytes) {
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
