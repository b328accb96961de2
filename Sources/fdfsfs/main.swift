// fdfsfs: mounts a FastDFS cluster (`fdfsfs SOURCE MOUNTPOINT [-o OPTIONS] [-f] [-d]`).
//
// Flow: parse options (pure, `MountCommand`) → without -f, re-exec in the background and wait
// for "ready" on a pipe (`Daemon`) → in the foreground process: lock the state directory,
// open the store and check it answers (within connect_timeout), open the naming database,
// mount through FuseKit, report ready, run the FUSE loop on its own thread until unmount or
// SIGTERM/SIGINT, then unmount and clean up. Logging and metrics are bootstrapped once, right
// after the options are read (`Observability`): log lines go to fd 2 (the log file in the
// daemon), metrics to a Prometheus registry served on the mount's unix socket (`fdfsfs stats`)
// and, with `-o metrics=HOST:PORT`, on TCP.
#if canImport(Glibc)
import Glibc
#endif
import CFuse3
import FDFSFileSystem
import FDFSNamingPostgres
import FDFSObservability
import FastDFSProtocol
import Foundation
import FuseKit
import FuseTypes
import Logging
import SystemPackage

// Before any thread exists: termination signals are delivered only to the FUSE loop thread.
FuseSession.blockTerminationSignals()

// The read path allocates a 1 MiB buffer per chunk. glibc would serve those with mmap (or trim
// them back to the system on free), and every chunk would then pay page faults and zeroing of
// fresh pages. Keep them on the heap, and keep up to 8 MiB of free space at the top of each heap
// for reuse (about one read-ahead window); more is returned, so a burst of writers does not
// leave the daemon holding its peak.
_ = mallopt(M_MMAP_THRESHOLD, 32 << 20)
_ = mallopt(M_TRIM_THRESHOLD, 8 << 20)

let rawArgs = Array(CommandLine.arguments.dropFirst())
if rawArgs.contains("-h") || rawArgs.contains("--help") {
    print(MountCommand.usage)
    exit(0)
}
if rawArgs.contains("-V") || rawArgs.contains("--version") {
    print("fdfsfs \(FDFSPackageVersion.string) (libfuse low-level API \(FuseSession.apiVersion))")
    exit(0)
}

if rawArgs.first == "status" {
    // `fdfsfs status STATE_DIR`: files whose writes are staged and not yet on the cluster.
    guard rawArgs.count == 2 else { fputsErr("usage: fdfsfs status STATE_DIR\n"); exit(2) }
    exit(StatusCommand.run(stateDir: rawArgs[1]))
}

if rawArgs.first == "stats" {
    exit(StatsCommand.run(Array(rawArgs.dropFirst())))
}

if rawArgs.first == "dump" || rawArgs.first == "load" {
    exit(await DumpCommand.run(rawArgs))
}

let command: MountCommand
do {
    command = try MountCommand.parse(rawArgs)
} catch {
    fputsErr("fdfsfs: \(error.description)\n")
    exit(2)
}

let metricsRegistry = Observability.bootstrap(level: command.logLevel)
let logger = Logger(label: "fdfsfs")

/// Fails (in the parent, or reported through the pipe in the child) and exits.
func fatal(_ message: String) -> Never {
    logger.error("\(message)")
    Daemon.report("error: " + message)
    if getenv(Daemon.readyEnv) == nil && !command.foreground { fputsErr("fdfsfs: \(message)\n") }
    exit(1)
}

// Mount point checks (both in the parent, for a fast clear error, and in the child).
var resolved = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
guard realpath(command.mountpoint, &resolved) != nil else {
    fatal("mount point \(command.mountpoint): \(Errno(rawValue: errno).description)")
}
let mountpoint = String(decoding: resolved.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
var st = stat()
guard stat(mountpoint, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { fatal("mount point \(mountpoint) is not a directory") }
if let type = MountTable.mountedType(at: mountpoint) {
    fatal("\(mountpoint) is already a mount point (\(type)); unmount it first (umount \(mountpoint))")
}

let stateDir = command.resolvedStateDir
func mkdirs(_ path: String) -> Bool {
    var cur = ""
    for part in path.split(separator: "/") {
        cur += "/" + part
        if mkdir(cur, 0o750) != 0 && errno != EEXIST { return false }
    }
    return true
}
guard mkdirs(stateDir) else { fatal("cannot create the state directory \(stateDir): \(Errno(rawValue: errno).description)") }
let logFile = command.logFile ?? stateDir + "/fdfsfs.log"

if !command.foreground {
    // The waiting parent stays interruptible (Ctrl-C); the child blocks the signals again itself.
    FuseSession.unblockTerminationSignals()
    var args = CommandLine.arguments
    args[0] = CommandLine.arguments[0]
    // A password in meta= reaches the daemon through its environment, not its command line (ps).
    if let meta = command.meta, MetaURL.scrub(meta) != meta, case .postgres(let t)? = try? MetaURL.parse(meta), let pw = t.password {
        setenv("PGPASSWORD", pw, 1)
        args = args.map { $0.replacingOccurrences(of: meta, with: MetaURL.scrub(meta).replacingOccurrences(of: ":***@", with: "@")) }
    }
    args.append("-f")
    // Generous wait: connecting may take connect_timeout per tracker, then the mount itself.
    exit(Daemon.spawnAndWait(arguments: args, logFile: logFile, timeout: command.connectTimeout * 2 + 15))
}

logger.info("starting", metadata: ["source": "\(command.source)", "mountpoint": "\(mountpoint)", "state_dir": "\(stateDir)",
                                   "version": "\(FDFSPackageVersion.string)"])

// One fdfsfs per state directory: the naming database has a single writer.
let lockFD = open(stateDir + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
guard lockFD >= 0, flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
    fatal("state directory \(stateDir) is in use by another fdfsfs mount; give this mount its own state_dir=")
}

// The pid file lets scripts signal exactly this daemon.
if let f = fopen(stateDir + "/fdfsfs.pid", "w") { fputs("\(getpid())\n", f); fclose(f) }

let store: any FileStore
if command.memoryStore {
    store = await MemorySeed.make(stateDir: stateDir)
} else {
    do {
        store = try await makeFastDFSStore(command, logger: logger)
    } catch {
        fatal(error.message)
    }
}

let naming: any NamingEngine
do {
    naming = try await NamingFactory.make(meta: command.meta, passwordFile: command.metaPasswordFile, stateDir: stateDir,
                                          mountpoint: mountpoint, sessionTTL: command.sessionTTL, timeout: command.metaTimeout,
                                          logger: logger)
} catch {
    fatal(error.message)
}
if let meta = command.meta { logger.info("named tree in \(MetaURL.scrub(meta))") }

var fsOptions = command.fs
fsOptions.readOnly = command.readOnly
fsOptions.stagingDir = stateDir + "/staging"
let filesystem = FDFSFileSystem(store: store, naming: naming, options: fsOptions, logger: logger)

// Reachability within connect_timeout: an unreachable tracker fails here, not as a hang.
let started = await withTaskGroup(of: FSError?.self) { group -> FSError? in
    group.addTask {
        do throws(FSError) { try await filesystem.start(); return nil } catch { return error }
    }
    group.addTask {
        try? await Task.sleep(for: .seconds(command.connectTimeout + 1))
        return FSError(ETIMEDOUT, "no answer from the trackers of \(command.source) within \(Int(command.connectTimeout)) s")
    }
    let first = await group.next()!
    group.cancelAll()
    return first
}
if let started { fatal("cannot reach the FastDFS cluster \(command.source): \(started.description)") }

// Metrics: the unix socket `fdfsfs stats` reads (a failure there only costs that view), and the
// TCP endpoint asked for with metrics= (a failure there fails the mount: it was asked for).
let endpoint: MetricsEndpoint?
do {
    var listeners: [MetricsEndpoint.Listener] = []
    let socketPath = MetricsEndpoint.socketPath(forMountpoint: mountpoint)
    if mkdirs(MetricsEndpoint.runDirectory) { listeners.append(.unix(path: socketPath)) }
    else { logger.warning("no metrics socket: cannot create \(MetricsEndpoint.runDirectory) (\(Errno(rawValue: errno).description)); `fdfsfs stats` will not reach this mount") }
    if let address = command.metricsAddress {
        guard let tcp = MetricsEndpoint.parseTCP(address) else { fatal("metrics=\(address): expected HOST:PORT") }
        listeners.append(tcp)
    }
    do {
        endpoint = try await MetricsEndpoint.start(registry: metricsRegistry, listeners: listeners)
    } catch {
        if command.metricsAddress != nil { fatal("cannot serve metrics on \(command.metricsAddress!): \(error)") }
        logger.warning("no metrics socket at \(socketPath): \(error); `fdfsfs stats` will not reach this mount")
        endpoint = nil
    }
    if let port = endpoint?.tcpPort { logger.info("metrics served", metadata: ["address": "\(command.metricsAddress ?? "")", "port": "\(port)"]) }
}

let session: FuseSession
do {
    var tuning = FuseTuning()
    tuning.maxReadahead = UInt32(clamping: min(command.fs.readAhead.maxWindow, 1 << 20))
    session = try FuseSession(filesystem: filesystem, tuning: tuning, mountpoint: mountpoint,
                              options: command.fuseOptions, debug: command.debug, logger: logger)
    try session.mount()
} catch {
    fatal(error.message)
}
// After FUSE_INIT (the helper thread waits for it): 1 MiB read requests for sequential reads.
// The mount command returns once that is done (the mount answers requests by then).
let source = command.source
if command.readAheadKB > 0 {
    BDIReadahead.apply(kb: command.readAheadKB, mountpoint: mountpoint, logger: logger) {
        logger.info("mounted", metadata: ["source": "\(source)", "mountpoint": "\(mountpoint)"])
        Daemon.report("ready")
    }
} else {
    logger.info("mounted", metadata: ["source": "\(source)", "mountpoint": "\(mountpoint)"])
    Daemon.report("ready")
}
let rc = await session.run(maxThreads: command.singleThread ? 1 : 16)
logger.info("FUSE loop ended; unmounting", metadata: ["rc": "\(rc)", "mountpoint": "\(mountpoint)"])
await endpoint?.close()
filesystem.stop()
await session.drain()
await filesystem.releaseLockSession()
session.teardown()
await naming.shutdown()
await shutdownStore(store)
logger.info("unmounted", metadata: ["mountpoint": "\(mountpoint)"])
exit(rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1)
