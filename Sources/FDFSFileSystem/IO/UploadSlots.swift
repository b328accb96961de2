import Synchronization

/// A global cap on requests that send staged bytes (upload, append, modify, slave upload) at
/// once, across all files. Each such request holds its content in memory (about two copies of
/// one write chunk), so the cap bounds write-back memory in total, as `MemoryBudget` does for
/// read-ahead. Waiters are served in arrival order.
public final class UploadSlots: Sendable {
    public let limit: Int
    private struct State {
        var free: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
        var inUse = 0
        var peak = 0
    }
    private let state: Mutex<State>

    public init(limit: Int) {
        self.limit = max(1, limit)
        state = Mutex(State(free: max(1, limit)))
    }

    public func acquire() async {
        let granted = state.withLock { s -> Bool in
            guard s.free > 0, s.waiters.isEmpty else { return false }
            s.free -= 1
            s.inUse += 1
            s.peak = max(s.peak, s.inUse)
            return true
        }
        if granted { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.free > 0 && s.waiters.isEmpty {
                    s.free -= 1
                    s.inUse += 1
                    s.peak = max(s.peak, s.inUse)
                    return true
                }
                s.waiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    public func release() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty {
                s.free += 1
                s.inUse -= 1
                return nil
            }
            return s.waiters.removeFirst()   // the slot passes straight to the next waiter
        }
        next?.resume()
    }

    /// The most slots ever held at once (tests, logs).
    public var peakInUse: Int { state.withLock { $0.peak } }
}
