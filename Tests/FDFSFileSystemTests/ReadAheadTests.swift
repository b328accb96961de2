import Testing
@testable import FDFSFileSystem

@Suite("Read-ahead window")
struct ReadAheadTests {
    let config = ReadAheadConfig(initialWindow: 128 << 10, maxWindow: 8 << 20, chunkSize: 1 << 20)

    @Test func firstReadFetchesTheReadAndTheInitialWindow() {
        var p = ReadAheadPlanner(config: config, fileSize: 100 << 20)
        let plan = p.read(offset: 0, length: 128 << 10)
        #expect(plan.reset)
        #expect(plan.need == 0..<(128 << 10))
        #expect(plan.ahead == (128 << 10)..<(256 << 10))
        #expect(p.window == 128 << 10)
    }

    @Test func sequentialReadsGrowTheWindowUpToTheCap() {
        var p = ReadAheadPlanner(config: config, fileSize: 1 << 30)
        var off: Int64 = 0
        var windows: [Int64] = []
        for _ in 0..<12 {
            let plan = p.read(offset: off, length: 128 << 10)
            #expect(!plan.reset || off == 0)
            off += 128 << 10
            windows.append(p.window)
        }
        #expect(windows == windows.sorted())
        #expect(p.window == config.maxWindow)
        #expect(p.aheadEnd <= off + config.maxWindow)
    }

    @Test func fetchedRangesAreContiguousAndCoverEveryRead() {
        var p = ReadAheadPlanner(config: config, fileSize: 64 << 20)
        var covered: Int64 = 0
        var off: Int64 = 0
        while off < 64 << 20 {
            let plan = p.read(offset: off, length: 128 << 10)
            #expect(!plan.reset || off == 0)
            covered = max(covered, plan.need.upperBound)   // the read itself is always fetched
            if let r = plan.ahead {
                #expect(r.lowerBound == covered, "read-ahead continues where the last one stopped")
                covered = r.upperBound
            }
            off += 128 << 10
        }
        #expect(covered == 64 << 20, "never fetches past the file size")
    }

    @Test func randomReadResetsTheWindow() {
        var p = ReadAheadPlanner(config: config, fileSize: 1 << 30)
        for i in 0..<6 { _ = p.read(offset: Int64(i) * (128 << 10), length: 128 << 10) }
        #expect(p.window > config.initialWindow)
        let plan = p.read(offset: 500 << 20, length: 4096)
        #expect(plan.reset)
        #expect(p.window == config.initialWindow)
        #expect(plan.need.lowerBound == 500 << 20)
        let expected: Int64 = (500 << 20) + 4096
        #expect(plan.ahead?.lowerBound == expected)
    }

    @Test func smallBackwardReadInsideTheSpanIsNotAReset() {
        var p = ReadAheadPlanner(config: config, fileSize: 1 << 30)
        _ = p.read(offset: 0, length: 128 << 10)
        _ = p.read(offset: 128 << 10, length: 128 << 10)
        let plan = p.read(offset: 64 << 10, length: 4096)
        #expect(!plan.reset)
    }

    @Test func outOfOrderConcurrentKernelReadsAreNotResets() {
        // The kernel with read_ahead_kb=1024 sends 1 MiB reads, a few at a time, in any order.
        var p = ReadAheadPlanner(config: config, fileSize: 1 << 30)
        let mib: Int64 = 1 << 20
        #expect(p.read(offset: 0, length: mib).reset)
        for k in stride(from: Int64(1), to: 60, by: 3) {
            for j in [k + 2, k, k + 1] {
                let plan = p.read(offset: j * mib, length: mib)
                #expect(!plan.reset, "read at \(j) MiB")
            }
        }
        #expect(p.window == config.maxWindow)
    }

    @Test func readFarBehindOrAheadIsAReset() {
        var p = ReadAheadPlanner(config: config, fileSize: 1 << 30)
        for i in 0..<20 { _ = p.read(offset: Int64(i) << 20, length: 1 << 20) }
        #expect(p.read(offset: 2 << 20, length: 4096).reset, "18 MiB back")
        for i in 0..<20 { _ = p.read(offset: Int64(i) << 20, length: 1 << 20) }
        #expect(p.read(offset: 200 << 20, length: 4096).reset, "far ahead")
    }

    @Test func aheadStoppedByTheBudgetIsAskedForAgain() {
        var p = ReadAheadPlanner(config: config, fileSize: 1 << 30)
        _ = p.read(offset: 0, length: 1 << 20)
        let plan = p.read(offset: 1 << 20, length: 1 << 20)
        let ahead = try! #require(plan.ahead)
        p.aheadStopped(at: ahead.lowerBound)
        #expect(p.aheadEnd == 2 << 20, "nothing issued past the read")
        let next = p.read(offset: 2 << 20, length: 1 << 20)
        #expect(next.ahead?.lowerBound == 2 << 20, "read-ahead resumes at the reader")
    }

    @Test func memoryBudgetRefusesOverTheLimit() {
        let b = MemoryBudget(limit: 10)
        #expect(b.reserve(6))
        #expect(!b.reserve(5))
        b.release(6)
        #expect(b.reserve(10))
        #expect(b.inUse == 10)
    }
}
