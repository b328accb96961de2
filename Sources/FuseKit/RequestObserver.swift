import CoreMetrics
import FuseTypes
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What the session reports about each request it answers: a log record for a failure (at a
/// level by its errno) and, per operation, a request count, an error count and a latency timer
/// (swift-metrics: `fuse_requests_total`, `fuse_request_errors_total`,
/// `fuse_request_duration_seconds`, each with an `op` dimension). The handles are made once per
/// operation and kept.
final class RequestObserver: Sendable {
    let logger: Logger
    /// Whether each request's queueing and running time is logged (at trace).
    let tracing: Bool
    private let ops = Mutex<[String: OpMetrics]>([:])
    private let factory: any MetricsFactory

    struct OpMetrics: Sendable {
        let requests: Counter
        let errors: Counter
        let duration: CoreMetrics.Timer
    }

    init(logger: Logger, factory: any MetricsFactory = MetricsSystem.factory) {
        self.logger = logger
        self.factory = factory
        tracing = logger.logLevel <= .trace
    }

    /// For replies made outside a session (tests): logs through a default logger.
    static let standalone = RequestObserver(logger: Logger(label: "fdfsfs.fuse"))

    func metrics(_ op: StaticString) -> OpMetrics {
        let name = op.description
        return ops.withLock { ops in
            if let m = ops[name] { return m }
            let dims = [("op", name)]
            let m = OpMetrics(requests: Counter(label: "fuse_requests_total", dimensions: dims, factory: factory),
                              errors: Counter(label: "fuse_request_errors_total", dimensions: dims, factory: factory),
                              duration: CoreMetrics.Timer(label: "fuse_request_duration_seconds", dimensions: dims, factory: factory))
            ops[name] = m
            return m
        }
    }

    /// A request was answered (`errno` nil: with success).
    func answered(_ op: StaticString, started: ContinuousClock.Instant, errno: Int32?) {
        let m = metrics(op)
        m.requests.increment()
        if errno != nil { m.errors.increment() }
        m.duration.recordInterval(since: started)
    }

    /// The log record of a failed request: quiet errors (expected ones: ENOENT of a lookup...)
    /// at debug, EIO/ENOSYS (something broke) at error, the rest at info.
    func failed(_ op: StaticString, _ error: FSError) {
        let metadata: Logger.Metadata = ["op": "\(op)", "errno": "\(error.errno)"]
        if error.quiet {
            logger.debug("\(op): \(error)", metadata: metadata)
        } else if error.errno == EIO || error.errno == ENOSYS {
            logger.error("\(op): \(error)", metadata: metadata)
        } else {
            logger.info("\(op): \(error)", metadata: metadata)
        }
    }
}

extension CoreMetrics.Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let d = start.duration(to: .now)
        recordNanoseconds(d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
    }
}
