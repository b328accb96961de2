#if canImport(Glibc)
import Glibc
#endif
import Logging

/// A swift-log handler that writes one line per record to a file descriptor (fdfsfs: fd 2,
/// which the daemon points at its log file):
///
///     2026-12-03T07:40:12Z fdfsfs[4711] warning: delete of X failed, will retry inode=12 file_id=group1/M00/...
///
/// One `write(2)` per line keeps lines whole across threads. Whatever a message or a metadata
/// value quotes (a file name may hold a newline) stays on its line: control characters are
/// written as `\n`, `\r`, `\t` or `\xHH` and backslashes doubled. Metadata follows the message
/// as `key=value` pairs in key order; a value with a space or `=` is quoted.
public struct LogLineHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let program: String
    private let fd: Int32
    private let label: String

    /// - Parameters:
    ///   - label: the logger's label; shown after the level unless it is the program's own.
    ///   - program: the name shown before the pid.
    public init(label: String, program: String = "fdfsfs", level: Logger.Level = .info, fd: Int32 = 2) {
        self.label = label
        self.program = program
        self.logLevel = level
        self.fd = fd
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        var line = Self.format(level: event.level, label: label == program ? nil : label, program: program,
                               pid: getpid(), seconds: Self.now(), message: "\(event.message)", metadata: merged)
        line.append("\n")
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    static func now() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int(ts.tv_sec)
    }

    /// The line without its newline (pure; tested).
    public static func format(level: Logger.Level, label: String?, program: String, pid: Int32, seconds: Int,
                              message: String, metadata: Logger.Metadata) -> String {
        var line = timestamp(seconds) + " " + program + "[" + String(pid) + "] " + level.rawValue
        if let label { line += " " + label }
        line += ": " + escaped(message)
        for key in metadata.keys.sorted() {
            line += " " + escaped(key) + "=" + quotedIfNeeded(escaped(render(metadata[key]!)))
        }
        return line
    }

    static func render(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): s
        case .stringConvertible(let c): c.description
        case .array(let a): "[" + a.map(render).joined(separator: ",") + "]"
        case .dictionary(let d): "{" + d.keys.sorted().map { "\($0):\(render(d[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    static func quotedIfNeeded(_ s: String) -> String {
        guard s.isEmpty || s.utf8.contains(where: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "\"") }) else { return s }
        return "\"" + s.replacingAll("\"", with: "\\\"") + "\""
    }

    /// UTC, ISO 8601, seconds.
    public static func timestamp(_ seconds: Int) -> String {
        var t = time_t(seconds)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        func pad(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(tmv.tm_year + 1900)-\(pad(tmv.tm_mon + 1))-\(pad(tmv.tm_mday))T\(pad(tmv.tm_hour)):\(pad(tmv.tm_min)):\(pad(tmv.tm_sec))Z"
    }

    /// One record per line whatever a message quotes: control characters are written as `\n`,
    /// `\r`, `\t` or `\xHH`, and backslashes doubled.
    public static func escaped(_ message: String) -> String {
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
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
