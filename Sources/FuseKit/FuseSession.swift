import CFuse3
import FuseTypes
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// A libfuse low-level session: create → mount → run (loop on its own pthread) → teardown.
///
/// Signals: call `FuseSession.blockTerminationSignals()` first thing in `main`, before any thread
/// exists, so every thread inherits a mask with SIGTERM/SIGINT/SIGHUP blocked. The loop thread
/// unblocks them, so libfuse's handlers (`fuse_set_signal_handlers`) run on the thread sitting in
/// `fuse_session_loop_mt`, interrupt it, and the loop returns; `teardown` then unmounts cleanly.
public final class FuseSession: @unchecked Sendable {
    // Invariant for @unchecked Sendable: `se` is written by init/mount/teardown, which the owner
    // calls sequentially on one task; the loop thread only reads it while `run` awaits it.
    private var se: OpaquePointer?
    private let bridge: FuseBridge
    private let retained: Unmanaged<FuseBridge>
    public let mountpoint: String
    private var mounted = false
    private var handlersSet = false
    private var notifier: KernelNotifier?
    private let logger: Logger

    /// - Parameters:
    ///   - options: `-o` options understood by libfuse (`allow_other`, `default_permissions`,
    ///     `ro`, `fsname=`, `subtype=`, `max_read=` ...).
    public init(filesystem: any FuseFilesystem, tuning: FuseTuning = FuseTuning(), mountpoint: String,
                options: [String], debug: Bool, logger: Logger = Logger(label: "fusekit")) throws(FSError) {
        self.mountpoint = mountpoint
        self.logger = logger
        bridge = FuseBridge(fs: filesystem, tuning: tuning, logger: logger)
        retained = Unmanaged.passRetained(bridge)
        var argv: [String] = ["fdfsfs"]
        if !options.isEmpty { argv += ["-o", options.joined(separator: ",")] }
        if debug { argv.append("-d") }
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
        cargs.append(nil)
        defer { for p in cargs { free(p) } }
        var ops = LowLevelOps.make(locks: filesystem.supportsLocks)
        let session: OpaquePointer? = cargs.withUnsafeMutableBufferPointer { bp in
            var args = fuse_args(argc: Int32(argv.count), argv: bp.baseAddress, allocated: 0)
            defer { fuse_opt_free_args(&args) }
            // fuse_session_new copies the ops table, so a local is fine.
            return cfuse_session_new(&args, &ops, MemoryLayout<fuse_lowlevel_ops>.size, retained.toOpaque())
        }
        guard let session else {
            retained.release()
            throw FSError(EINVAL, "libfuse refused the mount options \(options.joined(separator: ",")) (see the message above)")
        }
        se = session
    }

    /// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (and so in all threads created later).
    public static func blockTerminationSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    public static func unblockTerminationSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&set, s) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// Mounts on `mountpoint` and installs the signal handlers.
    public func mount() throws(FSError) {
        guard let se else { throw FSError(EIO, "session already destroyed") }
        // libfuse installs its handlers only over SIG_DFL; a shell starting us in the background
        // leaves SIGINT ignored. SIGTERM/SIGINT must always unmount (SIGHUP keeps nohup's choice).
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
        if fuse_set_signal_handlers(se) != 0 { throw FSError(EIO, "cannot install signal handlers") }
        handlersSet = true
        if fuse_session_mount(se, mountpoint) != 0 {
            throw FSError(EIO, "cannot mount on \(mountpoint) (see the message above; is /dev/fuse available and the directory present?)")
        }
        mounted = true
        let n = KernelNotifier(session: se, logger: logger)
        notifier = n
        bridge.fs.attach(notifier: n)
    }

    /// Runs the multi-threaded loop on a dedicated pthread; returns its exit code (0 after an
    /// unmount, the signal number after a signal).
    public func run(maxThreads: UInt32 = 16) async -> Int32 {
        guard let se else { return -1 }
        let logger = logger
        return await withCheckedContinuation { (cont: CheckedContinuation<Int32, Never>) in
            let box = LoopBox(se: se, maxThreads: maxThreads, cont: cont)
            var tid = pthread_t()
            let rc = pthread_create(&tid, nil, { raw in
                let box = Unmanaged<LoopBox>.fromOpaque(raw!).takeRetainedValue()
                FuseSession.unblockTerminationSignals()
                let rc = cfuse_session_loop_mt(box.se.raw, 0, box.maxThreads)
                box.cont.resume(returning: rc)
                return nil
            }, Unmanaged.passRetained(box).toOpaque())
            if rc != 0 {
                logger.error("cannot start the FUSE loop thread", metadata: ["errno": "\(rc)"])
                cont.resume(returning: -1)
            } else {
                pthread_detach(tid)
            }
        }
    }

    /// Waits (up to `timeout` seconds) for requests still being answered by Tasks.
    public func drain(timeout: Double = 5) async {
        var waited = 0.0
        while bridge.inflight.load(ordering: .acquiring) > 0 && waited < timeout {
            try? await Task.sleep(for: .milliseconds(10))
            waited += 0.01
        }
        let left = bridge.inflight.load(ordering: .acquiring)
        if left > 0 { logger.warning("requests still unanswered at unmount", metadata: ["requests": "\(left)"]) }
    }

    /// Unmount, remove handlers, destroy, release — always in this order (passthrough_ll's main).
    /// Call `drain()` first.
    public func teardown() {
        guard let s = se else { return }
        notifier?.close()
        notifier = nil
        if mounted { fuse_session_unmount(s); mounted = false }
        if handlersSet { fuse_remove_signal_handlers(s); handlersSet = false }
        fuse_session_destroy(s)
        se = nil
        retained.release()
    }
}

/// The loop thread's argument. Invariant: `se` is only used by the loop thread while `run` awaits.
private final class LoopBox: @unchecked Sendable {
    struct SessionPointer: @unchecked Sendable { let raw: OpaquePointer }
    let se: SessionPointer
    let maxThreads: UInt32
    let cont: CheckedContinuation<Int32, Never>
    init(se: OpaquePointer, maxThreads: UInt32, cont: CheckedContinuation<Int32, Never>) {
        self.se = SessionPointer(raw: se); self.maxThreads = maxThreads; self.cont = cont
    }
}

extension FuseSession {
    /// FUSE_USE_VERSION the shim compiles against (312 = API 3.12).
    public static var apiVersion: Int { Int(FUSE_USE_VERSION) }
}
