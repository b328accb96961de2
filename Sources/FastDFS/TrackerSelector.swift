// Which tracker to ask, in the C client's order (§10.2 of the reference): the configured list
// sorted (host string, then port) and deduplicated; each call starts at `serverIndex`, tries the
// following trackers on *connect* failure (wrapping around), and afterwards `serverIndex` moves
// one past the tracker that answered (or past the start when all failed), so successive calls
// rotate through the trackers. A tracker that answers with an error status is not retried.
// Pure value type; FastDFSClient keeps one behind a lock.

import FastDFSProtocol

struct TrackerSelector: Sendable {
    /// Sorted, deduplicated.
    let trackers: [StorageAddress]
    private(set) var serverIndex: Int = 0

    init(trackers: [StorageAddress]) {
        self.trackers = Self.sortedUnique(trackers)
    }

    static func sortedUnique(_ list: [StorageAddress]) -> [StorageAddress] {
        var seen = Set<StorageAddress>()
        return list.filter { seen.insert($0).inserted }.sorted {
            $0.host != $1.host ? Array($0.host.utf8).lexicographicallyPrecedes($1.host.utf8) : $0.port < $1.port
        }
    }

    /// The order in which one call should try to connect, starting at `serverIndex`.
    func candidates() -> [Int] {
        guard !trackers.isEmpty else { return [] }
        let start = serverIndex % trackers.count
        return (0..<trackers.count).map { (start + $0) % trackers.count }
    }

    /// Records the outcome of one call: `connectedIndex` is the tracker that accepted the
    /// connection, nil when none did. Advances the start index for the next call.
    mutating func callFinished(connectedIndex: Int?) {
        guard !trackers.isEmpty else { return }
        let base = connectedIndex ?? serverIndex
        serverIndex = (base + 1) % trackers.count
    }
}
