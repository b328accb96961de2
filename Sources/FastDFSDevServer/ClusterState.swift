// The cluster as the tracker sees it: groups, their storage nodes, node status and counters, the
// sync timestamps the storages report, and the trunk allocators. Shared by the tracker, the
// storages and the replicators of one process. The source of a file is not remembered anywhere:
// like the real tracker, everyone reads it from the file id (§5.3).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FastDFSProtocol
import NIOConcurrencyHelpers

enum WallClock {
    static func seconds() -> Int64 { Int64(time(nil)) }
    static func milliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// Storage status codes of the tracker (reference §4.2).
enum StorageStatusCode {
    static let offline: UInt8 = 5
    static let online: UInt8 = 6
    static let active: UInt8 = 7

    static func name(_ code: UInt8) -> String {
        switch code {
        case 0: return "INIT"
        case 1: return "WAIT_SYNC"
        case 2: return "SYNCING"
        case 3: return "IP_CHANGED"
        case 4: return "DELETED"
        case 5: return "OFFLINE"
        case 6: return "ONLINE"
        case 7: return "ACTIVE"
        case 9: return "RECOVERY"
        case 99: return "NONE"
        default: return "STATUS_\(code)"
        }
    }
}

/// Identifies one storage server: its group and its 1-based number within the group.
public struct StorageNodeID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var group: String
    public var index: Int
    public init(group: String, index: Int) {
        self.group = group
        self.index = index
    }
    public var description: String { "\(group)/storage\(index)" }
    public static func < (a: Self, b: Self) -> Bool { (a.group, a.index) < (b.group, b.index) }

    /// Parses `group1/storage2`.
    public init?(parsing text: String) {
        guard let slash = text.firstIndex(of: "/") else { return nil }
        let g = text[..<slash]
        let s = text[text.index(after: slash)...]
        guard !g.isEmpty, s.hasPrefix("storage"), let i = Int(s.dropFirst(7)), i >= 1 else { return nil }
        self.init(group: String(g), index: i)
    }
}

/// Which kind of listener a connection belongs to.
enum ServerRole: Sendable, Hashable {
    case tracker
    case storage(StorageNodeID)
}

/// Counter slots of the storage stat block (reference §4.2, 42 int64 values).
enum StatCounter: Int, CaseIterable {
    case totalUpload = 0, successUpload, totalAppend, successAppend, totalModify, successModify
    case totalTruncate, successTruncate, totalSetMeta, successSetMeta, totalDelete, successDelete
    case totalDownload, successDownload, totalGetMeta, successGetMeta
    case totalCreateLink, successCreateLink, totalDeleteLink, successDeleteLink
    case totalUploadBytes, successUploadBytes, totalAppendBytes, successAppendBytes
    case totalModifyBytes, successModifyBytes, totalDownloadBytes, successDownloadBytes
    case totalSyncInBytes, successSyncInBytes, totalSyncOutBytes, successSyncOutBytes
    case totalFileOpen, successFileOpen, totalFileRead, successFileRead, totalFileWrite, successFileWrite
    case lastSourceUpdate, lastSyncUpdate, lastSyncedTimestamp, lastHeartBeat
}

/// Runtime state of one storage node (the disk state lives in its `DiskStore`).
final class StorageNode: Sendable {
    struct Runtime {
        var status: UInt8 = StorageStatusCode.offline
        /// Listening and serving (false after stop(), even if the tracker still lists it).
        var running = false
        var port: Int = 0
        var joinTime: Int64 = 0
        var upTime: Int64 = 0
        var counters = [Int64](repeating: 0, count: 42)
        var connections: Int32 = 0
        var maxConnections: Int32 = 0
        var allocatedConnections: Int32 = 0
        var uploadsSinceRotate = 0
        var subdir = (0, 0)
        /// Wall-clock milliseconds from which this storage syncs again (set on a restart).
        var syncResumesAt: Int64 = 0
    }

    let id: StorageNodeID
    let identity: StorageIdentity
    let disk: DiskStore
    /// Whether several storages of the group share one address (then the tracker's id is `ip:port`).
    let sharedAddress: Bool
    let runtime = NIOLockedValueBox(Runtime())

    init(identity: StorageIdentity, disk: DiskStore, sharedAddress: Bool) {
        self.id = identity.id
        self.identity = identity
        self.disk = disk
        self.sharedAddress = sharedAddress
    }

    var ip: String { identity.ip }
    var serverID: String? { identity.serverID }
    var sourceField: UInt32 { identity.sourceField }
    var isActive: Bool { runtime.withLockedValue { $0.status == StorageStatusCode.active } }
    var port: Int { runtime.withLockedValue { $0.port } }
    var isRunning: Bool { runtime.withLockedValue { $0.running } }
    var address: StorageAddress { StorageAddress(host: ip, port: port) }

    /// The storage id the tracker shows (stat records, LIST_STORAGE filter): the numeric id in ID
    /// mode, else the IP; with a shared address (several storages on one IP) `ip:port`, since the
    /// IP alone would not tell them apart.
    var trackerID: String {
        if let serverID { return serverID }
        return sharedAddress ? "\(ip):\(port)" : ip
    }

    /// Running and past the sync-resume delay of its last restart.
    func canSync(atMilliseconds now: Int64) -> Bool {
        runtime.withLockedValue { $0.running && now >= $0.syncResumesAt }
    }

    func count(_ counter: StatCounter, _ delta: Int64 = 1) {
        runtime.withLockedValue { $0.counters[counter.rawValue] += delta }
    }

    /// A download that sent all its `bytes`.
    func countDownload(bytes: Int64) {
        count(total: .totalDownload, success: .successDownload, ok: true)
        count(.totalDownloadBytes, bytes)
        count(.successDownloadBytes, bytes)
    }

    func count(total: StatCounter, success: StatCounter, ok: Bool) {
        runtime.withLockedValue {
            $0.counters[total.rawValue] += 1
            if ok { $0.counters[success.rawValue] += 1 }
        }
    }

    func setCounter(_ counter: StatCounter, _ value: Int64) {
        runtime.withLockedValue { $0.counters[counter.rawValue] = value }
    }

    func counter(_ counter: StatCounter) -> Int64 { runtime.withLockedValue { $0.counters[counter.rawValue] } }

    /// Subdirectories for the next upload: rotate every 100 files like the real default
    /// (`file_distribute_path_mode = 0`, `file_distribute_rotate_count = 100`).
    func nextSubdirectories(subdirCount: Int) -> (Int, Int) {
        runtime.withLockedValue { r in
            r.uploadsSinceRotate += 1
            if r.uploadsSinceRotate >= 100 {
                r.uploadsSinceRotate = 0
                var (a, b) = r.subdir
                b += 1
                if b >= subdirCount {
                    b = 0
                    a = (a + 1) % subdirCount
                }
                r.subdir = (a, b)
            }
            return r.subdir
        }
    }
}

final class GroupState: Sendable {
    let name: String
    let nodes: [StorageNode]
    /// The group's trunk allocator (the trunk server's free-space table) when trunk files are on.
    let trunk: TrunkAllocator?
    init(name: String, nodes: [StorageNode], trunk: TrunkAllocator?) {
        self.name = name
        self.nodes = nodes
        self.trunk = trunk
    }

    /// The storages in the tracker's order: sorted by storage id with `strcmp`
    /// [tracker/tracker_mem.c `tracker_mem_cmp_by_storage_id`].
    var sortedNodes: [StorageNode] {
        nodes.sorted { Array($0.trackerID.utf8).lexicographicallyPrecedes(Array($1.trackerID.utf8)) }
    }

    /// ACTIVE storages in the tracker's order (`active_servers`; every storage here is rw=both,
    /// so readable and writable servers are the same).
    var activeNodes: [StorageNode] { sortedNodes.filter(\.isActive) }

    /// The trunk server: the first storage (storage1); `if_trunk_server` in its stat record.
    var trunkServer: StorageNode? { trunk == nil ? nil : nodes.first }
}

/// Everything shared by the listeners of one process.
final class ClusterState: Sendable {
    let configuration: DevServerConfiguration
    let profile: CompatProfile
    let groups: [GroupState]
    let startTime: Int64
    private let roundRobin = NIOLockedValueBox([String: Int]())
    /// dest → source → timestamp (s) of the last binlog record of `source` that reached `dest`
    /// (`last_sync_src_timestamp`, reported by `dest` to the tracker).
    private let syncTimestamps = NIOLockedValueBox([StorageNodeID: [StorageNodeID: Int64]]())
    let trackerPort = NIOLockedValueBox(0)

    init(configuration: DevServerConfiguration, now: Int64) {
        self.configuration = configuration
        self.profile = configuration.compat.profile
        self.startTime = now
        let identities = ClusterLayout.identities(configuration)
        var groups: [GroupState] = []
        for g in 1...configuration.groups {
            let name = "group\(g)"
            let nodes = identities.filter { $0.id.group == name }.map { identity in
                StorageNode(
                    identity: identity,
                    disk: DiskStore(
                        root: "\(configuration.dataDirectory)/\(name)/storage\(identity.id.index)",
                        trunkFileSize: configuration.trunk?.trunkFileSize ?? (64 << 20)),
                    sharedAddress: !configuration.storagesHaveOwnAddresses && configuration.storagesPerGroup > 1)
            }
            let trunk = configuration.trunk.map {
                TrunkAllocator(path: "\(configuration.dataDirectory)/\(name)/trunk.dat", parameters: $0)
            }
            groups.append(GroupState(name: name, nodes: nodes, trunk: trunk))
        }
        self.groups = groups
    }

    var allNodes: [StorageNode] { groups.flatMap(\.nodes) }

    func group(named name: String) -> GroupState? { groups.first { $0.name == name } }

    func node(_ id: StorageNodeID) -> StorageNode? {
        group(named: id.group)?.nodes.first { $0.id.index == id.index }
    }

    /// Next value of a named round-robin counter.
    func nextRoundRobin(_ key: String) -> Int {
        roundRobin.withLockedValue { d in
            let v = d[key, default: 0]
            d[key] = v &+ 1
            return v
        }
    }

    /// Current value of a round-robin counter without advancing it.
    func nextRoundRobinPeek(_ key: String) -> Int { roundRobin.withLockedValue { $0[key, default: 0] } }

    // MARK: sources

    /// The storage a file id names as its source (by storage id or by IP), whatever its status;
    /// nil when no storage of the group has that id or address. With a shared address the first
    /// storage in the tracker's order wins, since the IP cannot tell them apart.
    func node(forSource source: FileIDInfo.Source, in group: GroupState) -> StorageNode? {
        switch source {
        case .storageID(let v): return group.sortedNodes.first { $0.serverID == String(v) }
        case .ipv4(let ip): return group.sortedNodes.first { $0.ip == ip }
        }
    }

    /// The IP of a storage id anywhere in the cluster (the storage_ids.conf lookup).
    func ip(ofServerID id: String) -> String? { allNodes.first { $0.serverID == id }?.ip }

    // MARK: sync timestamps

    /// `dest` applied (or deliberately skipped) a record of `source` written at `timestamp`; like
    /// the real storage, it reports to the tracker right away, which recomputes its
    /// last_synced_timestamp (queries recompute it too, standing in for the periodic reports).
    func recordSynced(source: StorageNodeID, dest: StorageNodeID, timestamp: Int64) {
        guard timestamp > 0 else { return }
        syncTimestamps.withLockedValue { $0[dest, default: [:]][source] = timestamp }
        if let node = node(dest) { _ = lastSyncedTimestamp(node) }
    }

    func syncedTimestamp(source: StorageNodeID, dest: StorageNodeID) -> Int64 {
        syncTimestamps.withLockedValue { $0[dest]?[source] ?? 0 }
    }

    /// `last_synced_timestamp` of `dest` as the tracker derives it from the storages' sync reports
    /// (store_server round robin): the smallest timestamp over the ACTIVE sources that reported one
    /// (> 0); with none, the previous value stays [tracker/tracker_service.c
    /// `tracker_deal_storage_sync_report`].
    func lastSyncedTimestamp(_ dest: StorageNode) -> Int64 {
        guard let group = group(named: dest.id.group) else { return 0 }
        let reported = syncTimestamps.withLockedValue { $0[dest.id] ?? [:] }
        var minimum: Int64 = 0
        for source in group.nodes where source !== dest && source.isActive {
            guard let t = reported[source.id], t > 0 else { continue }
            minimum = minimum == 0 ? t : min(minimum, t)
        }
        if minimum > 0 { dest.setCounter(.lastSyncedTimestamp, minimum) }
        return dest.counter(.lastSyncedTimestamp)
    }
}
