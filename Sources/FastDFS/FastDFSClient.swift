// FastDFS — an async/await FastDFS client on SwiftNIO.
//
// Design overview:
// * `FastDFSClient` is the public API (one Sendable object, safe from many tasks). Each
//   operation asks a tracker where to go — with the C client's routing (§10.1 of the protocol
//   reference): 101/104 for uploads, 103 (update) for delete / metadata / appender ops / slave
//   uploads, 102 for download and file info — then runs one request/response exchange on a
//   storage connection.
// * Trackers: `TrackerSelector` (pure) gives the C client's order: sorted + deduplicated list,
//   start index rotating after every call, failover to the next tracker only on connect failure.
// * Connections: one `ConnectionPool` per server address (bounded, FIFO waiters, idle expiry
//   on its own timer, dead connections replaced), driven by the pure
//   `ConnectionPoolStateMachine`; each pool's `run()` (connects, idle timers) is started with
//   the pool and ended by `shutdown()`. A connection
//   that saw any error is closed, never pooled. A pooled connection that turns out dead before
//   any reply byte is replaced and the request retried once when that is safe.
// * `FDFSConnection` wraps a NIOAsyncChannel with the codec's streaming frame decoder, so
//   replies are read chunk by chunk with backpressure; `InactivityTimeoutHandler` enforces
//   network_timeout; Task cancellation closes the connection in use. Its exchange state
//   (idle → request sent → head received → streaming body → idle) is the pure
//   `FDFSConnectionStateMachine`.
// * Files are streamed with NonBlockingFileIO (NIO's thread pool), never read whole and never
//   on the cooperative pool.
// * Version tolerance lives in the codec (lengths → layouts); the client adds what needs state:
//   the IP width learned from query replies (for FETCH_ALL), range clamping for downloads (old
//   servers answer EINVAL for ranges past EOF, new ones for offset == size).
// * Observability (postgres-nio style): the client takes a swift-log `Logger` and logs each
//   request (command, server, duration, outcome) at debug, connects at trace; swift-metrics
//   counters and timers per command (`ClientMetrics`). Both are no-ops unless the process
//   bootstraps a handler / factory.

@_exported import FastDFSProtocol
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// What QUERY_FILE_INFO says about a file.
public struct FileInfo: Sendable, Hashable {
    public var size: Int64
    /// The file's mtime on the storage (not the creation time in the name).
    public var modifyTime: Int64
    public var crc32: UInt32
    /// The source storage's IP (empty when the storage cannot map an id to an IP).
    public var sourceIP: String

    public init(size: Int64, modifyTime: Int64, crc32: UInt32, sourceIP: String) {
        self.size = size
        self.modifyTime = modifyTime
        self.crc32 = crc32
        self.sourceIP = sourceIP
    }
}

public final class FastDFSClient: Sendable {
    typealias Pool = ConnectionPool<FDFSConnection, ContinuousClock>

    public let configuration: FastDFSConfiguration
    /// Where requests are logged (debug: one record per request; trace: connects).
    public let logger: Logger
    let metrics = ClientMetrics()
    let eventLoopGroup: any EventLoopGroup
    let fileIO: NonBlockingFileIO
    let selector: Mutex<TrackerSelector>
    private let pools = Mutex<[PoolKey: Pool]>([:])
    /// The task running each pool's `run()`; `shutdown()` waits for them.
    private let poolRunners = Mutex<[Task<Void, Never>]>([])
    private let sources = Mutex<SourceStorageMap>(SourceStorageMap(capacity: 16384))
    /// IP field width learned from tracker query replies (0 = not yet known).
    let learnedIPWidth = Atomic<Int>(0)
    /// Storages that failed recently (tried last by reads).
    let storageHealth: Mutex<StorageHealth<ContinuousClock.Instant>>
    /// The last QUERY_STORE answer per group ("" without a group) and when it came.
    let storeAssignments = Mutex<[String: (ContinuousClock.Instant, QueryStoreResponse)]>([:])
    /// Each group's storage list (LIST_STORAGE) and when it was read, to find source storages.
    let groupStorageLists = Mutex<[String: (readAt: ContinuousClock.Instant, storages: [ListedStorage])]>([:])
    /// LIST_STORAGE requests in flight, one per group (concurrent readers share it).
    let groupStorageListFetches = Mutex<[String: Task<[ListedStorage]?, Never>]>([:])
    private let isShutdown = Atomic<Bool>(false)
    /// Aborts reads that stall while another storage could serve them (one timer per client).
    let stallMonitor: StallMonitor

    struct PoolKey: Hashable, Sendable {
        var address: StorageAddress
        var isTracker: Bool
    }

    public init(
        configuration: FastDFSConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "fastdfs", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.configuration = configuration
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.fileIO = NonBlockingFileIO(threadPool: .singleton)
        self.selector = Mutex(TrackerSelector(trackers: configuration.trackers))
        self.storageHealth = Mutex(StorageHealth(avoidFor: configuration.failedStorageAvoidTime))
        self.stallMonitor = StallMonitor(limit: configuration.readStallTimeout, loop: eventLoopGroup.next())
    }

    deinit {
        stallMonitor.close()
        pools.withLock { pools in
            for pool in pools.values { pool.shutdown() }
        }
    }

    /// Closes pooled connections and fails waiting requests. Idempotent. Connections in use
    /// are closed when their operation ends.
    public func shutdown() async {
        guard !isShutdown.exchange(true, ordering: .acquiringAndReleasing) else { return }
        stallMonitor.close()
        let all = pools.withLock { pools in
            defer { pools.removeAll() }
            return Array(pools.values)
        }
        for pool in all { pool.shutdown() }
        let runners = poolRunners.withLock { runners in
            defer { runners.removeAll() }
            return runners
        }
        for runner in runners { await runner.value }
    }

    /// The trackers in failover order (sorted, deduplicated).
    public var trackers: [StorageAddress] { selector.withLock { $0.trackers } }

    // MARK: - Read-your-writes

    /// Where the last upload (or appender write) of `fileID` went, while remembered (the most
    /// recent 16384 file ids). Pass it as `storage:` to `download` to read your own writes
    /// before replication reaches other storages.
    public func sourceStorage(of fileID: FileID) -> StorageAddress? {
        sources.withLock { $0[fileID] }
    }

    func rememberSource(_ address: StorageAddress, for fileID: FileID) {
        sources.withLock { $0[fileID] = address }
    }

    func forgetSource(of fileID: FileID) {
        sources.withLock { $0[fileID] = nil }
    }

    // MARK: - File ids

    /// Decodes what a file id says without asking a server (source, create time, size, crc32, kind).
    public static func decode(_ fileID: FileID) throws(FastDFSError) -> FileIDInfo {
        do {
            return try FileIDInfo.decode(filename: fileID.filename)
        } catch {
            throw FastDFSError(code: .invalidArgument, message: error.description, underlying: error, errno: LinuxErrno.EINVAL)
        }
    }

    /// The source address of a file id: its IPv4, or the storage-id table entry in ID mode.
    public func sourceAddress(of fileID: FileID) -> String? {
        guard let info = try? Self.decode(fileID) else { return nil }
        switch info.source {
        case .ipv4(let ip): return ip
        case .storageID(let id): return configuration.storageIDs[id]?.host
        }
    }

    // MARK: - Pools

    func pool(for address: StorageAddress, tracker: Bool) throws(FastDFSError) -> Pool {
        guard !isShutdown.load(ordering: .acquiring) else {
            throw FastDFSError(code: .cancelled, server: address, message: "the client was shut down")
        }
        let key = PoolKey(address: address, isTracker: tracker)
        let configuration = self.configuration
        let group = self.eventLoopGroup
        let metrics = self.metrics, logger = self.logger
        return pools.withLock { pools in
            if let pool = pools[key] { return pool }
            let retries = tracker ? 0 : max(0, configuration.storageConnectRetries)
            let pool = Pool(
                configuration: .init(
                    maxConnections: max(1, configuration.maxConnectionsPerServer),
                    maxIdleTime: configuration.connectionPoolMaxIdleTime,
                    pooling: configuration.useConnectionPool),
                clock: ContinuousClock()
            ) {
                let connection = try await Self.connect(
                    to: address, group: group, configuration: configuration, retries: retries)
                metrics.connections.increment()
                connection.channel.closeFuture.whenComplete { _ in metrics.connections.decrement() }
                logger.trace("connected", metadata: ["server": "\(address)", "tracker": "\(tracker)"])
                return connection
            }
            pools[key] = pool
            let runner = Task { await pool.run() }
            poolRunners.withLock { $0.append(runner) }
            return pool
        }
    }

    /// TCP connect, with the storage retry of §10.2 (trackers fail over instead).
    static func connect(
        to address: StorageAddress, group: any EventLoopGroup, configuration: FastDFSConfiguration, retries: Int
    ) async throws(FastDFSError) -> FDFSConnection {
        var attempt = 0
        while true {
            do {
                return try await FDFSConnection.connect(
                    to: address, group: group, connectTimeout: configuration.connectTimeout,
                    networkTimeout: configuration.networkTimeout)
            } catch {
                attempt += 1
                guard attempt <= retries, ConnectErrorMapper.isRetryable(error), !Task.isCancelled else { throw error }
                do {
                    try await Task.sleep(for: ConnectErrorMapper.backoff(attempt: attempt))
                } catch {
                    throw FastDFSError(code: .cancelled, server: address, message: "connect cancelled")
                }
            }
        }
    }
}

/// Bounded file id → storage map (oldest entries forgotten first).
struct SourceStorageMap: Sendable {
    let capacity: Int
    private var map: [FileID: StorageAddress] = [:]
    private var order: [FileID] = []
    private var head = 0

    init(capacity: Int) { self.capacity = capacity }

    subscript(id: FileID) -> StorageAddress? {
        get { map[id] }
        set {
            if let newValue {
                if map.updateValue(newValue, forKey: id) == nil { order.append(id) }
                while map.count > capacity, head < order.count {
                    let old = order[head]
                    head += 1
                    map[old] = nil
                }
                if head > 4096 && head * 2 > order.count {
                    order.removeFirst(head)
                    head = 0
                }
            } else {
                map[id] = nil
            }
        }
    }
}
