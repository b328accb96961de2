import FuseTypes
import Logging
import MetricsTestKit
import Testing
@testable import FuseKit
#if canImport(Glibc)
import Glibc
#endif

@Suite("Per-operation request metrics")
struct RequestMetricsTests {
    @Test func everyAnswerIsCountedOnceWithItsErrorsAndLatency() throws {
        let metrics = TestMetrics()
        let observer = RequestObserver(logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), factory: metrics)
        let sink = RecordingSink(), h = HookRecorder()
        Reply<DataReply>(sink, "read", hooks: h.hooks, observer: observer).send([1, 2, 3])
        Reply<DataReply>(sink, "read", hooks: h.hooks, observer: observer).send([4])
        Reply<EntryReply>(sink, "lookup", hooks: h.hooks, observer: observer).fail(FSError(ENOENT, "no such name", quiet: true))
        do { _ = Reply<EmptyReply>(sink, "unlink", hooks: h.hooks, observer: observer) }   // dropped: EIO, counted as an error
        #expect(try metrics.expectCounter("fuse_requests_total", [("op", "read")]).totalValue == 2)
        #expect(try metrics.expectCounter("fuse_requests_total", [("op", "lookup")]).totalValue == 1)
        #expect(try metrics.expectCounter("fuse_request_errors_total", [("op", "lookup")]).totalValue == 1)
        #expect(try metrics.expectCounter("fuse_request_errors_total", [("op", "unlink")]).totalValue == 1)
        #expect(try metrics.expectCounter("fuse_request_errors_total", [("op", "read")]).totalValue == 0)
        #expect(try metrics.expectTimer("fuse_request_duration_seconds", [("op", "read")]).values.count == 2)
        #expect(sink.all.count == 4)
    }
}
