// Which storages failed recently, so that reads stop waiting on a dead or stalled server for
// every request after a failover (issue 9: a 200 MiB `cat` that moved to the replica paid a
// connect back-off per 8 MiB piece). Pure state: instants come from the caller's clock.

import FastDFSProtocol

/// Storages to avoid for a while after a connect failure, a timeout or a stall.
///
/// A storage that failed is *avoided*, not banned: candidates are ordered healthy-first, so it is
/// still used when nothing else can serve a file (an appender file's source, the last replica).
/// One success clears it.
public struct StorageHealth<Instant: InstantProtocol>: Sendable where Instant: Sendable {
    /// How long a failed storage stays at the back of the queue.
    public let avoidFor: Instant.Duration
    private var avoidedUntil: [StorageAddress: Instant] = [:]

    public init(avoidFor: Instant.Duration) {
        self.avoidFor = avoidFor
    }

    /// A request to `address` failed in a way that says the server is unreachable or stuck.
    public mutating func failed(_ address: StorageAddress, at now: Instant) {
        avoidedUntil[address] = now.advanced(by: avoidFor)
    }

    /// A request to `address` succeeded.
    public mutating func succeeded(_ address: StorageAddress) {
        avoidedUntil[address] = nil
    }

    /// True while `address` is avoided.
    public mutating func isAvoided(_ address: StorageAddress, at now: Instant) -> Bool {
        guard let until = avoidedUntil[address] else { return false }
        if until <= now {
            avoidedUntil[address] = nil
            return false
        }
        return true
    }

    /// `candidates` with the avoided ones moved to the end (each part keeps its order;
    /// duplicates removed).
    public mutating func ordered(_ candidates: [StorageAddress], at now: Instant) -> [StorageAddress] {
        var seen = Set<StorageAddress>()
        var healthy: [StorageAddress] = []
        var avoided: [StorageAddress] = []
        for c in candidates where seen.insert(c).inserted {
            if isAvoided(c, at: now) { avoided.append(c) } else { healthy.append(c) }
        }
        return healthy + avoided
    }
}
