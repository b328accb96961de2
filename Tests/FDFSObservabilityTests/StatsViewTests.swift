import Testing
@testable import FDFSObservability

@Suite("fdfsfs stats")
struct StatsViewTests {
    static let first = """
        # TYPE fuse_requests_total counter
        fuse_requests_total{op="read"} 100
        fuse_requests_total{op="lookup"} 50
        fuse_request_errors_total{op="lookup"} 5
        # TYPE fuse_request_duration_seconds histogram
        fuse_request_duration_seconds_bucket{op="read",le="0.001"} 90
        fuse_request_duration_seconds_sum{op="read"} 0.5
        fuse_request_duration_seconds_count{op="read"} 100
        fdfsfs_read_bytes_total 1048576
        fdfsfs_written_bytes_total 0
        fdfs_requests_total{command="DOWNLOAD_FILE"} 10
        fdfs_request_duration_seconds_sum{command="DOWNLOAD_FILE"} 0.1
        fdfs_request_duration_seconds_count{command="DOWNLOAD_FILE"} 10
        fdfsfs_readahead_hits_total 0
        fdfsfs_readahead_misses_total 0
        fdfsfs_staged_bytes 0
        fdfs_pool_connections{} 2

        """
    static let second = """
        fuse_requests_total{op="read"} 300
        fuse_requests_total{op="lookup"} 50
        fuse_request_errors_total{op="lookup"} 7
        fuse_request_duration_seconds_bucket{op="read",le="0.001"} 250
        fuse_request_duration_seconds_sum{op="read"} 0.9
        fuse_request_duration_seconds_count{op="read"} 300
        fdfsfs_read_bytes_total 5242880
        fdfsfs_written_bytes_total 2097152
        fdfs_requests_total{command="DOWNLOAD_FILE"} 30
        fdfs_request_duration_seconds_sum{command="DOWNLOAD_FILE"} 0.5
        fdfs_request_duration_seconds_count{command="DOWNLOAD_FILE"} 30
        fdfsfs_readahead_hits_total 3
        fdfsfs_readahead_misses_total 1
        fdfsfs_staged_bytes 3145728
        fdfsfs_pending_deletes 4
        fdfs_pool_connections{} 3
        """

    @Test func aScrapeSumsEachNameOverItsLabelSets() {
        let s = MetricsSnapshot(parsing: Self.first)
        #expect(s.total("fuse_requests_total") == 150)
        #expect(s.byLabels["fuse_requests_total"]?["op=\"read\""] == 100)
        #expect(s.total("fuse_request_duration_seconds_count") == 100)
        #expect(s.totals["fuse_request_duration_seconds_bucket"] == nil)
        #expect(s.total("fdfs_pool_connections") == 2)
    }

    @Test func aRowIsRatesOverTheInterval() {
        let row = StatsRow(from: MetricsSnapshot(parsing: Self.first), to: MetricsSnapshot(parsing: Self.second), seconds: 2)
        #expect(row.fuseOps == 100)
        #expect(row.fuseErrors == 1)
        #expect(abs(row.fuseLatencyMs - 2) < 1e-9)     // 0.4 s over 200 requests
        #expect(row.readMiB == 2)
        #expect(row.writeMiB == 1)
        #expect(row.fdfsRequests == 10)
        #expect(abs(row.fdfsLatencyMs - 20) < 1e-9)
        #expect(row.readAheadHitPercent == 75)
        #expect(row.stagedMiB == 3)
        #expect(row.pendingDeletes == 4)
        #expect(row.connections == 3)
        let line = row.render(time: "12:00:00")
        #expect(line.count == StatsRow.header[1].count)
        #expect(line.contains(" 100 "))
    }

    @Test func noReadsShowNoHitRate() {
        let s = MetricsSnapshot(parsing: Self.first)
        #expect(StatsRow(from: s, to: s, seconds: 1).readAheadHitPercent == nil)
    }

    @Test func tcpAddressesParse() {
        #expect(MetricsEndpoint.parseTCP("127.0.0.1:9567") == .tcp(host: "127.0.0.1", port: 9567))
        #expect(MetricsEndpoint.parseTCP("[::1]:80") == .tcp(host: "::1", port: 80))
        #expect(MetricsEndpoint.parseTCP("9567") == nil)
        #expect(MetricsEndpoint.parseTCP("host:99999") == nil)
    }
}
