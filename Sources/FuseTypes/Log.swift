#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Minimal leveled logger to stderr (the daemon redirects stderr to its log file).
public enum Log {
    public enum Level: Int, Sendable, Comparable {
        case debug = 0, info, warning, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        var tag: String { switch self { case .debug: "debug"; case .info: "info"; case .warning: "warning"; case .error: "error" } }
    }
    private static let threshold = Atomic<Int>(Level.info.rawValue)
    public static func setLevel(_ l: Level) { threshold.store(l.rawValue, ordering: .relaxed) }
    public static func enabled(_ l: Level) -> Bool { l.rawValue >= threshold.load(ordering: .relaxed) }

    public static func write(_ level: Level, _ message: @autoclosure () -> String) {
        guard enabled(level) else { return }
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var tmv = tm()
        var t = ts.tv_sec
        gmtime_r(&t, &tmv)
        let stamp = String(format4: Int(tmv.tm_year) + 1900) + "-" + pad(Int(tmv.tm_mon) + 1) + "-" + pad(Int(tmv.tm_mday))
            + "T" + pad(Int(tmv.tm_hour)) + ":" + pad(Int(tmv.tm_min)) + ":" + pad(Int(tmv.tm_sec)) + "Z"
        let line = "\(stamp) fdfsfs[\(getpid())] \(level.tag): \(escaped(message()))\n"
        // write(2) on fd 2: one syscall per line keeps lines whole across threads.
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
    private static func pad(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }

    /// One record per line whatever a message quotes: control characters (a file name may hold
    /// a newline) are written as `\n`, `\r`, `\t` or `\xHH`, and backslashes doubled.
    static func escaped(_ message: String) -> String {
        guard message.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "\\") }) else { return message }
        var out = ""
        out.reserveCapacity(message.utf8.count + 8)
        for scalar in message.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                out += "\\x" + (hex.count < 2 ? "0" + hex : hex)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
    public static func debug(_ m: @autoclosure () -> String) { write(.debug, m()) }
    public static func info(_ m: @autoclosure () -> String) { write(.info, m()) }
    public static func warning(_ m: @autoclosure () -> String) { write(.warning, m()) }
    public static func error(_ m: @autoclosure () -> String) { write(.error, m()) }
}

private extension String {
    init(format4 v: Int) { self = String(v) }
}
