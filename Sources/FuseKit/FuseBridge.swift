// FuseKit: libfuse3 low-level glue. Knows nothing of FastDFS.
//
// Design: `FuseSession` creates the libfuse session with an ops table built from non-capturing
// closures (`LowLevelOps.make`). Each closure recovers the `FuseBridge` from `fuse_req_userdata`,
// copies every pointer argument (names, fuse_file_info, write buffers die when the callback
// returns), then starts a Task that creates a `~Copyable` `Reply<Shape>` as its first line and
// awaits the `FuseFilesystem` method. Each reply shape (entry, attr, open, directory, ...) allows
// only its own answers; the reply is consumed by exactly one `fuse_reply_*` through a
// `ReplySink` (libfuse, or a recorder in tests); a reply dropped unused replies EIO from its deinit. `forget` is answered inline with `fuse_reply_none`.
// The session loop (`fuse_session_loop_mt`) runs on its own pthread, never on Swift's cooperative
// pool; replying from a Task on another thread is allowed by libfuse.
import CFuse3
import FuseTypes
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Connection tuning applied in the `init` callback.
public struct FuseTuning: Sendable {
    public var maxWrite: UInt32 = 1 << 20
    public var maxReadahead: UInt32 = 1 << 20
    public var readdirplus: Bool = true
    public init() {}
}

/// Holds the filesystem for the C callbacks. Retained (Unmanaged) from `fuse_session_new` until
/// after `fuse_session_destroy`.
final class FuseBridge: Sendable {
    let fs: any FuseFilesystem
    let tuning: FuseTuning
    /// Logs failed requests (and, at trace, every request's timing); counts requests per op.
    let observer: RequestObserver
    /// Requests handed to Tasks and not yet replied; teardown waits for them, because replying
    /// after `fuse_session_destroy` would touch freed requests.
    let inflight = Atomic<Int>(0)

    init(fs: any FuseFilesystem, tuning: FuseTuning, logger: Logger) {
        self.fs = fs
        self.tuning = tuning
        self.observer = RequestObserver(logger: logger)
    }

    var logger: Logger { observer.logger }

    static func from(_ req: fuse_req_t?) -> FuseBridge {
        // Invariant: userdata is the Unmanaged FuseBridge passed to fuse_session_new, alive until destroy.
        Unmanaged<FuseBridge>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
    }

    static func context(_ req: fuse_req_t?) -> RequestContext {
        guard let c = fuse_req_ctx(req) else { return RequestContext() }
        return RequestContext(uid: UInt32(c.pointee.uid), gid: UInt32(c.pointee.gid), pid: Int32(c.pointee.pid), umask: UInt32(c.pointee.umask))
    }

    /// Replies on the calling (libfuse) thread, exactly once: for answers the filesystem has in
    /// memory (`immediate*`), no Task and no thread hop.
    static func answer<S: ReplyShape>(_ req: fuse_req_t?, _ op: StaticString, _ shape: S.Type, _ result: Result<S.Value, FSError>) {
        let bridge = from(req)
        Reply<S>(LibfuseSink(req: req!), op, hooks: ReplyHooks.of(bridge.fs), observer: bridge.observer).finish(result)
    }

    /// Runs `body` in a Task and replies with its value or its error, exactly once, as a reply
    /// of shape `S`.
    /// - Parameter interruptible: for requests that may wait indefinitely (a blocking lock):
    ///   `body` runs in a Task of its own that is cancelled when the kernel interrupts the request
    ///   (the caller got a signal; libfuse marks the request, `fuse_req_interrupted`). The body
    ///   should then throw EINTR; whatever it throws is the one reply.
    static func dispatch<S: ReplyShape>(_ req: fuse_req_t?, _ op: StaticString, _ shape: S.Type, interruptible: Bool = false,
                                        _ body: @escaping @Sendable (any FuseFilesystem) async throws(FSError) -> S.Value) {
        let bridge = from(req)
        let sink = LibfuseSink(req: req!)
        bridge.inflight.add(1, ordering: .relaxed)
        let t0 = ContinuousClock.now
        Task {
            let t1 = bridge.observer.tracing ? ContinuousClock.now : nil
            let reply = Reply<S>(sink, op, hooks: ReplyHooks.of(bridge.fs), observer: bridge.observer, started: t0)
            let fs = bridge.fs
            let result: Result<S.Value, FSError>
            if interruptible {
                result = await cancelledOnInterrupt(sink) { () async throws(FSError) -> S.Value in try await body(fs) }
            } else {
                do throws(FSError) { result = .success(try await body(fs)) } catch { result = .failure(error) }
            }
            reply.finish(result)
            if let t1 {
                let t2 = ContinuousClock.now
                bridge.logger.trace("request", metadata: [
                    "op": "\(op)", "queued_us": "\(microseconds(t0.duration(to: t1)))", "ran_us": "\(microseconds(t1.duration(to: t2)))",
                ])
            }
            bridge.inflight.subtract(1, ordering: .releasing)
        }
    }
}

func microseconds(_ d: Duration) -> Int64 {
    d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000
}

/// Runs `body` in a Task that is cancelled once libfuse has marked the request interrupted
/// (checked every `poll`). Returns only after the poller has stopped, so the request is never
/// touched after the caller replies.
func cancelledOnInterrupt<T: Sendable>(_ request: LibfuseSink, poll: Duration = .milliseconds(20),
                                       _ body: @escaping @Sendable () async throws(FSError) -> T) async -> Result<T, FSError> {
    let work = Task { () async -> Result<T, FSError> in
        do throws(FSError) { return .success(try await body()) } catch { return .failure(error) }
    }
    let poller = Task {
        while !Task.isCancelled {
            // Invariant: the request is not replied before this Task has ended (awaited below).
            if fuse_req_interrupted(request.req) != 0 { work.cancel(); return }
            try? await Task.sleep(for: poll)
        }
    }
    let result = await work.value
    poller.cancel()
    await poller.value
    return result
}
