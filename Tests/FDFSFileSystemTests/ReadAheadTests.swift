import Testing
@testable import FDFSFileSystem

@Suite("Read-ahead window")
struct ReadAheadTests {
    let config = ReadAheadConfig(initialWindow: 128 << 10, maxWindow: 8 << 20, chunkSize: 1 << 20)

    @Test func firstReadFetchesTheReadAndTheInitialWindow() {
        var p = ReadAheadPlanner(config: config, fileSize: 100 << 20)
        let plan = p.read(offset: 0, length: 128 << 10)
        #expect(plan.reset)
        #expect(plan.fetch.first?.lowerBound == 0)
        #expect(plan.fetch.last?.upperBound == 256 << 10)
        #expect(p.window == 128 << 10)
    }

    @Test func sequentialReadsGrowTheWindowUpToTheCap() {
        var p = ReadAheadPlanner(config: config, fileSize: 1 << 30)
        var off: Int64 = 0
        var windows: [Int64] = []
        for _ in 0..<12 {
            let plan = p.read(offset: off, length: 128 << 10)
            #expect(!plan.reset || off == 0)
            for r in plan.fetch { #expect(r.count <= Int(config.chunkSize)) }
            off += 128 << 10
            windows.append(p.window)
        }
        #expect(windows == windows.sorted())
        #expect(p.window == config.maxWindow)
        #expect(p.issuedEnd <= off + config.maxWindow)
    }

    @Test func fetchedRangesAreContiguousAndCoverEveryRead() {
        var p = ReadAheadPlanner(config: config, fileSize: 64 << 20)
        var covered: Int64 = 0
        var off: Int64 = 0
        while off < 64 << 20 {
            let plan = p.read(offset: off, length: 128 << 10)
            for r in plan.fetch {
                #expect(r.lowerBound == covered)
                covered = r.upperBound
            }
            #expect(covered >= min(64 << 20, off + (128 << 10)))
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
        #expect(plan.fetch.first?.lowerBound == 500 << 20)
    }

    @Test func smallBackwardReadInsideTheSpanIsNotAReset() {
        var p = ReadAheadPlanner(config: config, fileSize: 1 << 30)
        _ = p.read(offset: 0, length: 128 << 10)
        _ = p.read(offset: 128 << 10, length: 128 << 10)
        let plan = p.read(offset: 64 << 10, length: 4096)
        #expect(!plan.reset)
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
