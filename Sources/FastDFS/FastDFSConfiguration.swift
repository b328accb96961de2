// Client configuration: the values of FastDFS's client.conf that matter to this client, with the
// same defaults, plus `load(path:)`/`parse(_:path:)` that read the C client's file format (§9 of
// the protocol reference). Parsing lives in ClientConfigParser.swift and StorageIDTable.swift.

import FastDFSProtocol

public struct FastDFSConfiguration: Sendable {
    /// Trackers from `tracker_server` lines (host:port, port default 22122), in file order.
    /// The client sorts and deduplicates them for its failover order, as the C client does.
    public var trackers: [StorageAddress]
    /// TCP connect timeout (client.conf `connect_timeout`, seconds). Default 10 s.
    public var connectTimeout: Duration = .seconds(10)
    /// Inactivity timeout while waiting for the network during a request
    /// (client.conf `network_timeout`, seconds). Default 30 s.
    public var networkTimeout: Duration = .seconds(30)
    /// Keep connections open between requests. Default true for the library; client.conf's
    /// default (false) is honoured when the configuration is read from a file.
    public var useConnectionPool: Bool = true
    /// Pooled connections idle longer than this are closed instead of reused. Default 3600 s.
    public var connectionPoolMaxIdleTime: Duration = .seconds(3600)
    /// Upper bound of open connections per server address; further requests wait. Default 32.
    public var maxConnectionsPerServer: Int = 32
    /// client.conf `use_storage_id`: file ids may carry numeric storage ids instead of IPs.
    public var useStorageID: Bool = false
    /// Storage id → address, from `storage_ids_filename` when `useStorageID` is set.
    /// The port is the one in the file, or 23000 when the line has none.
    public var storageIDs: [UInt32: StorageAddress] = [:]
    /// Groups of storage ids, from the same file (id → group name).
    public var storageIDGroups: [UInt32: String] = [:]
    /// Storage connect retries on ECONNREFUSED/ETIMEDOUT/EAGAIN/EADDRINUSE (FastDFS 6.15.3+ client:
    /// 3 retries, 100 ms doubling, capped at 5 s). Set to 0 to fail on the first error.
    public var storageConnectRetries: Int = 3
    /// A storage that failed to connect, timed out or stalled is tried last for this long, so
    /// reads that moved to a replica stop waiting on it for every request. Default 30 s.
    public var failedStorageAvoidTime: Duration = .seconds(30)
    /// A read that has another storage to try moves on after this long without receiving a
    /// byte (a stalled server must not hold it for the whole network_timeout). Default 2 s.
    public var readStallTimeout: Duration = .seconds(2)
    /// How long a group's storage list (LIST_STORAGE, used to find a file's source storage) is
    /// reused before it is read again; it is also read again whenever it does not explain an
    /// answer of the tracker. Default 60 s.
    public var storageListCacheTime: Duration = .seconds(60)
    /// How long the tracker's answer to "where do I upload" (QUERY_STORE) is reused for the next
    /// uploads to the same group; dropped at once when an upload fails. 0 asks before every
    /// upload, as the C client does. Default 1 s: a burst of small files saves a tracker round
    /// trip per file, and the tracker still spreads uploads over its storages from second to second.
    public var storeAssignmentReuseTime: Duration = .seconds(1)
    /// client.conf `load_fdfs_parameters_from_tracker` (parsed, not acted upon: this client does
    /// not fetch parameters or storage ids from the tracker).
    public var loadParametersFromTracker: Bool = false

    public init(trackers: [StorageAddress]) {
        self.trackers = trackers
    }

    /// Reads a client.conf file (and what it `#include`s). `requireTrackers: false` accepts a
    /// file without `tracker_server` lines (for callers that set `trackers` themselves).
    public static func load(path: String, requireTrackers: Bool = true) throws(FastDFSError) -> FastDFSConfiguration {
        let text = try ClientConfigParser.readFile(path, includedFrom: nil)
        return try parse(text, path: path, requireTrackers: requireTrackers)
    }

    /// Parses client.conf text. `path` names the file in errors and anchors relative `#include`
    /// and `storage_ids_filename` paths. Errors name the file, line and key.
    public static func parse(_ text: String, path: String, requireTrackers: Bool = true) throws(FastDFSError)
        -> FastDFSConfiguration
    {
        var parser = ClientConfigParser()
        try parser.parse(text, path: path, depth: 0)
        return try parser.makeConfiguration(mainPath: path, requireTrackers: requireTrackers)
    }
}

extension FastDFSConfiguration {
    /// Parses `host:port`, `host` (→ `defaultPort`), `[v6]:port`; nil when malformed.
    public static func parseAddress(_ text: String, defaultPort: Int) -> StorageAddress? {
        try? StorageAddress.parse(text, defaultPort: defaultPort).get()
    }
}

extension StorageAddress {
    /// Parses `host:port`, `host` (default port), `[v6]:port`; with dual IPs `ip1,ip2:port`
    /// the first IP is used. Returns nil with a reason on errors.
    static func parse(_ text: String, defaultPort: Int) -> Result<StorageAddress, ParseFailure> {
        let s = text.trimmingWhitespace()
        guard !s.isEmpty else { return .failure(ParseFailure("empty address")) }
        var hostPart = Substring(s)
        var port = defaultPort
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return .failure(ParseFailure("missing ']' in \"\(s)\"")) }
            hostPart = s[s.index(after: s.startIndex)..<close]
            let rest = s[s.index(after: close)...]
            if !rest.isEmpty {
                guard rest.first == ":" else { return .failure(ParseFailure("expected ':port' after ']' in \"\(s)\"")) }
                guard let p = Int(rest.dropFirst()), (1...65535).contains(p) else {
                    return .failure(ParseFailure("invalid port in \"\(s)\""))
                }
                port = p
            }
        } else if let colon = s.lastIndex(of: ":") {
            if s[..<colon].contains(":") {
                // Bare IPv6 address without brackets and without port.
                hostPart = Substring(s)
            } else {
                hostPart = s[..<colon]
                guard let p = Int(s[s.index(after: colon)...]), (1...65535).contains(p) else {
                    return .failure(ParseFailure("invalid port in \"\(s)\" (expected host:port with port 1-65535)"))
                }
                port = p
            }
        }
        if let comma = hostPart.firstIndex(of: ",") { hostPart = hostPart[..<comma] }
        let host = String(hostPart).trimmingWhitespace()
        guard !host.isEmpty else { return .failure(ParseFailure("missing host in \"\(s)\"")) }
        return .success(StorageAddress(host: host, port: port))
    }

    struct ParseFailure: Error { var reason: String; init(_ r: String) { reason = r } }
}

extension String {
    func trimmingWhitespace() -> String {
        let ws: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        guard let first = firstIndex(where: { !ws($0) }), let last = lastIndex(where: { !ws($0) }) else { return "" }
        return String(self[first...last])
    }
}
