import CoreMetrics
import FastDFSProtocol
import Synchronization

/// The client's swift-metrics: per FastDFS command a request count, an error count and a
/// latency timer (`fdfs_requests_total`, `fdfs_request_errors_total`,
/// `fdfs_request_duration_seconds`, dimension `command`, e.g. `UPLOAD_FILE`), and the number of
/// open connections (`fdfs_pool_connections`). With no metrics factory bootstrapped in the
/// process these cost a lock and a no-op call per request.
final class ClientMetrics: Sendable {
    struct Command: Sendable {
        let requests: Counter
        let errors: Counter
        let duration: CoreMetrics.Timer
    }

    private let commands = Mutex<[FDFSCommand: Command]>([:])
    let connections = Meter(label: "fdfs_pool_connections")

    func command(_ c: FDFSCommand) -> Command {
        commands.withLock { all in
            if let m = all[c] { return m }
            let dims = [("command", c.name)]
            let m = Command(requests: Counter(label: "fdfs_requests_total", dimensions: dims),
                            errors: Counter(label: "fdfs_request_errors_total", dimensions: dims),
                            duration: CoreMetrics.Timer(label: "fdfs_request_duration_seconds", dimensions: dims))
            all[c] = m
            return m
        }
    }

    func finished(_ c: FDFSCommand, started: ContinuousClock.Instant, failed: Bool) {
        let m = command(c)
        m.requests.increment()
        if failed { m.errors.increment() }
        let d = started.duration(to: .now)
        m.duration.recordNanoseconds(d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
    }
}
