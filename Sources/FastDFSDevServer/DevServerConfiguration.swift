// Options of a dev server instance; the CLI maps its flags 1:1 onto this struct.

/// How a `DevServer` is laid out and which release it imitates.
public struct DevServerConfiguration: Sendable {
    /// Root of the on-disk state: `<dataDirectory>/<group>/storage<n>/data/XX/YY/<name>`.
    public var dataDirectory: String
    /// IP every listener binds to, and the IP the tracker hands out and file ids embed.
    public var listenHost: String
    /// Tracker port; 0 picks a free port.
    public var trackerPort: Int
    /// First storage port (the others follow consecutively); 0 gives every storage a free port.
    public var storagePort: Int
    /// Number of groups (`group1`, `group2`, ...).
    public var groups: Int
    /// Storage servers per group (each with its own port and data directory).
    public var storagesPerGroup: Int
    /// Seconds before an operation on one storage is applied to the other storages of its group.
    public var replicationLag: Double
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
        subdirCount: Int = 256
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
    }

    /// A configuration for tests: ephemeral ports on 127.0.0.1.
    public static func ephemeral(
        dataDirectory: String, groups: Int = 1, storagesPerGroup: Int = 1,
        replicationLag: Double = 0, compat: CompatLevel = .v6_16
    ) -> DevServerConfiguration {
        DevServerConfiguration(
            dataDirectory: dataDirectory, trackerPort: 0, storagePort: 0, groups: groups,
            storagesPerGroup: storagesPerGroup, replicationLag: replicationLag, compat: compat)
    }

    /// Checks ranges; the message says which option is wrong.
    public func validate() throws(DevServerError) {
        guard !dataDirectory.isEmpty else { throw .configuration("--data must name a directory") }
        guard (1...512).contains(groups) else { throw .configuration("--groups must be 1...512, got \(groups)") }
        guard (1...32).contains(storagesPerGroup) else {
            throw .configuration("--storages-per-group must be 1...32, got \(storagesPerGroup)")
        }
        guard (0...65535).contains(trackerPort) else { throw .configuration("--tracker-port must be 0...65535") }
        guard storagePort == 0 || storagePort + groups * storagesPerGroup - 1 <= 65535, storagePort >= 0 else {
            throw .configuration("--storage-port leaves no room for \(groups * storagesPerGroup) consecutive ports")
        }
        guard replicationLag >= 0 else { throw .configuration("--replication-lag must be >= 0") }
        guard reservedSpaceMB >= 0 else { throw .configuration("--reserved-space must be >= 0") }
        guard (1...256).contains(subdirCount) else { throw .configuration("subdirCount must be 1...256") }
        guard let octets = IPv4.parse(listenHost) else {
            throw .configuration("--listen must be an IPv4 address (file ids embed it), got \(listenHost)")
        }
        guard octets != [0, 0, 0, 0] else {
            throw .configuration("--listen 0.0.0.0 is not usable: the tracker hands this address to clients; give a concrete IPv4 address")
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

}
