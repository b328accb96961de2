// PostgresTestSupport: a private PostgreSQL server for the tests of one test process.
//
// `try PrivatePostgres.shared()` starts, the first time it is called, one server of its own:
// initdb into a fresh temporary directory, listening on 127.0.0.1 only, on a free port, its unix
// socket in that directory; password (scram-sha-256) authentication over TCP, trust only on the
// unix socket (used for setup). It creates the role `fdfs` with a random password and the
// database `fdfs` owned by it. The server is stopped and its directory removed when the process
// exits (atexit), and by a watchdog process if the test process dies without running atexit.
// Run as root, initdb and postgres run as the `postgres` system user (runuser), which owns the
// directory. Missing PostgreSQL binaries throw an error that says to run
// scripts/install-deps.sh: tests that need PostgreSQL fail, they are never skipped.
//
// Each test takes a database of its own with `makeDatabase()` (or a namespace name of its own
// with `PrivatePostgres.uniqueName()`), so tests are independent of each other and of their order.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where and as whom to connect to one database of the private server.
public struct PostgresConnectionInfo: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var database: String

    /// postgres://USER@HOST:PORT/DB?sslmode=disable: the password is not in it (see `password`,
    /// `PrivatePostgres.passwordFile`, or `urlWithPassword`).
    public var url: String { "postgres://\(user)@\(host):\(port)/\(database)?sslmode=disable" }
    /// postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=disable (the password is hex: no escaping).
    public var urlWithPassword: String { "postgres://\(user):\(password)@\(host):\(port)/\(database)?sslmode=disable" }
    /// A libpq keyword/value connection string, without the password.
    public var conninfo: String { "host=\(host) port=\(port) user=\(user) dbname=\(database) sslmode=disable" }
    public var description: String { url }
}

public struct PrivatePostgresError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The private PostgreSQL server of this test process (see the file comment).
public final class PrivatePostgres: Sendable {
    /// Directory holding initdb, pg_ctl, postgres, pg_isready and psql.
    public let binDirectory: String
    /// The temporary directory: data directory, unix socket, log, password files.
    public let baseDirectory: String
    public let dataDirectory: String
    /// The unix socket directory (trust authentication; setup only).
    public var socketDirectory: String { baseDirectory }
    public var logFile: String { baseDirectory + "/postgres.log" }
    public let host = "127.0.0.1"
    public let port: Int
    public let superuser = "postgres"
    public let superuserPassword: String
    /// The role the code under test connects as (LOGIN, CREATEDB, not superuser).
    public let user = "fdfs"
    public let password: String
    /// The database `fdfs`, owned by `user`.
    public let database = "fdfs"
    /// A file holding `password` (mode 0600), as for `-o meta_password_file=PATH`.
    public let passwordFile: String
    /// The system user the server runs as when this process is root; nil when it runs as us.
    let runAs: String?

    /// The connection to the shared database `fdfs` as `fdfs`.
    public var connection: PostgresConnectionInfo {
        PostgresConnectionInfo(host: host, port: port, user: user, password: password, database: database)
    }
    /// postgres://fdfs@127.0.0.1:PORT/fdfs?sslmode=disable (no password in it).
    public var url: String { connection.url }

    /// The server of this process, started on the first call. Throws (every time) if it could
    /// not be started, e.g. when PostgreSQL is not installed.
    public static func shared() throws -> PrivatePostgres { try sharedResult.get() }

    private static let sharedResult: Result<PrivatePostgres, any Error> = Result {
        let server = try PrivatePostgres.launch()
        registerAtExit()
        return server
    }

    // MARK: Per-test isolation

    /// A fresh, empty database owned by `fdfs`, named `prefix_<random>`; the connection to it.
    public func makeDatabase(prefix: String = "t") throws -> PostgresConnectionInfo {
        let name = Self.uniqueName(prefix: prefix)
        try psql("CREATE DATABASE \(name) OWNER \(user)")
        return PostgresConnectionInfo(host: host, port: port, user: user, password: password, database: name)
    }

    /// Drops a database made by `makeDatabase` (closing its connections).
    public func dropDatabase(_ name: String) throws {
        try psql("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// A name no other call in any process returns in practice: `prefix_` and 12 random hex
    /// digits, lower case (a valid unquoted SQL identifier if prefix is one). For a namespace
    /// (`?namespace=NAME`) or a database.
    public static func uniqueName(prefix: String = "ns") -> String {
        var rng = SystemRandomNumberGenerator()
        let bits = rng.next() & 0xFFFF_FFFF_FFFF
        let hex = String(bits, radix: 16)
        return "\(prefix)_" + String(repeating: "0", count: 12 - hex.count) + hex
    }

    // MARK: SQL and connections

    /// Runs SQL as the superuser over the unix socket; returns psql's unaligned, tuples-only
    /// output with the trailing newline removed. Throws with psql's message on any error.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        let r = try Self.run(binDirectory + "/psql", [
            "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", socketDirectory, "-p", String(port), "-U", superuser, "-d", database, "-c", sql,
        ], as: runAs)
        guard r.status == 0 else { throw PrivatePostgresError("psql \(sql.debugDescription): exit \(r.status): \(r.errorOutput)") }
        return r.output.hasSuffix("\n") ? String(r.output.dropLast()) : r.output
    }

    /// Runs SQL over TCP with password authentication as the connection's user (PGPASSWORD in
    /// psql's environment only); returns the result like `psql(_:database:)`.
    @discardableResult
    public func psql(_ sql: String, connection: PostgresConnectionInfo) throws -> String {
        let r = try Self.run(binDirectory + "/psql", [
            "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-w", "-d", connection.conninfo, "-c", sql,
        ], environment: ["PGPASSWORD": connection.password, "PGCONNECT_TIMEOUT": "10"])
        guard r.status == 0 else { throw PrivatePostgresError("psql as \(connection.user) to \(connection.url): exit \(r.status): \(r.errorOutput)") }
        return r.output.hasSuffix("\n") ? String(r.output.dropLast()) : r.output
    }

    /// The ready state of the TCP listener: true when pg_isready says it accepts connections.
    public func isReady() -> Bool {
        guard let r = try? Self.run(binDirectory + "/pg_isready", ["-q", "-h", host, "-p", String(port), "-t", "2"]) else { return false }
        return r.status == 0
    }

    // MARK: Fault injection (the same port stays reserved for this server)

    /// Stops the server at once (`pg_ctl stop -m immediate`): clients see their connections drop.
    public func stop() throws {
        let r = try Self.run(binDirectory + "/pg_ctl", ["-D", dataDirectory, "-m", "immediate", "-w", "stop"], as: runAs)
        guard r.status == 0 else { throw PrivatePostgresError("pg_ctl stop: exit \(r.status): \(r.output)\(r.errorOutput)") }
    }

    /// Starts the stopped server again on the same port and waits until it accepts connections.
    public func start() throws {
        try Self.startServer(bin: binDirectory, data: dataDirectory, base: baseDirectory, port: port, runAs: runAs)
    }

    public func restart() throws {
        try stop()
        try start()
    }

    // MARK: Launch

    init(binDirectory: String, baseDirectory: String, port: Int, superuserPassword: String, password: String, runAs: String?) {
        self.binDirectory = binDirectory
        self.baseDirectory = baseDirectory
        self.dataDirectory = baseDirectory + "/data"
        self.port = port
        self.superuserPassword = superuserPassword
        self.password = password
        self.passwordFile = baseDirectory + "/fdfs.password"
        self.runAs = runAs
    }

    /// initdb, start, create the role and the database. Tries three free ports (another process
    /// may take the one found free before the server binds it).
    static func launch() throws -> PrivatePostgres {
        let bin = try findBinDirectory()
        let runAs: String? = geteuid() == 0 ? "postgres" : nil
        var owner: (uid: uid_t, gid: gid_t)?
        if let name = runAs {
            guard let pw = getpwnam(name) else {
                throw PrivatePostgresError("running as root, and there is no '\(name)' system user to run PostgreSQL as (initdb refuses root): run scripts/install-deps.sh")
            }
            owner = (pw.pointee.pw_uid, pw.pointee.pw_gid)
        }
        var template = Array("/tmp/fdfs-pg.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw PrivatePostgresError("mkdtemp: errno \(errno)") }
        let base = String(cString: made)
        if let owner, chown(base, owner.uid, owner.gid) != 0 { throw PrivatePostgresError("chown \(base): errno \(errno)") }
        startWatchdog(bin: bin, base: base, runAs: runAs)

        let superuserPassword = randomHex(16), password = randomHex(16)
        let suFile = base + "/superuser.password"
        try writeSecret(superuserPassword + "\n", to: suFile, owner: owner)
        let initdb = try run(bin + "/initdb", [
            "-D", base + "/data", "-U", "postgres", "--pwfile=" + suFile,
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync",
        ], as: runAs)
        guard initdb.status == 0 else {
            throw PrivatePostgresError("initdb failed (exit \(initdb.status)): \(initdb.output)\(initdb.errorOutput)")
        }
        var lastError: any Error = PrivatePostgresError("no start attempted")
        for _ in 0..<3 {
            let port = try freePort()
            do {
                try startServer(bin: bin, data: base + "/data", base: base, port: port, runAs: runAs)
            } catch {
                lastError = error
                continue
            }
            let server = PrivatePostgres(binDirectory: bin, baseDirectory: base, port: port,
                                         superuserPassword: superuserPassword, password: password, runAs: runAs)
            try writeSecret(password + "\n", to: server.passwordFile, owner: nil)
            try server.psql("CREATE ROLE \(server.user) LOGIN CREATEDB PASSWORD '\(password)'")
            try server.psql("CREATE DATABASE \(server.database) OWNER \(server.user)")
            return server
        }
        try? FileManager.default.removeItem(atPath: base)
        throw lastError
    }

    /// pg_ctl start on 127.0.0.1:port (socket in `base`), then waits for pg_isready over TCP.
    static func startServer(bin: String, data: String, base: String, port: Int, runAs: String?) throws {
        // fsync off: a test server's data need not survive a machine crash; it saves seconds.
        let options = "-c listen_addresses=127.0.0.1 -p \(port) -k \(base) -c fsync=off -c full_page_writes=off -c max_connections=400"
        let r = try run(bin + "/pg_ctl", ["-D", data, "-l", base + "/postgres.log", "-w", "-t", "60", "-o", options, "start"], as: runAs)
        guard r.status == 0 else {
            let log = (try? String(contentsOfFile: base + "/postgres.log", encoding: .utf8)) ?? ""
            throw PrivatePostgresError("pg_ctl start on port \(port) failed (exit \(r.status)): \(r.output)\(r.errorOutput)\nlog:\n\(log.suffix(2000))")
        }
        for _ in 0..<600 {
            if let ready = try? run(bin + "/pg_isready", ["-q", "-h", "127.0.0.1", "-p", String(port), "-t", "2"]), ready.status == 0 { return }
            usleep(100_000)
        }
        throw PrivatePostgresError("PostgreSQL on 127.0.0.1:\(port) not ready after 60 s (log: \(base)/postgres.log)")
    }

    /// $FDFS_PG_BIN, else the newest /usr/lib/postgresql/N/bin (Debian), else initdb on PATH.
    static func findBinDirectory() throws -> String {
        let fm = FileManager.default
        func hasAll(_ dir: String) -> Bool {
            ["initdb", "pg_ctl", "postgres", "pg_isready", "psql"].allSatisfy { fm.isExecutableFile(atPath: dir + "/" + $0) }
        }
        if let dir = ProcessInfo.processInfo.environment["FDFS_PG_BIN"], !dir.isEmpty {
            guard hasAll(dir) else { throw PrivatePostgresError("FDFS_PG_BIN=\(dir) lacks one of initdb, pg_ctl, postgres, pg_isready, psql") }
            return dir
        }
        let versions = ((try? fm.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .compactMap(Int.init).sorted(by: >)
        for v in versions where hasAll("/usr/lib/postgresql/\(v)/bin") { return "/usr/lib/postgresql/\(v)/bin" }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) where hasAll(dir) {
            return dir
        }
        throw PrivatePostgresError("""
            PostgreSQL server binaries (initdb, pg_ctl, postgres, pg_isready, psql) not found in \
            /usr/lib/postgresql/*/bin, $FDFS_PG_BIN or PATH: run scripts/install-deps.sh \
            (installs Debian's postgresql and postgresql-client)
            """)
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw PrivatePostgresError("socket: errno \(errno)") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, len) == 0 && getsockname(fd, sa, &len) == 0
            }
        }
        guard ok else { throw PrivatePostgresError("bind 127.0.0.1:0: errno \(errno)") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func randomHex(_ bytes: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
    }

    static func writeSecret(_ text: String, to path: String, owner: (uid: uid_t, gid: gid_t)?) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw PrivatePostgresError("open \(path): errno \(errno)") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw PrivatePostgresError("write \(path): errno \(errno)") }
        if let owner, fchown(fd, owner.uid, owner.gid) != 0 { throw PrivatePostgresError("chown \(path): errno \(errno)") }
    }

    // MARK: Cleanup

    /// At exit: SIGQUIT to the postmaster (an immediate shutdown), wait for it, remove the directory.
    private static func registerAtExit() {
        atexit {
            guard case .success(let server) = PrivatePostgres.sharedResult else { return }
            server.shutDownAndRemove()
        }
    }

    /// A server of the caller's own, not the shared one (a test that stops and restarts its
    /// server must not do it under the other suites' feet); `shutDownAndRemove()` when done.
    public static func launchPrivate() throws -> PrivatePostgres { try launch() }

    public func shutDownAndRemove() {
        if let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
           let line = text.split(separator: "\n").first, let pid = pid_t(line), pid > 0 {
            kill(pid, SIGQUIT)
            var waited = 0
            while kill(pid, 0) == 0 && waited < 100 { usleep(50_000); waited += 1 }
            if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        }
        try? FileManager.default.removeItem(atPath: baseDirectory)
    }

    /// A shell in a session of its own that, once this process is gone however it ended, stops
    /// the server and removes its directory (atexit does not run after a crash or SIGKILL).
    private static func startWatchdog(bin: String, base: String, runAs: String?) {
        let stop = [bin + "/pg_ctl", "-D", base + "/data", "-m", "immediate", "stop"]
        let stopCommand = (runAs.map { [runuserPath, "-u", $0, "--"] } ?? []) + stop
        let script = """
            trap '' INT HUP
            while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done
            [ -f '\(base)/data/postmaster.pid' ] && \(stopCommand.map { "'\($0)'" }.joined(separator: " ")) >/dev/null 2>&1
            rm -rf '\(base)'
            """
        let launcher = "command -v setsid >/dev/null 2>&1 && exec setsid /bin/sh -c \"$0\"; exec /bin/sh -c \"$0\""
        _ = try? spawn(["/bin/sh", "-c", launcher, script], environment: ProcessInfo.processInfo.environment,
                       stdout: "/dev/null", stderr: "/dev/null")
    }

    // MARK: Processes

    struct RunResult {
        var status: Int32
        var output: String
        var errorOutput: String
    }

    static var runuserPath: String {
        FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser") ? "/usr/sbin/runuser" : "/sbin/runuser"
    }

    /// Runs a program (as `user` through runuser when given) in `/` (the postgres user may not
    /// enter the current directory), waits, returns its exit status and output.
    static func run(_ executable: String, _ arguments: [String], as user: String? = nil,
                    environment: [String: String] = [:]) throws -> RunResult {
        let command = (user.map { [runuserPath, "-u", $0, "--"] } ?? []) + [executable] + arguments
        var env = ProcessInfo.processInfo.environment
        for key in ["PGPASSWORD", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE", "PGSSLMODE", "PGPASSFILE"] { env[key] = nil }
        env["LC_ALL"] = "C"
        for (k, v) in environment { env[k] = v }
        let outPath = FileManager.default.temporaryDirectory.path + "/fdfs-pg-run-\(getpid())-\(randomHex(6)).out"
        let errPath = outPath + ".err"
        defer { unlink(outPath); unlink(errPath) }
        let pid = try spawn(["/bin/sh", "-c", "cd / && exec \"$@\"", "sh"] + command, environment: env, stdout: outPath, stderr: errPath)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw PrivatePostgresError("waitpid \(command[0]): errno \(errno)") }
        }
        let exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return RunResult(
            status: exitStatus,
            output: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            errorOutput: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        )
    }

    /// posix_spawn with stdin from /dev/null, stdout and stderr to files, and every other
    /// descriptor closed: not Foundation's Process, whose child-exit detection waits for a socket
    /// that the daemonized postmaster would inherit (and keep open), hanging the test process;
    /// and no descriptor of the test process (e.g. the pipe `swift test` reads) may stay open
    /// in the server.
    static func spawn(_ argv: [String], environment: [String: String], stdout: String, stderr: String) throws -> pid_t {
        #if os(Linux)
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        #else
        var actions: posix_spawn_file_actions_t?
        var attributes: posix_spawnattr_t?
        #endif
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        defer { posix_spawn_file_actions_destroy(&actions); posix_spawnattr_destroy(&attributes) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        #if os(Linux)
        // (posix_spawn_file_actions_addclosefrom_np is not visible to Swift: close each open one;
        // glibc ignores the close of a descriptor closed since.)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            if let fd = Int32(name), fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
        }
        #else
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_CLOEXEC_DEFAULT))
        #endif
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { cArgs.forEach { free($0) }; cEnv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attributes, cArgs, cEnv)
        guard rc == 0 else { throw PrivatePostgresError("cannot run \(argv.joined(separator: " ")): posix_spawn error \(rc)") }
        return pid
    }
}
