import CoreMetrics
import Prometheus
import Testing
@testable import FDFSObservability
#if canImport(Glibc)
import Glibc
#endif

@Suite("Metrics endpoint")
struct MetricsEndpointTests {
    @Test func servesTheRegistryOnTCPAndTheUnixSocket() async throws {
        let registry = PrometheusCollectorRegistry()
        // Through swift-metrics, as the libraries record.
        let counter = Counter(label: "fuse_requests_total", dimensions: [("op", "read")], factory: PrometheusMetricsFactory(registry: registry))
        counter.increment(by: 3)
        let path = "/tmp/fdfsfs-endpoint-test-\(getpid()).sock"
        let endpoint = try await MetricsEndpoint.start(registry: registry, listeners: [.tcp(host: "127.0.0.1", port: 0), .unix(path: path)])
        let port = try #require(endpoint.tcpPort)
        let viaTCP = try await Task.detached { try MetricsScrape.fetch(.tcp(host: "127.0.0.1", port: port)) }.value
        #expect(MetricsSnapshot(parsing: viaTCP).total("fuse_requests_total") == 3)
        counter.increment()
        let viaSocket = try await Task.detached { try MetricsScrape.fetch(.unix(path: path)) }.value
        #expect(MetricsSnapshot(parsing: viaSocket).total("fuse_requests_total") == 4)
        await endpoint.close()
        #expect(access(path, F_OK) != 0)
        #expect(throws: MetricsScrape.Failure.self) { try MetricsScrape.fetch(.unix(path: path)) }
    }
}
