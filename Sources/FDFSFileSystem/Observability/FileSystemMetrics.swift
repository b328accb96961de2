import CoreMetrics
import Logging

/// The filesystem's own counters and gauges (swift-metrics; names as `fdfsfs stats` reads them):
/// bytes read and written through the mount, reads served by read-ahead (no new download), the
/// bytes staged locally and not yet on a storage, deletes queued for retry. Made once per
/// filesystem, after the process bootstrapped its metrics factory.
public final class FileSystemMetrics: Sendable {
    let bytesRead = Counter(label: "fdfsfs_read_bytes_total")
    let bytesWritten = Counter(label: "fdfsfs_written_bytes_total")
    let readAheadHits = Counter(label: "fdfsfs_readahead_hits_total")
    let readAheadMisses = Counter(label: "fdfsfs_readahead_misses_total")
    let stagedBytes = Meter(label: "fdfsfs_staged_bytes")
    let pendingDeletes = Meter(label: "fdfsfs_pending_deletes")

    public init() {}
}

extension Logger {
    /// A logger that drops everything (the default where the caller gives none).
    public static var silent: Logger { Logger(label: "fdfsfs", factory: { _ in SwiftLogNoOpLogHandler() }) }
}
