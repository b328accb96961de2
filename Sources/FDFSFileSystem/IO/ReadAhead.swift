/// Sequential read detection and the read-ahead window (pure; no I/O).
///
/// Modelled on mountpoint-s3's prefetcher: the first read fetches a small window, each read that
/// advances the stream doubles it up to `maxWindow`, a read far from the stream resets it.
///
/// The kernel does not read strictly in order: with FUSE_CAP_ASYNC_READ and a large bdi
/// read-ahead it sends several reads of up to 1 MiB at once, and they reach us in any order.
/// So "sequential" means *near the stream*: from `backwardTolerance` behind the furthest byte
/// read so far to `forwardTolerance` (or one window, if larger) past what was already requested.
/// A read there never resets the window; the planner only says which span should be present
/// (the read itself and the read-ahead span), and the `Prefetcher` fills the gaps in what it
/// holds or has in flight, so no byte is requested twice. Chunks are cut on a `chunkSize` grid
/// so that the kernel's 1 MiB reads each map onto one chunk.
public struct ReadAheadConfig: Sendable, Hashable {
    public var initialWindow: Int64 = 128 << 10
    public var maxWindow: Int64 = 8 << 20
    public var chunkSize: Int64 = 1 << 20
    /// A read this far behind the furthest read still counts as sequential (kernel reordering);
    /// unconsumed chunks this far behind are kept.
    public var backwardTolerance: Int64 = 4 << 20
    /// A read this far past the requested span (or one window, if larger) still counts as
    /// sequential: the kernel's concurrent read-ahead requests run ahead of the reader.
    public var forwardTolerance: Int64 = 4 << 20
    public init() {}
    public init(initialWindow: Int64, maxWindow: Int64, chunkSize: Int64, backwardTolerance: Int64 = 4 << 20,
                forwardTolerance: Int64 = 4 << 20) {
        self.initialWindow = initialWindow; self.maxWindow = maxWindow; self.chunkSize = chunkSize
        self.backwardTolerance = backwardTolerance; self.forwardTolerance = forwardTolerance
    }
    /// Upper bound of budgeted bytes buffered for one file: the window ahead, the backward
    /// margin, one chunk of slack (a chunk straddling the margin) and the read being served.
    public func perFileLimit(readSize: Int64) -> Int64 { maxWindow + chunkSize + backwardTolerance + readSize }
}

public struct ReadAheadPlanner: Sendable, Hashable {
    public let config: ReadAheadConfig
    public let fileSize: Int64
    /// The end of the furthest read of the current stream.
    public private(set) var nextOffset: Int64 = 0
    public private(set) var window: Int64
    /// Read-ahead has been requested up to here.
    public private(set) var aheadEnd: Int64 = 0
    /// Whether a stream has started (false before the first read).
    public private(set) var active = false

    public init(config: ReadAheadConfig, fileSize: Int64) {
        self.config = config
        self.fileSize = fileSize
        window = config.initialWindow
    }

    public struct Plan: Sendable, Hashable {
        /// The read jumped away from the stream: drop what is buffered (except what covers `need`).
        public var reset: Bool
        /// The bytes the reader asked for (clamped to the file size): must be present.
        public var need: Range<Int64>
        /// Read-ahead to have present or in flight, if any (issued only within the memory budget).
        public var ahead: Range<Int64>?
        /// Buffered data entirely before this offset can be dropped.
        public var keepFrom: Int64
    }

    /// Whether a read at `offset` continues the current stream.
    public func isSequential(_ offset: Int64) -> Bool {
        guard active else { return false }
        let lo = nextOffset - config.backwardTolerance
        let hi = max(aheadEnd, nextOffset) + max(config.forwardTolerance, window)
        return offset >= lo && offset <= hi
    }

    /// Plans for a read of `length` bytes at `offset`.
    public mutating func read(offset: Int64, length: Int64) -> Plan {
        let end = max(offset, min(fileSize, offset + length))
        let reset = !isSequential(offset)
        if reset {
            active = true
            window = config.initialWindow
            nextOffset = end
            aheadEnd = end
        } else if end > nextOffset {
            window = min(window * 2, config.maxWindow)
            nextOffset = end
        }
        let keepFrom = max(0, nextOffset - config.backwardTolerance)
        let target = min(fileSize, nextOffset + window)
        let from = max(aheadEnd, keepFrom)
        var ahead: Range<Int64>? = nil
        // Top up once at least a chunk (or half a small window) is missing, so downloads are
        // issued in useful sizes rather than one sliver per read.
        let step = max(1, min(config.chunkSize, window / 2))
        if target > from && (reset || target - from >= step) {
            ahead = from..<target
            aheadEnd = target
        }
        aheadEnd = max(aheadEnd, end)
        return Plan(reset: reset, need: offset..<end, ahead: ahead, keepFrom: keepFrom)
    }

    /// The prefetcher could issue read-ahead only up to `offset` (memory budget): ask again later.
    public mutating func aheadStopped(at offset: Int64) {
        aheadEnd = max(nextOffset, min(aheadEnd, offset))
    }
}
