/// Sequential read detection and the read-ahead window (pure; no I/O).
///
/// Modelled on mountpoint-s3's prefetcher: the first read fetches a small window, each read that
/// continues the stream doubles it up to `maxWindow`, a read outside the prefetched span resets
/// it. Requests are cut into chunks of at most `chunkSize` so several run concurrently while the
/// reader consumes earlier ones. The caller keeps at most `maxWindow + chunkSize` bytes per file
/// and asks a global `MemoryBudget` before issuing each chunk.
public struct ReadAheadConfig: Sendable, Hashable {
    public var initialWindow: Int64 = 128 << 10
    public var maxWindow: Int64 = 8 << 20
    public var chunkSize: Int64 = 1 << 20
    /// A read this far behind the expected offset still counts as sequential (kernel reordering).
    public var backwardTolerance: Int64 = 1 << 20
    public init() {}
    public init(initialWindow: Int64, maxWindow: Int64, chunkSize: Int64, backwardTolerance: Int64 = 1 << 20) {
        self.initialWindow = initialWindow; self.maxWindow = maxWindow; self.chunkSize = chunkSize
        self.backwardTolerance = backwardTolerance
    }
    /// Upper bound of bytes buffered for one file: the window ahead, one chunk of slack, the
    /// backward-seek margin and the read being served.
    public func perFileLimit(readSize: Int64) -> Int64 { maxWindow + chunkSize + backwardTolerance + readSize }
}

public struct ReadAheadPlanner: Sendable, Hashable {
    public let config: ReadAheadConfig
    public let fileSize: Int64
    /// Where the next sequential read is expected.
    public private(set) var nextOffset: Int64 = 0
    public private(set) var window: Int64
    /// The prefetched span: [spanStart, issuedEnd) has been requested.
    public private(set) var spanStart: Int64 = 0
    public private(set) var issuedEnd: Int64 = 0

    public init(config: ReadAheadConfig, fileSize: Int64) {
        self.config = config
        self.fileSize = fileSize
        window = config.initialWindow
    }

    public struct Plan: Sendable, Hashable {
        /// Drop buffered chunks: the reader jumped.
        public var reset: Bool
        /// Ranges to request now, in order (the first one covers the read if needed).
        public var fetch: [Range<Int64>]
        /// Buffered data before this offset can be dropped.
        public var keepFrom: Int64
    }

    /// Plans for a read of `length` bytes at `offset` (already clamped to the file size).
    public mutating func read(offset: Int64, length: Int64) -> Plan {
        let end = min(fileSize, offset + length)
        let sequential = offset >= spanStart && offset <= issuedEnd
            && offset >= nextOffset - config.backwardTolerance && issuedEnd > 0
        var reset = false
        if !sequential {
            reset = true
            window = config.initialWindow
            spanStart = offset
            issuedEnd = offset
        } else if offset >= nextOffset {
            window = min(window * 2, config.maxWindow)
        }
        nextOffset = max(nextOffset, end)
        if reset { nextOffset = end }
        var fetch: [Range<Int64>] = []
        let target = min(fileSize, end + window)
        // Top up when the read is not covered or less than half a window remains ahead.
        if issuedEnd < end || issuedEnd - end < window / 2 {
            var from = issuedEnd
            let chunk = max(config.initialWindow, min(config.chunkSize, window))
            while from < target {
                let to = min(target, from + chunk)
                fetch.append(from..<to)
                from = to
            }
            issuedEnd = max(issuedEnd, target)
        }
        let keepFrom = max(spanStart, offset - config.backwardTolerance)
        spanStart = keepFrom
        return Plan(reset: reset, fetch: fetch, keepFrom: keepFrom)
    }
}
