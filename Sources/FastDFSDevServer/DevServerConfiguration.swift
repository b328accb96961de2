// Options of a dev server instance; the CLI maps its flags 1:1 onto this struct.

/// How a `DevServer` is laid out and which release it imitates.
public struct DevServerConfiguration: Sendable {
    /// Root of the on-disk state: `<dataDirectory>/<group>/storage<n>/data/XX/YY/<name>`.
    public var dataDirectory: String
    /// IPv4 address of the tracker. With 127.0.0.1 (the default) every storage gets its own
    /// loopback address (127.0.0.2, 127.0.0.3, ... in group, then index order), so the source IP in
    /// a file id names one storage, as on a real cluster. With any other address every storage
    /// listens on that same address and file ids cannot tell the storages apart (unless
    /// `useStorageIDs` is on).
    public var listenHost: String
    /// Tracker port; 0 picks a free port.
    public var trackerPort: Int
    /// Storage port. With one address per storage, every storage listens on this port (like a
    /// real cluster where every storage uses 23000); with a shared address the storages use this
    /// port and the following ones. 0 gives every storage a free port.
    public var storagePort: Int
    /// Number of groups (`group1`, `group2`, ...).
    public var groups: Int
    /// Storage servers per group (each with its own port and data directory).
    public var storagesPerGroup: Int
    /// Seconds before an operation on one storage is applied to the other storages of its group.
    public var replicationLag: Double
    /// Seconds after a storage is started again before replication towards it and from it resumes
    /// (the real storage resumes syncing at its next heartbeat, 30 s by default).
    public var syncResumeDelay: Double
    /// tracker.conf `storage_sync_file_max_delay` (seconds): files older than this are assumed
    /// to be on every storage.
    public var syncFileMaxDelay: Int64
    /// tracker.conf `storage_sync_file_max_time` (seconds): how long syncing one file may take.
    public var syncFileMaxTime: Int64
    /// Uploads fail with ENOSPC when the data directory's filesystem would keep less than this
    /// many MiB free; the tracker's query-store answers ENOSPC below it too.
    public var reservedSpaceMB: Int64
    /// Release whose layouts and edge cases the replies follow.
    public var compat: CompatLevel
    /// Faults active from the start.
    public var faults: [Fault]
    /// Largest non-streamed request body (the storage's `buff_size`); bigger packets get EINVAL.
    public var maxRequestBody: Int
    /// Subdirectories per level below `data/` (the real default is 256, giving 00..FF).
    public var subdirCount: Int
    /// tracker.conf `use_storage_id = true` with `id_type_in_filename = id`: storages get numeric
    /// ids 100001, 100002, ... (group, then index order) and new file ids carry the id.
    public var useStorageIDs: Bool
    /// tracker.conf `use_trunk_file = true` with these parameters; nil keeps trunk files off.
    public var trunk: TrunkParameters?

    public init(
        dataDirectory: String,
        listenHost: String = "127.0.0.1",
        trackerPort: Int = 22122,
        storagePort: Int = 23000,
        groups: Int = 1,
        storagesPerGroup: Int = 1,
        replicationLag: Double = 0,
        reservedSpaceMB: Int64 = 16,
        compat: CompatLevel = .v6_16,
        faults: [Fault] = [],
        maxRequestBody: Int = 256 * 1024,
        subdirCount: Int = 256,
        syncResumeDelay: Double = 30,
        syncFileMaxDelay: Int64 = 86400,
        syncFileMaxTime: Int64 = 300,
        useStorageIDs: Bool = false,
        trunk: TrunkParameters? = nil
    ) {
        self.dataDirectory = dataDirectory
        self.listenHost = listenHost
        self.trackerPort = trackerPort
        self.storagePort = storagePort
        self.groups = groups
        self.storagesPerGroup = storagesPerGroup
        self.replicationLag = replicationLag
        self.reservedSpaceMB = reservedSpaceMB
        self.compat = compat
        self.faults = faults
        self.maxRequestBody = maxRequestBody
        self.subdirCount = subdirCount
        self.syncResumeDelay = syncResumeDelay
        self.syncFileMaxDelay = syncFileMaxDelay
        self.syncFileMaxTime = syncFileMaxTime
        self.useStorageIDs = useStorageIDs
        self.trunk = trunk
    }

    /// A configuration for tests: ephemeral ports on 127.0.0.1 (one loopback address per storage).
    public static func ephemeral(
        dataDirectory: String, groups: Int = 1, storagesPerGroup: Int = 1,
        replicationLag: Double = 0, compat: CompatLevel = .v6_16
    ) -> DevServerConfiguration {
        DevServerConfiguration(
            dataDirectory: dataDirectory, trackerPort: 0, storagePort: 0, groups: groups,
            storagesPerGroup: storagesPerGroup, replicationLag: replicationLag, compat: compat)
    }

    /// True when every storage has its own address (listen host 127.0.0.1).
    public var storagesHaveOwnAddresses: Bool { listenHost == "127.0.0.1" }

    /// Checks ranges; the message says which option is wrong.
    public func validate() throws(DevServerError) {
        guard !dataDirectory.isEmpty else { throw .configuration("--data must name a directory") }
        guard (1...512).contains(groups) else { throw .configuration("--groups must be 1...512, got \(groups)") }
        guard (1...32).contains(storagesPerGroup) else {
            throw .configuration("--storages-per-group must be 1...32, got \(storagesPerGroup)")
        }
        guard (0...65535).contains(trackerPort) else { throw .configuration("--tracker-port must be 0...65535") }
        guard (0...65535).contains(storagePort) else { throw .configuration("--storage-port must be 0...65535") }
        if !storagesHaveOwnAddresses {
            guard storagePort == 0 || storagePort + groups * storagesPerGroup - 1 <= 65535 else {
                throw .configuration("--storage-port leaves no room for \(groups * storagesPerGroup) consecutive ports")
            }
        }
        guard replicationLag >= 0 else { throw .configuration("--replication-lag must be >= 0") }
        guard syncResumeDelay >= 0 else { throw .configuration("--sync-resume-delay must be >= 0") }
        guard syncFileMaxDelay > 0, syncFileMaxTime > 0 else {
            throw .configuration("storage_sync_file_max_delay and storage_sync_file_max_time must be > 0")
        }
        guard reservedSpaceMB >= 0 else { throw .configuration("--reserved-space must be >= 0") }
        guard (1...256).contains(subdirCount) else { throw .configuration("subdirCount must be 1...256") }
        guard let octets = IPv4.parse(listenHost) else {
            throw .configuration("--listen must be an IPv4 address (file ids embed it), got \(listenHost)")
        }
        guard octets != [0, 0, 0, 0] else {
            throw .configuration("--listen 0.0.0.0 is not usable: the tracker hands this address to clients; give a concrete IPv4 address")
        }
        if let trunk { try trunk.validate() }
    }
}

/// The trunk parameters the tracker hands to its storages (tracker.conf). The defaults are the
/// values of the tracker.conf shipped with FastDFS 6.16.1 (the code's own defaults differ:
/// slot_max_size 16 MB and no alignment).
public struct TrunkParameters: Sendable, Equatable {
    /// `slot_min_size`: the smallest slot (header included).
    public var slotMinSize: Int64
    /// `slot_max_size`: uploads whose size plus the 24-byte header is at most this go into a trunk.
    public var slotMaxSize: Int64
    /// `trunk_alloc_alignment_size`: slots above the minimum are rounded up to this.
    public var allocationAlignment: Int64
    /// `trunk_file_size`: the size of each trunk file (created sparse).
    public var trunkFileSize: Int64

    public init(
        slotMinSize: Int64 = 256, slotMaxSize: Int64 = 1 << 20, allocationAlignment: Int64 = 256,
        trunkFileSize: Int64 = 64 << 20
    ) {
        self.slotMinSize = slotMinSize
        self.slotMaxSize = slotMaxSize
        self.allocationAlignment = allocationAlignment
        self.trunkFileSize = trunkFileSize
    }

    func validate() throws(DevServerError) {
        guard slotMinSize > TrunkHeader.size, slotMaxSize > slotMinSize, allocationAlignment >= 0,
            trunkFileSize >= slotMaxSize, trunkFileSize <= Int64(Int32.max)
        else {
            throw .configuration(
                "trunk parameters need \(TrunkHeader.size) < slot_min_size < slot_max_size <= trunk_file_size < 2 GiB")
        }
    }
}

/// Errors of the dev server's own API (not wire statuses).
public enum DevServerError: Error, Sendable, CustomStringConvertible, Equatable {
    case configuration(String)
    case io(String)
    case notRunning(String)
    case invalidFaultSpec(String)

    public var description: String {
        switch self {
        case .configuration(let m): return "invalid configuration: \(m)"
        case .io(let m): return "I/O error: \(m)"
        case .notRunning(let m): return "not running: \(m)"
        case .invalidFaultSpec(let m): return "invalid --fault: \(m)"
        }
    }
}

/// Dotted-quad helpers (file ids carry the source IPv4 in network order).
enum IPv4 {
    /// The four octets of `a.b.c.d`, or nil.
    static func parse(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var octets: [UInt8] = []
        for p in parts {
            guard let v = UInt8(p) else { return nil }
            octets.append(v)
        }
        return octets
    }

    static func format(_ v: UInt32) -> String {
        "\(v >> 24 & 0xFF).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)"
    }
}
