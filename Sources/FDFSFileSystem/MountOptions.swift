#if canImport(Glibc)
import Glibc
#endif
import Logging

/// The `fdfsfs SOURCE MOUNTPOINT [-o OPTIONS] [-f] [-d]` command line, parsed without side effects
/// so the daemonizing parent can reject bad options before it forks.
public struct MountCommand: Sendable {
    public var source = ""
    public var mountpoint = ""
    public var foreground = false
    public var debug = false
    public var singleThread = false
    public var memoryStore = false
    /// Options handed to libfuse (`allow_other`, `ro`, `fsname=`...).
    public var fuseOptions: [String] = []
    public var conf: String?
    public var stateDir: String?
    /// Where the named tree lives: nil (STATE_DIR/names.sqlite), `sqlite:PATH` or a postgres:// URL.
    public var meta: String?
    public var metaPasswordFile: String?
    /// Seconds without heartbeat before a shared-tree session (a dead mount) expires.
    public var sessionTTL = 60
    /// Deadline of each naming-database call (PostgreSQL).
    public var metaTimeout: Double = 10
    public var logFile: String?
    /// `-o log_level=` (trace, debug, info, notice, warning, error, critical); `-d` means debug.
    public var logLevel: Logger.Level = .info
    /// `-o metrics=HOST:PORT`: also serve the Prometheus endpoint on TCP (the unix socket that
    /// `fdfsfs stats` reads is always there).
    public var metricsAddress: String?
    public var connectTimeout: Double = 10
    /// Seconds without network progress before a request fails (client.conf network_timeout);
    /// nil keeps the client.conf value (30 s by default).
    public var networkTimeout: Double?
    public var fs = FDFSOptions()
    public var readOnly = false
    public var kernelPermissions = true
    /// The kernel read-ahead set on the mount's bdi after mounting (KiB; 0 leaves the kernel's
    /// 128 KiB). 1024 makes sequential reads arrive as 1 MiB FUSE requests.
    public var readAheadKB = 1024

    public init() {}

    /// Options libfuse understands (mount flags and fuse mount options), passed through.
    static let fuseFlags: Set<String> = [
        "allow_other", "allow_root", "default_permissions", "auto_unmount", "blkdev",
        "ro", "rw", "dev", "nodev", "suid", "nosuid", "exec", "noexec", "async", "sync", "dirsync",
        "atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime", "strictatime", "nostrictatime",
        "lazytime", "nolazytime",
    ]
    static let fuseKeys: Set<String> = ["fsname", "subtype", "max_read", "blksize"]
    /// Options only meaningful to mount(8)/fstab: accepted and ignored.
    static let fstabFlags: Set<String> = ["_netdev", "nofail", "noauto", "auto", "defaults", "user", "users", "nouser", "owner", "group", "netdev", "nonempty"]

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    public static let usage = """
        usage: fdfsfs SOURCE MOUNTPOINT [-o OPTION[,OPTION...]] [-f] [-d]
               fdfsfs status STATE_DIR   (files whose writes are staged, not yet on the cluster)
               fdfsfs dump STATE_DIR|META_URL > tree.json   (the named tree as JSON)
               fdfsfs load META_URL < tree.json             (into an empty namespace)
               fdfsfs stats MOUNTPOINT|HOST:PORT [-n COUNT] [-i SECONDS]   (live rates of a running mount)
          SOURCE      a client.conf path, or HOST:PORT[,HOST:PORT...] of trackers
          -f          stay in the foreground
          -d          debug (implies -f; log_level=debug and libfuse's request log)
          -o          allow_other, default_permissions, ro, uid=N, gid=N, umask=OCTAL,
                      conf=PATH, group=NAME (new files), state_dir=DIR (default /var/lib/fdfsfs/<hash>),
                      attr_timeout=S, entry_timeout=S, metadata_cache=S, fileinfo_cache=S,
                      negative_cache=S, groups_cache=S, readahead_max=BYTES, readahead_memory=BYTES,
                      read_ahead_kb=N (kernel read-ahead of the mount, default 1024, 0 = kernel default),
                      max_staged=BYTES (per file, after a failed upload; default 256 MiB),
                      max_uploads=N (requests sending written data at once, all files; default 4),
                      connect_timeout=S, network_timeout=S, log=FILE,
                      log_level=trace|debug|info|notice|warning|error (default info),
                      metrics=HOST:PORT (Prometheus text at /metrics), no_default_permissions (default_permissions is on
                      by default); fstab-only options are ignored
                      meta=sqlite:PATH | postgres://USER@HOST[:PORT]/DB[?sslmode=disable|require&namespace=NAME]
                      (the named tree; postgres: shared by every mount naming it), meta_password_file=PATH,
                      session_ttl=S (default 60), meta_timeout=S (default 10)
        """

    public static func parse(_ args: [String]) throws(ParseError) -> MountCommand {
        var c = MountCommand()
        var positional: [String] = []
        var i = 0
        func fail(_ m: String) -> ParseError { ParseError(description: m) }
        while i < args.count {
            let a = args[i]
            switch a {
            case "-f": c.foreground = true
            case "-d", "--debug":
                c.debug = true; c.foreground = true
                if c.logLevel > .debug { c.logLevel = .debug }
            case "-s": c.singleThread = true
            case "--memory-store": c.memoryStore = true
            case "-o":
                i += 1
                guard i < args.count else { throw fail("-o needs an argument") }
                try c.apply(options: args[i])
            default:
                if a.hasPrefix("-o") && a.count > 2 { try c.apply(options: String(a.dropFirst(2))) }
                else if a.hasPrefix("-") && a.count > 1 { throw fail("unknown argument \(a)\n\(usage)") }
                else { positional.append(a) }
            }
            i += 1
        }
        guard positional.count == 2 else { throw fail("expected SOURCE and MOUNTPOINT\n\(usage)") }
        c.source = positional[0]
        c.mountpoint = positional[1]
        if c.source == "memory:" || c.source.hasPrefix("memory:") { c.memoryStore = true }
        if c.fs.readOnly { c.readOnly = true }
        // The kernel keeps up to two read-ahead windows of concurrent requests in flight, in any
        // order: the prefetcher must see all of them as one stream.
        let kernelSpread = Int64(c.readAheadKB) << 11
        c.fs.readAhead.forwardTolerance = max(c.fs.readAhead.forwardTolerance, kernelSpread)
        c.fs.readAhead.backwardTolerance = max(c.fs.readAhead.backwardTolerance, kernelSpread)
        if !c.fuseOptions.contains(where: { $0.hasPrefix("fsname=") }) {
            c.fuseOptions.append("fsname=" + c.source.replacingCommas())
        }
        if !c.fuseOptions.contains(where: { $0.hasPrefix("subtype=") }) { c.fuseOptions.append("subtype=fdfsfs") }
        // The named tree stores real modes and owners: let the kernel enforce them (essential with
        // allow_other). `-o no_default_permissions` turns this off.
        if c.kernelPermissions && !c.fuseOptions.contains("default_permissions") { c.fuseOptions.append("default_permissions") }
        return c
    }

    mutating func apply(options: String) throws(ParseError) {
        for raw in options.split(separator: ",") {
            let opt = String(raw)
            let key: String, value: String?
            if let eq = opt.firstIndex(of: "=") { key = String(opt[..<eq]); value = String(opt[opt.index(after: eq)...]) }
            else { key = opt; value = nil }
            func num(_ v: String?) throws(ParseError) -> Double {
                guard let v, let d = Double(v), d >= 0 else { throw ParseError(description: "option \(key) needs a non-negative number, got \(value ?? "nothing")") }
                return d
            }
            func int(_ v: String?, radix: Int = 10) throws(ParseError) -> Int64 {
                guard let v, let n = Int64(v, radix: radix), n >= 0 else { throw ParseError(description: "option \(key) needs a non-negative integer, got \(value ?? "nothing")") }
                return n
            }
            func str(_ v: String?) throws(ParseError) -> String {
                guard let v, !v.isEmpty else { throw ParseError(description: "option \(key) needs a value") }
                return v
            }
            switch key {
            case "conf": conf = try str(value)
            case "group" where value != nil: fs.group = try str(value)
            case "state_dir": stateDir = try str(value)
            case "meta": meta = try str(value)
            case "meta_password_file": metaPasswordFile = try str(value)
            case "session_ttl": sessionTTL = max(3, Int(clamping: try int(value)))
            case "meta_timeout": metaTimeout = max(0.1, try num(value))
            case "log": logFile = try str(value)
            case "log_level":
                guard let level = Logger.Level(rawValue: try str(value).lowercased()) else {
                    throw ParseError(description: "option log_level needs one of trace, debug, info, notice, warning, error, critical; got \(value ?? "")")
                }
                logLevel = level
            case "metrics":
                let address = try str(value)
                guard address.contains(":"), let port = Int(address.split(separator: ":").last ?? ""), (0...65535).contains(port) else {
                    throw ParseError(description: "option metrics needs HOST:PORT (e.g. 127.0.0.1:9567), got \(address)")
                }
                metricsAddress = address
            case "attr_timeout": fs.attrTimeout = try num(value)
            case "entry_timeout": fs.entryTimeout = try num(value)
            case "metadata_cache": fs.metadataTTL = try num(value)
            case "fileinfo_cache": fs.fileInfoTTL = try num(value)
            case "negative_cache": fs.negativeTTL = try num(value)
            case "groups_cache": fs.groupCacheTTL = try num(value)
            case "statfs_cache": fs.statfsCacheTTL = try num(value)
            case "connect_timeout": connectTimeout = try num(value)
            case "network_timeout": networkTimeout = try num(value)
            case "readahead_max": fs.readAhead.maxWindow = max(fs.readAhead.initialWindow, try int(value))
            case "readahead_memory": fs.readAheadMemoryLimit = try int(value)
            case "max_staged": fs.maxStaged = max(fs.writeChunk, try int(value))
            case "max_uploads": fs.maxUploads = Int(clamping: max(1, try int(value)))
            case "read_ahead_kb": readAheadKB = Int(clamping: try int(value))
            case "uid": fs.uid = UInt32(clamping: try int(value))
            case "gid": fs.gid = UInt32(clamping: try int(value))
            case "umask": fs.umask = UInt32(clamping: try int(value, radix: 8)) & 0o777
            case "memory_store": memoryStore = true
            case "no_default_permissions": kernelPermissions = false
            case "ro": fs.readOnly = true; fuseOptions.append("ro")
            case "rw": fs.readOnly = false; fuseOptions.append("rw")
            default:
                if Self.fstabFlags.contains(key) && value == nil { continue }
                if key.hasPrefix("x-") || key == "comment" { continue }
                if Self.fuseFlags.contains(key) && value == nil { fuseOptions.append(key); continue }
                if Self.fuseKeys.contains(key) && value != nil { fuseOptions.append(opt); continue }
                throw ParseError(description: "unknown mount option '\(opt)'\n\(Self.usage)")
            }
        }
    }

    /// Arguments that reproduce this command for the foreground child.
    public func childArguments(original: [String]) -> [String] {
        var out = original.filter { $0 != "-f" }
        out.append("-f")
        return out
    }

    /// /var/lib/fdfsfs/<FNV-1a hash of the source> unless state_dir= is given.
    public var resolvedStateDir: String {
        if let stateDir { return stateDir }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in (conf ?? source).utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return "/var/lib/fdfsfs/" + String(h, radix: 16)
    }
}

private extension String {
    /// fsname must not contain commas (they separate mount options).
    func replacingCommas() -> String { String(map { $0 == "," ? ";" : $0 }) }
}
