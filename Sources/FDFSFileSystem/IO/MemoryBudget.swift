import Synchronization

/// A global cap on read-ahead memory across all open files. Chunks reserve their size before
/// they are requested and release it when dropped; when the budget is exhausted, reads fall back
/// to fetching only what the reader asked for.
public final class MemoryBudget: Sendable {
    public let limit: Int64
    private let used = Mutex<Int64>(0)
    public init(limit: Int64) { self.limit = limit }

    public func reserve(_ n: Int64) -> Bool {
        used.withLock { u in
            guard u + n <= limit else { return false }
            u += n
            return true
        }
    }

    public func release(_ n: Int64) { used.withLock { $0 -= n } }
    public var inUse: Int64 { used.withLock { $0 } }
}
