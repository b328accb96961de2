// The cluster as the tracker sees it: groups, their storage nodes, node status and counters,
// and which node is the source (origin) of each file. Shared by the tracker, the storages and the
// replicators of one process. The origin index is rebuilt from the binlogs at start, so nothing
// important lives only in memory.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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
    static let active: UInt8 = 7
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
    }

    let id: StorageNodeID
    let disk: DiskStore
    let runtime = NIOLockedValueBox(Runtime())

    init(id: StorageNodeID, disk: DiskStore) {
        self.id = id
        self.disk = disk
    }

    var isActive: Bool { runtime.withLockedValue { $0.status == StorageStatusCode.active } }
    var port: Int { runtime.withLockedValue { $0.port } }
    var isRunning: Bool { runtime.withLockedValue { $0.running } }

    func count(_ counter: StatCounter, _ delta: Int64 = 1) {
        runtime.withLockedValue { $0.counters[counter.rawValue] += delta }
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

    /// Subdirectories for the next upload: rotate every 100 files like the real default.
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
    init(name: String, nodes: [StorageNode]) {
        self.name = name
        self.nodes = nodes
    }
}

/// Everything shared by the listeners of one process.
final class ClusterState: Sendable {
    let configuration: DevServerConfiguration
    let profile: CompatProfile
    let groups: [GroupState]
    let startTime: Int64
    private let roundRobin = NIOLockedValueBox([String: Int]())
    /// group → remote filename → index of the node the file was created on.
    private let origins = NIOLockedValueBox([String: [String: Int]]())
    let trackerPort = NIOLockedValueBox(0)

    init(configuration: DevServerConfiguration, now: Int64) {
        self.configuration = configuration
        self.profile = configuration.compat.profile
        self.startTime = now
        var groups: [GroupState] = []
        for g in 1...configuration.groups {
            let name = "group\(g)"
            let nodes = (1...configuration.storagesPerGroup).map { i in
                StorageNode(
                    id: StorageNodeID(group: name, index: i),
                    disk: DiskStore(root: "\(configuration.dataDirectory)/\(name)/storage\(i)"))
            }
            groups.append(GroupState(name: name, nodes: nodes))
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

    func origin(group: String, filename: String) -> Int? {
        origins.withLockedValue { $0[group]?[filename] }
    }

    func recordCreated(group: String, filename: String, on index: Int) {
        origins.withLockedValue { d in
            if d[group, default: [:]][filename] == nil { d[group, default: [:]][filename] = index }
        }
    }

    func recordDeleted(group: String, filename: String) {
        origins.withLockedValue { _ = $0[group]?.removeValue(forKey: filename) }
    }

    func recordRenamed(group: String, from: String, to: String) {
        origins.withLockedValue { d in
            if let i = d[group]?.removeValue(forKey: from) { d[group, default: [:]][to] = i }
        }
    }
}
