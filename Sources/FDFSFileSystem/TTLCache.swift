import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Monotonic seconds, injectable for tests.
public typealias Clock = @Sendable () -> Double

public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// A small map whose entries expire after `ttl` seconds (metadata, file info, negative lookups).
public final class TTLCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let entries = Mutex<[Key: (Value, Double)]>([:])
    public let ttl: Double
    private let clock: Clock
    private let capacity: Int

    public init(ttl: Double, capacity: Int = 100_000, clock: @escaping Clock = monotonicSeconds) {
        self.ttl = ttl; self.clock = clock; self.capacity = capacity
    }

    public func get(_ k: Key) -> Value? {
        let now = clock()
        return entries.withLock { e in
            guard let (v, exp) = e[k] else { return nil }
            if exp <= now { e[k] = nil; return nil }
            return v
        }
    }

    public func set(_ k: Key, _ v: Value) {
        guard ttl > 0 else { return }
        let exp = clock() + ttl
        entries.withLock { e in
            if e.count >= capacity {
                let now = clock()
                e = e.filter { $0.value.1 > now }
                if e.count >= capacity { e.removeAll() }
            }
            e[k] = (v, exp)
        }
    }

    public func remove(_ k: Key) { _ = entries.withLock { $0.removeValue(forKey: k) } }
    public func keys(where pred: (Key) -> Bool) -> [Key] {
        let now = clock()
        return entries.withLock { $0.filter { $0.value.1 > now && pred($0.key) }.map(\.key) }
    }
}
