#if canImport(Glibc)
import Glibc
#endif
import FDFSObservability

/// `fdfsfs stats MOUNTPOINT|HOST:PORT [-n COUNT] [-i SECONDS]`: a live, top-like view of a
/// running mount (as `juicefs stats`): every interval it scrapes the mount's metrics (its unix
/// socket, or a `metrics=` TCP address) and prints one line of rates — FUSE operations and their
/// latency, bytes read and written, FastDFS requests and their latency, errors, read-ahead hits,
/// staged bytes, queued deletes, open connections. `-n` stops after COUNT lines (scripts, tests).
/// A terminal program: runs on the main thread, blocking there.
enum StatsCommand {
    static let usage = "usage: fdfsfs stats MOUNTPOINT|HOST:PORT [-n COUNT] [-i SECONDS]"

    static func run(_ args: [String]) -> Int32 {
        signal(SIGPIPE, SIG_IGN)   // a mount that goes away mid-scrape is an error, not a kill
        var target: String?
        var count: Int?
        var interval = 1.0
        var i = 0
        while i < args.count {
            switch args[i] {
            case "-n", "--count":
                i += 1
                guard i < args.count, let n = Int(args[i]), n > 0 else { fputsErr("\(usage)\n"); return 2 }
                count = n
            case "-i", "--interval":
                i += 1
                guard i < args.count, let s = Double(args[i]), s >= 0.1 else { fputsErr("\(usage)\n"); return 2 }
                interval = s
            case let a where a.hasPrefix("-"):
                fputsErr("fdfsfs stats: unknown argument \(a)\n\(usage)\n"); return 2
            case let a:
                guard target == nil else { fputsErr("\(usage)\n"); return 2 }
                target = a
            }
            i += 1
        }
        guard let target else { fputsErr("\(usage)\n"); return 2 }
        let listener: MetricsEndpoint.Listener
        var resolved = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        var st = stat()
        if stat(target, &st) == 0, st.st_mode & S_IFMT == S_IFDIR, realpath(target, &resolved) != nil {
            let path = String(decoding: resolved.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            listener = .unix(path: MetricsEndpoint.socketPath(forMountpoint: path))
        } else if let tcp = MetricsEndpoint.parseTCP(target) {
            listener = tcp
        } else {
            fputsErr("fdfsfs stats: \(target) is neither a mount point nor HOST:PORT\n")
            return 2
        }
        func scrape() -> (MetricsSnapshot, Double)? {
            do {
                let text = try MetricsScrape.fetch(listener)
                return (MetricsSnapshot(parsing: text), monotonic())
            } catch {
                fputsErr("fdfsfs stats: \(error.description) (is \(target) mounted by a running fdfsfs?)\n")
                return nil
            }
        }
        guard var (previous, previousTime) = scrape() else { return 1 }
        var lines = 0
        while count.map({ lines < $0 }) ?? true {
            if lines % 20 == 0 { for h in StatsRow.header { out(h) } }
            usleep(useconds_t(interval * 1_000_000))
            guard let (current, now) = scrape() else { return 1 }
            let row = StatsRow(from: previous, to: current, seconds: now - previousTime)
            out(row.render(time: clockTime()))
            (previous, previousTime) = (current, now)
            lines += 1
        }
        return 0
    }

    /// One line, one write(2): unbuffered, so a pipe sees each line as it is made.
    static func out(_ line: String) {
        var bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress, $0.count) }
    }

    static func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func clockTime() -> String {
        var t = time(nil)
        var tmv = tm()
        localtime_r(&t, &tmv)
        func pad(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(pad(tmv.tm_hour)):\(pad(tmv.tm_min)):\(pad(tmv.tm_sec))"
    }
}
