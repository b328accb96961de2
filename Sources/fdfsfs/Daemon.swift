#if canImport(Glibc)
import Glibc
#endif
import FuseTypes
import SystemPackage

/// Daemonizing without fork() in a multithreaded process: the parent re-executes itself with
/// `-f` (posix_spawn, new session, stdio to the log), passes the write end of a pipe in
/// FDFSFS_READY_FD and waits for one line: "ready" or "error: ...".
enum Daemon {
    static let readyEnv = "FDFSFS_READY_FD"

    /// Runs in the parent. Returns the exit status for the parent process.
    static func spawnAndWait(arguments: [String], logFile: String, timeout: Double) -> Int32 {
        let r: FileDescriptor, w: FileDescriptor
        do {
            (r, w) = try FileDescriptor.pipe()
        } catch {
            fputsErr("fdfsfs: pipe: \(error)\n")
            return 1
        }
        _ = fcntl(r.rawValue, F_SETFD, FD_CLOEXEC)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logFile, O_WRONLY | O_CREAT | O_APPEND, 0o640)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // POSIX_SPAWN_SETSID (0x80, glibc >= 2.26) is behind _GNU_SOURCE and not imported.
        posix_spawnattr_setflags(&attr, 0x80)

        var env = environ_strings().filter { !$0.hasPrefix(readyEnv + "=") }
        env.append("\(readyEnv)=\(w.rawValue)")
        let exe = "/proc/self/exe"
        let argv = [arguments.first ?? "fdfsfs"] + arguments.dropFirst()
        var cargv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cenv: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer { for p in cargv { free(p) }; for p in cenv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, &attr, &cargv, &cenv)
        try? w.close()
        guard rc == 0 else {
            fputsErr("fdfsfs: cannot start the background process: \(Errno(rawValue: rc))\n")
            try? r.close()
            return 1
        }
        // Wait for the child's verdict.
        var line: [UInt8] = []
        let deadline = monotonic() + timeout
        var buf = [UInt8](repeating: 0, count: 512)
        while true {
            let left = deadline - monotonic()
            if left <= 0 {
                fputsErr("fdfsfs: the mount was not ready after \(Int(timeout)) s; stopping it (log: \(logFile))\n")
                kill(pid, SIGTERM)
                return 1
            }
            // swift-system has no poll(2); an interrupted or timed-out poll just loops.
            var pfd = pollfd(fd: r.rawValue, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, Int32(min(left, 1) * 1000)) <= 0 { continue }
            guard let got = try? buf.withUnsafeMutableBytes({ try r.read(into: $0) }), got > 0 else { break }
            line += buf[0..<got]
        }
        try? r.close()
        let text = String(decoding: line, as: UTF8.self).trimmingNewlines()
        if text == "ready" { return 0 }
        if text.hasPrefix("error: ") {
            fputsErr("fdfsfs: \(text.dropFirst(7))\n")
        } else {
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            fputsErr("fdfsfs: the background process exited before the mount was ready (status \(status)); see \(logFile)\n")
        }
        return 1
    }

    /// In the child: tell the waiting parent the outcome (once).
    static func report(_ message: String) {
        guard let v = getenv(readyEnv), let raw = Int32(String(cString: v)) else { return }
        let fd = FileDescriptor(rawValue: raw)
        _ = try? fd.writeAll(Array((message + "\n").utf8))
        try? fd.close()
        unsetenv(readyEnv)
    }

    static func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func environ_strings() -> [String] {
        var out: [String] = []
        var p = environ
        while let s = p.pointee { out.append(String(cString: s)); p += 1 }
        return out
    }
}

func fputsErr(_ s: String) {
    _ = try? FileDescriptor.standardError.writeAll(Array(s.utf8))
}

extension String {
    func trimmingNewlines() -> String {
        var s = Substring(self)
        while let l = s.last, l == "\n" || l == "\r" || l == " " { s = s.dropLast() }
        return String(s)
    }
}

/// Mount-table checks.
enum MountTable {
    /// The filesystem type mounted exactly at `path`, if any (from /proc/self/mountinfo).
    static func mountedType(at path: String) -> String? {
        guard let f = fopen("/proc/self/mountinfo", "r") else { return nil }
        defer { fclose(f) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var cap = 0
        defer { free(line) }
        var found: String? = nil
        while getline(&line, &cap, f) > 0 {
            let l = String(cString: line!)
            let halves = l.components(separatedBy: " - ")
            let fields = halves[0].split(separator: " ")
            guard fields.count >= 5 else { continue }
            if unescape(String(fields[4])) == path {
                found = halves.count > 1 ? String(halves[1].split(separator: " ").first ?? "?") : "?"
            }
        }
        return found
    }

    static func unescape(_ s: String) -> String {
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == 92, i + 3 < b.count, let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v); i += 4
            } else { out.append(b[i]); i += 1 }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension String {
    func components(separatedBy sep: String) -> [String] {
        var parts: [String] = []
        var rest = Substring(self)
        while let r = rest.range(of: sep) {
            parts.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }
}

extension Substring {
    func range(of needle: String) -> Range<Index>? {
        let n = Array(needle.utf8)
        guard !n.isEmpty else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].utf8.starts(with: n) {
                return i..<self.utf8.index(i, offsetBy: n.count)
            }
            i = index(after: i)
        }
        return nil
    }
}
