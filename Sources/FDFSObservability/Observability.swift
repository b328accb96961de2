// FDFSObservability: what an operator of a mount reads.
//
// Design: the libraries (FastDFS, FuseKit, FDFSFileSystem, FDFSNamingPostgres) only take a
// swift-log `Logger` and record swift-metrics counters, timers and meters; they never choose
// where either goes. The fdfsfs process bootstraps both here, once, before anything logs or
// records: `LogLineHandler` writes one escaped line per record (message, then `key=value`
// metadata) to fd 2, which the daemon points at its log file; metrics go to a Prometheus
// registry that `MetricsEndpoint` serves over HTTP on the mount's unix socket (always) and a TCP
// address (`-o metrics=HOST:PORT`). `fdfsfs stats MOUNTPOINT` scrapes that socket every second
// and prints rates (`MetricsSnapshot` → `StatsRow`, pure).
import CoreMetrics
import Logging
import Prometheus

public enum Observability {
    /// Points swift-log at `LogLineHandler` (fd 2, `level`) and swift-metrics at a new Prometheus
    /// registry, which it returns. Once per process, before the first logger or metric is made.
    public static func bootstrap(level: Logger.Level, program: String = "fdfsfs") -> PrometheusCollectorRegistry {
        LoggingSystem.bootstrap { label in LogLineHandler(label: label, program: program, level: level) }
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // FUSE answers from memory take microseconds; a storage round trip, milliseconds.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(50), .microseconds(200), .milliseconds(1), .milliseconds(5), .milliseconds(20),
            .milliseconds(100), .milliseconds(500), .seconds(2), .seconds(10),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }
}
