#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// The metric names fdfsfs exports (the FUSE layer, the FastDFS client and the filesystem each
/// record theirs; `fdfsfs stats` reads them back by these names).
public enum MetricNames {
    public static let fuseRequests = "fuse_requests_total"
    public static let fuseErrors = "fuse_request_errors_total"
    public static let fuseDuration = "fuse_request_duration_seconds"
    public static let fdfsRequests = "fdfs_requests_total"
    public static let fdfsErrors = "fdfs_request_errors_total"
    public static let fdfsDuration = "fdfs_request_duration_seconds"
    public static let fdfsConnections = "fdfs_pool_connections"
    public static let bytesRead = "fdfsfs_read_bytes_total"
    public static let bytesWritten = "fdfsfs_written_bytes_total"
    public static let readAheadHits = "fdfsfs_readahead_hits_total"
    public static let readAheadMisses = "fdfsfs_readahead_misses_total"
    public static let stagedBytes = "fdfsfs_staged_bytes"
    public static let pendingDeletes = "fdfsfs_pending_deletes"
}

/// One scrape of the Prometheus text format, summed per metric name (over all label sets):
/// what `fdfsfs stats` needs to show rates. Pure; tested.
public struct MetricsSnapshot: Sendable, Equatable {
    /// name (with `_sum`/`_count` suffixes as written) → sum over label sets.
    public var totals: [String: Double] = [:]
    /// name → label text (`op="read"`) → value, for per-label breakdowns.
    public var byLabels: [String: [String: Double]] = [:]

    public init() {}

    public init(parsing text: String) {
        for raw in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = raw.drop(while: { $0 == " " })
            if line.hasPrefix("#") { continue }
            let name: Substring, labels: Substring, rest: Substring
            if let brace = line.firstIndex(of: "{"), let close = line[brace...].firstIndex(of: "}") {
                name = line[..<brace]
                labels = line[line.index(after: brace)..<close]
                rest = line[line.index(after: close)...]
            } else if let space = line.firstIndex(of: " ") {
                name = line[..<space]
                labels = ""
                rest = line[space...]
            } else { continue }
            guard let valueText = rest.split(separator: " ").first, let value = Double(valueText), value.isFinite else { continue }
            if name.hasSuffix("_bucket") { continue }
            totals[String(name), default: 0] += value
            byLabels[String(name), default: [:]][String(labels), default: 0] += value
        }
    }

    public func total(_ name: String) -> Double { totals[name] ?? 0 }
}

/// One line of `fdfsfs stats`: rates over the interval between two snapshots.
public struct StatsRow: Sendable, Equatable {
    public var fuseOps: Double
    public var fuseLatencyMs: Double
    public var fuseErrors: Double
    public var readMiB: Double
    public var writeMiB: Double
    public var fdfsRequests: Double
    public var fdfsLatencyMs: Double
    public var fdfsErrors: Double
    /// Read-ahead hits as a percentage of reads served (nil without reads).
    public var readAheadHitPercent: Double?
    public var stagedMiB: Double
    public var pendingDeletes: Double
    public var connections: Double

    public init(from a: MetricsSnapshot, to b: MetricsSnapshot, seconds: Double) {
        let s = max(seconds, 0.001)
        func rate(_ n: String) -> Double { max(0, b.total(n) - a.total(n)) / s }
        func latency(_ n: String) -> Double {
            let count = b.total(n + "_count") - a.total(n + "_count")
            return count > 0 ? (b.total(n + "_sum") - a.total(n + "_sum")) / count * 1000 : 0
        }
        fuseOps = rate(MetricNames.fuseRequests)
        fuseLatencyMs = latency(MetricNames.fuseDuration)
        fuseErrors = rate(MetricNames.fuseErrors)
        readMiB = rate(MetricNames.bytesRead) / 1_048_576
        writeMiB = rate(MetricNames.bytesWritten) / 1_048_576
        fdfsRequests = rate(MetricNames.fdfsRequests)
        fdfsLatencyMs = latency(MetricNames.fdfsDuration)
        fdfsErrors = rate(MetricNames.fdfsErrors)
        let hits = b.total(MetricNames.readAheadHits) - a.total(MetricNames.readAheadHits)
        let misses = b.total(MetricNames.readAheadMisses) - a.total(MetricNames.readAheadMisses)
        readAheadHitPercent = hits + misses > 0 ? hits / (hits + misses) * 100 : nil
        stagedMiB = b.total(MetricNames.stagedBytes) / 1_048_576
        pendingDeletes = b.total(MetricNames.pendingDeletes)
        connections = b.total(MetricNames.fdfsConnections)
    }

    public static let header = [
        "            |------ fuse -------|-- data MiB/s -|---- fastdfs -------|  ra  |------ state ------|",
        "  time      |  ops/s  lat ms err|  read   write |  req/s  lat ms  err| hit% | staged MiB del conn|",
    ]

    public func render(time: String) -> String {
        "  " + time.padded(9, left: false) + " |"
            + Self.num(fuseOps, 7) + Self.num(fuseLatencyMs, 8, decimals: 2) + Self.num(fuseErrors, 4) + "|"
            + Self.num(readMiB, 7, decimals: 1) + Self.num(writeMiB, 8, decimals: 1) + "|"
            + Self.num(fdfsRequests, 7) + Self.num(fdfsLatencyMs, 8, decimals: 2) + Self.num(fdfsErrors, 5) + "|"
            + (readAheadHitPercent.map { Self.num($0, 5) } ?? "    -") + " |"
            + Self.num(stagedMiB, 11, decimals: 1) + Self.num(pendingDeletes, 4) + Self.num(connections, 5) + "|"
    }

    static func num(_ v: Double, _ width: Int, decimals: Int = 0) -> String {
        var text: String
        if decimals == 0 || v == 0 {
            text = String(Int(v.rounded()))
        } else {
            let scale = Double([1, 10, 100, 1000][min(decimals, 3)])
            let scaled = Int((v * scale).rounded())
            let whole = scaled / Int(scale), frac = scaled % Int(scale)
            var f = String(frac)
            while f.count < decimals { f = "0" + f }
            text = "\(whole).\(f)"
        }
        return text.padded(width, left: true)
    }
}

extension String {
    func padded(_ width: Int, left: Bool) -> String {
        guard count < width else { return self }
        let pad = String(repeating: " ", count: width - count)
        return left ? pad + self : self + pad
    }
}

/// A blocking HTTP/1.0 GET of `/metrics` from a unix socket or a TCP `HOST:PORT` (for
/// `fdfsfs stats`, a terminal program: run it off Swift's cooperative pool).
public enum MetricsScrape {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public static func fetch(_ listener: MetricsEndpoint.Listener, timeoutSeconds: Int = 5) throws(Failure) -> String {
        let fd: Int32
        switch listener {
        case .unix(let path):
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw Failure(description: "socket: \(errnoText())") }
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { close(fd); throw Failure(description: "socket path too long: \(path)") }
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                for (i, b) in bytes.enumerated() { raw[i] = b }
            }
            setTimeouts(fd, timeoutSeconds)
            let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
            guard rc == 0 else {
                let e = errnoText()
                close(fd)
                throw Failure(description: "cannot connect to \(path): \(e)")
            }
        case .tcp(let host, let port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var res: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, String(port), &hints, &res) == 0, let ai = res else { throw Failure(description: "cannot resolve \(host)") }
            defer { freeaddrinfo(res) }
            fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw Failure(description: "socket: \(errnoText())") }
            setTimeouts(fd, timeoutSeconds)
            guard connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 else {
                let e = errnoText()
                close(fd)
                throw Failure(description: "cannot connect to \(host):\(port): \(e)")
            }
        }
        defer { close(fd) }
        let socket = FileDescriptor(rawValue: fd)
        var response: [UInt8] = []
        do {
            _ = try socket.writeAll(Array("GET /metrics HTTP/1.0\r\nHost: fdfsfs\r\n\r\n".utf8))
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = try chunk.withUnsafeMutableBytes { try socket.read(into: $0) }
                if n == 0 { break }
                response.append(contentsOf: chunk[..<n])
            }
        } catch {
            throw Failure(description: "reading the metrics: \(error)")
        }
        let end: [UInt8] = [13, 10, 13, 10]
        guard let split = response.indices.first(where: { response[$0...].starts(with: end) }) else {
            throw Failure(description: "not an HTTP answer")
        }
        let head = String(decoding: response[..<split], as: UTF8.self)
        let status = head.split(whereSeparator: { $0 == "\r" || $0 == "\n" }).first ?? ""
        guard status.split(separator: " ").dropFirst().first == "200" else { throw Failure(description: "answered \(status)") }
        return String(decoding: response[(split + 4)...], as: UTF8.self)
    }

    static func setTimeouts(_ fd: Int32, _ seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    static func errnoText() -> String { Errno(rawValue: errno).description }
}
