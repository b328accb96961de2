// FastDFSDevServer: a FastDFS-compatible tracker and storage servers in one process, for tests and
// local trials. It follows the real servers' wire behaviour byte for byte (layouts, statuses,
// edge cases, connection closing) for the emulated release, and their behaviour where the copies
// of a group differ: the devserver is never kinder than a real cluster. Where a real tracker or
// storage hands out a lagging replica, a stale answer or an error, so does the devserver. It is
// not a FastDFS replacement: one process, no real clustering (the "cluster" is a table in memory
// plus binlogs on disk), no HTTP.
//
// Design:
//   * Identity (StorageIdentity.swift): with the default listen host 127.0.0.1 the tracker stays
//     there and every storage gets its own loopback address (127.0.0.2, ...), so the source IP in
//     a file id names one storage, as on a real cluster; `--storage-ids` gives numeric ids instead.
//   * Pure-ish request logic: `TrackerHandler` and `StorageHandler` (+ `StorageTransfers`) take
//     request bytes and return replies; they touch only the disk (`DiskStore`, `TrunkFiles`) and
//     shared state (`ClusterState`), block briefly, and run on a NIO thread pool. Unit tests call
//     them directly.
//   * The tracker picks servers like tracker_mem.c (TrackerHandler.swift): the source from the
//     file id, round robin, the sync test on the timestamps the replicators delivered.
//   * I/O edge: `Listener` (one per tracker/storage, NIO ServerBootstrap + NIOAsyncChannel) and
//     `Connections` (one async loop per connection, streaming content with backpressure).
//   * Replication (Binlog.swift, Replication.swift, SyncApply.swift): each storage logs what it
//     does with offsets like the real binlog; `Replicator`s send each record to the peers after
//     `--replication-lag`, reading the bytes from the source's current file, and the peers apply
//     them only where their copy agrees, exactly where the real storage does.
//   * Storage status: a stopped storage is OFFLINE (or still ACTIVE after a crash the tracker has
//     not noticed); a restarted one is ACTIVE at once but syncs only after `--sync-resume-delay`.
//   * Trunk mode (`--trunk`): small uploads packed into trunk files with the real slot header.
//   * `FaultInjection` is consulted at fixed points of the connection loop; `ControlCommands`
//     and `ControlSocket` let scripts stop storages or inject faults while the server runs.
//   * `CompatProfile` holds every version difference (5.12, 6.11, 6.16.1).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FastDFSProtocol
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SystemPackage

/// A running (or stopped) dev server. Create, `start()`, use the addresses, `stop()`.
/// One instance runs once; to restart the whole server, create a new one on the same data
/// directory (all state is on disk).
public final class DevServer: Sendable {
    public let configuration: DevServerConfiguration
    /// The live fault table (read it; change it with `inject` / `removeFault`).
    public let faults: FaultInjector

    let cluster: ClusterState
    private let pool: NIOThreadPool
    let logs: [StorageNodeID: ReplicationLog]
    private struct State {
        var tracker: Listener?
        var storages: [StorageNodeID: Listener] = [:]
        var replication: Task<Void, Never>?
        var replicators: [Replicator] = []
        var running = false
        var lockFD: Int32 = -1
        var control: ControlSocket?
    }
    private let state = NIOLockedValueBox(State())

    public init(configuration: DevServerConfiguration) throws(DevServerError) {
        try configuration.validate()
        self.configuration = configuration
        self.faults = FaultInjector(configuration.faults)
        self.cluster = ClusterState(configuration: configuration, now: WallClock.seconds())
        self.pool = NIOThreadPool(numberOfThreads: 4)
        var logs: [StorageNodeID: ReplicationLog] = [:]
        for node in cluster.allNodes { logs[node.id] = ReplicationLog(directory: node.disk.syncDirectory) }
        self.logs = logs
    }

    /// Creates the data layout, binds every listener and starts replication.
    public func start() async throws {
        let lockFD = try DataDirectoryLock.acquire(configuration.dataDirectory)
        pool.start()
        let io = BlockingIO(pool: pool)
        let nodes = cluster.allNodes
        let logs = self.logs
        let cluster = self.cluster
        do {
            try await io.run { () throws -> Void in
                for node in nodes {
                    do {
                        try node.disk.prepare()
                        try LegacyBinlog.migrate(disk: node.disk, log: logs[node.id]!)
                    } catch let e as DiskError {
                        throw DevServerError.io(e.description)
                    }
                    logs[node.id]!.load()
                }
                for group in cluster.groups { group.trunk?.load() }
            }
        } catch {
            try? await pool.shutdownGracefully()
            DataDirectoryLock.release(lockFD)
            throw error
        }
        let elg = MultiThreadedEventLoopGroup.singleton
        let host = configuration.listenHost
        let tracker = Listener(host: host, port: configuration.trackerPort, group: elg) { [cluster, faults] conn in
            // The tracker's receive buffer (max_buff_size) is 128 KiB by default.
            let ctx = ConnectionContext(role: .tracker, faults: faults, io: io, maxRequestBody: 128 * 1024)
            await ctx.serveTracker(conn, handler: TrackerHandler(cluster: cluster))
        }
        var storages: [StorageNodeID: Listener] = [:]
        for node in nodes {
            let handler = StorageHandler(node: node, cluster: cluster, log: logs[node.id]!)
            let maxBody = configuration.maxRequestBody
            storages[node.id] = Listener(host: node.ip, port: node.identity.requestedPort, group: elg) { [faults] conn in
                let ctx = ConnectionContext(role: .storage(node.id), faults: faults, io: io, maxRequestBody: maxBody)
                await ctx.serveStorage(conn, handler: handler)
            }
        }
        let now = WallClock.seconds()
        do {
            for node in nodes {
                let listener = storages[node.id]!
                if !faults.refuses(.storage(node.id)) { try await listener.start() }
                node.runtime.withLockedValue {
                    $0.port = listener.port
                    $0.status = StorageStatusCode.active
                    $0.running = true
                    $0.joinTime = cluster.startTime
                    $0.upTime = now
                }
            }
            if !faults.refuses(.tracker) { try await tracker.start() }
        } catch {
            for l in storages.values { await l.stop(closeConnections: true) }
            await tracker.stop(closeConnections: true)
            try? await pool.shutdownGracefully()
            DataDirectoryLock.release(lockFD)
            throw DevServerError.io("cannot listen: \(error)")
        }
        cluster.trackerPort.withLockedValue { $0 = tracker.port }

        var replicators: [Replicator] = []
        for group in cluster.groups {
            for source in group.nodes {
                for peer in group.nodes where peer !== source {
                    replicators.append(
                        Replicator(
                            source: source, peer: peer, log: logs[source.id]!, peerLog: logs[peer.id]!,
                            cluster: cluster))
                }
            }
        }
        let replicatorList = replicators
        // Marks first, so the sync timestamps the tracker uses are there before any query.
        _ = try? await io.run { for r in replicatorList { _ = r.loadMark() } }
        let replication = Task {
            await withDiscardingTaskGroup { group in
                for r in replicatorList { group.addTask { await r.run(io: io) } }
            }
        }
        state.withLockedValue {
            $0.tracker = tracker
            $0.storages = storages
            $0.replicators = replicators
            $0.replication = replication
            $0.running = true
            $0.lockFD = lockFD
        }
    }

    /// Closes every listener and connection, stops replication, and releases the thread pool.
    public func stop() async {
        let s = state.withLockedValue { s -> State in
            let copy = s
            s = State()
            return copy
        }
        guard s.running else { return }
        await s.control?.stop()
        s.replication?.cancel()
        await s.tracker?.stop(closeConnections: true)
        for l in s.storages.values { await l.stop(closeConnections: true) }
        await s.replication?.value
        for node in cluster.allNodes {
            node.runtime.withLockedValue {
                $0.running = false
                $0.status = StorageStatusCode.offline
            }
        }
        try? await pool.shutdownGracefully()
        DataDirectoryLock.release(s.lockFD)
    }

    // MARK: addresses

    public var trackerAddress: StorageAddress {
        StorageAddress(host: configuration.listenHost, port: cluster.trackerPort.withLockedValue { $0 })
    }

    /// Every storage node, in group then index order.
    public var storageIDs: [StorageNodeID] { cluster.allNodes.map(\.id) }

    /// The address a storage listens on and the tracker hands out.
    public func storageAddress(_ id: StorageNodeID) -> StorageAddress? { cluster.node(id)?.address }

    /// The numeric storage id of a storage in `--storage-ids` mode ("100001"), else nil.
    public func serverID(_ id: StorageNodeID) -> String? { cluster.node(id)?.serverID }

    /// The data directory of one storage (`<data>/<group>/storage<n>`); files are below `data/`.
    public func storageDirectory(_ id: StorageNodeID) -> String? { cluster.node(id)?.disk.root }

    /// The lines the CLI prints: `tracker IP:PORT`, then `storage GROUP IP:PORT` per storage, then
    /// in ID mode `storage-id ID GROUP IP:PORT` per storage.
    public var addressLines: [String] {
        ["tracker \(trackerAddress)"]
            + cluster.allNodes.map { "storage \($0.id.group) \($0.address)" }
            + cluster.allNodes.compactMap { node in node.serverID.map { "storage-id \($0) \(node.id.group) \(node.address)" } }
    }

    /// storage_ids.conf for clients (client.conf `use_storage_id = true`, `storage_ids_filename`):
    /// `<id> <group> <ip>[:port]` per storage, the port only when the storages share an address.
    /// Empty without `--storage-ids`.
    public var storageIDsFile: String {
        TrackerHandler(cluster: cluster).storageIDLines().map { $0 + "\n" }.joined()
    }

    // MARK: storage control

    /// Stops one storage: closes its listener and connections, pauses its replication. With
    /// `markOffline` (default) the tracker marks it OFFLINE (it noticed the dropped connection)
    /// and stops handing it out; without, the tracker still lists it as ACTIVE (a crash the
    /// tracker has not noticed yet).
    public func stopStorage(_ id: StorageNodeID, markOffline: Bool = true) async throws {
        guard let node = cluster.node(id), let listener = state.withLockedValue({ $0.storages[id] }) else {
            throw DevServerError.notRunning("no storage \(id)")
        }
        node.runtime.withLockedValue {
            $0.running = false
            if markOffline { $0.status = StorageStatusCode.offline }
        }
        await listener.stop(closeConnections: true)
    }

    /// Starts a stopped storage again on the same address and port. The tracker lists it as
    /// ACTIVE at once; replication towards it and from it resumes after `syncResumeDelay`
    /// (a real storage syncs again at its next heartbeat).
    public func startStorage(_ id: StorageNodeID) async throws {
        guard let node = cluster.node(id), let listener = state.withLockedValue({ $0.storages[id] }) else {
            throw DevServerError.notRunning("no storage \(id)")
        }
        if !faults.refuses(.storage(id)) { try await listener.start() }
        let resume = WallClock.milliseconds() + Int64(configuration.syncResumeDelay * 1000)
        node.runtime.withLockedValue {
            $0.running = true
            $0.status = StorageStatusCode.active
            $0.upTime = WallClock.seconds()
            $0.syncResumesAt = resume
        }
    }

    public func restartStorage(_ id: StorageNodeID) async throws {
        try await stopStorage(id)
        try await startStorage(id)
    }

    /// Stops the tracker: closes its listener and every tracker connection (storages keep running).
    public func stopTracker() async throws {
        guard let tracker = state.withLockedValue({ $0.tracker }) else { throw DevServerError.notRunning("tracker") }
        await tracker.stop(closeConnections: true)
    }

    /// Starts a stopped tracker again on the same port.
    public func startTracker() async throws {
        guard let tracker = state.withLockedValue({ $0.tracker }) else { throw DevServerError.notRunning("tracker") }
        if !faults.refuses(.tracker) { try await tracker.start() }
    }

    /// The tracker's status code of a storage (7 ACTIVE, 5 OFFLINE, ...) and whether it serves.
    public func storageStatus(_ id: StorageNodeID) -> (status: UInt8, running: Bool)? {
        cluster.node(id).map { n in n.runtime.withLockedValue { ($0.status, $0.running) } }
    }

    // MARK: faults

    /// Adds a fault; `refuse` faults close the matching listeners before this returns.
    @discardableResult
    public func inject(_ fault: Fault) async -> FaultHandle {
        let handle = faults.add(fault)
        await reconcileListeners()
        return handle
    }

    /// Removes a fault; listeners closed by a `refuse` fault listen again before this returns.
    public func removeFault(_ handle: FaultHandle) async {
        faults.remove(handle)
        await reconcileListeners()
    }

    public func removeAllFaults() async {
        faults.removeAll()
        await reconcileListeners()
    }

    private func reconcileListeners() async {
        let (tracker, storages, running) = state.withLockedValue { ($0.tracker, $0.storages, $0.running) }
        guard running else { return }
        var all: [(ServerRole, Listener, Bool)] = []
        if let tracker { all.append((.tracker, tracker, true)) }
        for (id, l) in storages { all.append((.storage(id), l, cluster.node(id)?.isRunning ?? false)) }
        for (role, listener, wanted) in all {
            let refuse = faults.refuses(role)
            if refuse && listener.isListening {
                await listener.stop(closeConnections: false)
            } else if !refuse && wanted && !listener.isListening {
                try? await listener.start()
            }
        }
    }

    // MARK: replication

    /// True when every storage has applied every operation of its peers.
    public var replicationIsIdle: Bool {
        state.withLockedValue { $0.replicators }.allSatisfy(\.isCaughtUp)
    }

    /// Binlog bytes of `source` that `peer` has not applied yet (nil for an unknown pair).
    public func pendingReplicationBytes(from source: StorageNodeID, to peer: StorageNodeID) -> Int64? {
        state.withLockedValue { $0.replicators }.first { $0.source.id == source && $0.peer.id == peer }?.pendingBytes
    }

    /// Waits (polling every 20 ms) until replication is idle.
    public func waitForReplication() async throws {
        while !replicationIsIdle { try await Task.sleep(for: .milliseconds(20)) }
    }

    /// Waits until replication is idle; false when `timeout` seconds passed first.
    public func waitForReplication(timeout: Double) async throws -> Bool {
        let deadline = WallClock.milliseconds() + Int64(timeout * 1000)
        while !replicationIsIdle {
            if WallClock.milliseconds() >= deadline { return false }
            try await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    // MARK: control socket

    /// Listens on a unix socket at `path` for one-line control commands (ControlCommands.swift).
    public func startControlSocket(path: String) async throws {
        let socket = ControlSocket(path: path, server: self)
        try await socket.start()
        state.withLockedValue { $0.control = socket }
    }
}

/// An exclusive flock on `<data>/devserver.lock`, so two servers never share a data directory.
enum DataDirectoryLock {
    static func acquire(_ directory: String) throws -> Int32 {
        do { try DiskStore.makeDirectories(directory) } catch { throw DevServerError.io(error.description) }
        let path = directory + "/devserver.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DevServerError.io("cannot open \(path): \(Errno(rawValue: errno).description)") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw DevServerError.io("\(directory) is in use by another fdfs-devserver (lock \(path)); stop it or use another --data")
        }
        return fd
    }

    static func release(_ fd: Int32) {
        if fd >= 0 { close(fd) }
    }
}
