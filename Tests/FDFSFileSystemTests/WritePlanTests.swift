import Testing
@testable import FDFSFileSystem

@Suite("DirtyRanges")
struct DirtyRangesTests {
    func pairs(_ d: DirtyRanges) -> [[Int64]] { d.ranges.map { [$0.lo, $0.hi] } }

    @Test func insertMergesOverlappingAndAdjacentRanges() {
        var d = DirtyRanges()
        d.insert(10, 20); d.insert(30, 40); d.insert(20, 25); d.insert(0, 5)
        #expect(pairs(d) == [[0, 5], [10, 25], [30, 40]])
        d.insert(4, 31)
        #expect(pairs(d) == [[0, 40]])
        #expect(d.byteCount == 40)
    }

    @Test func removeSplitsRanges() {
        var d = DirtyRanges([(0, 100)])
        d.remove(10, 20); d.remove(90, 200)
        #expect(pairs(d) == [[0, 10], [20, 90]])
        #expect(d.gaps(0, 100).map { [$0.lo, $0.hi] } == [[10, 20], [90, 100]])
        #expect(d.intersection(5, 25).map { [$0.lo, $0.hi] } == [[5, 10], [20, 25]])
    }

    @Test func contiguousEndFollowsTheRunCoveringAnOffset() {
        let d = DirtyRanges([(0, 10), (20, 30)])
        #expect(d.contiguousEnd(from: 5) == 10)
        #expect(d.contiguousEnd(from: 10) == 10)
        #expect(d.contiguousEnd(from: 20) == 30)
    }
}

@Suite("WritePlan")
struct WritePlanTests {
    let mib: Int64 = 1 << 20

    @Test func sequentialWritesOfANewFileShipInWholeChunksThenTheTailAtClose() {
        var s = WriteState(fileID: nil, size: 0, appender: false)
        s.wrote(0, 10 * mib)
        #expect(s.plan(chunk: 4 * mib, final: false) == [.upload(4 * mib), .modify(4 * mib, 8 * mib)])
        #expect(s.plan(chunk: 4 * mib, final: true) == [.upload(4 * mib), .modify(4 * mib, 8 * mib), .modify(8 * mib, 10 * mib)])
    }

    @Test func anEditInsideAnAppenderIsOneModifyOfItsSize() {
        var s = WriteState(fileID: "group1/M00/00/00/x", size: 100 * mib, appender: true)
        s.wrote(50 * mib, 4096)
        #expect(s.plan(chunk: 4 * mib, final: true) == [.modify(50 * mib, 50 * mib + 4096)])
        #expect(s.plan(chunk: 4 * mib, final: false) == [.modify(50 * mib, 50 * mib + 4096)])
    }

    @Test func writesPastEOFAreModifiesAtExplicitOffsetsWithShortHolesSentAsZeros() {
        var s = WriteState(fileID: "g/M00/00/00/x", size: 100, appender: true)
        s.wrote(90, 20)     // straddles EOF
        s.wrote(200, 10)    // leaves a short hole
        #expect(s.plan(chunk: 4 * mib, final: true) == [.modify(90, 100), .modify(100, 110), .modify(110, 210)])
    }

    @Test func shrinkThenGrowTruncatesOnTheServerThenGrowsWithTruncate() {
        var s = WriteState(fileID: "g/M00/00/00/x", size: 100, appender: true)
        s.resize(50)
        s.resize(80)
        #expect(s.truncateTo == 50)
        #expect(s.plan(chunk: 4 * mib, final: true) == [.truncate(50), .truncate(80)])
    }

    @Test func growingToAPetabyteIsOneTruncateNotOneStepPerChunk() {
        var s = WriteState(fileID: "g/M00/00/00/x", size: 100, appender: true)
        s.resize(1 << 50)
        #expect(s.plan(chunk: 4 * mib, final: true) == [.truncate(1 << 50)])
        var fresh = WriteState(fileID: nil, size: 0, appender: false)
        fresh.resize(1 << 50)
        #expect(fresh.plan(chunk: 4 * mib, final: true) == [.upload(0), .truncate(1 << 50)])
    }

    @Test func aWriteAtATerabyteSendsOnlyItsBytesAfterASparseGrow() {
        let tib: Int64 = 1 << 40
        var s = WriteState(fileID: nil, size: 0, appender: false)
        s.wrote(tib, 4096)
        #expect(s.plan(chunk: 4 * mib, final: true) == [.upload(0), .truncate(tib), .modify(tib, tib + 4096)])
        // While writing, whole chunks past the hole stream out too.
        var a = WriteState(fileID: "g/M00/00/00/x", size: 0, appender: true)
        a.wrote(tib, 8 * mib + 5)
        #expect(a.plan(chunk: 4 * mib, final: false) == [.truncate(tib), .modify(tib, tib + 4 * mib), .modify(tib + 4 * mib, tib + 8 * mib)])
    }

    @Test func aNormalFileIsCopiedOnWrite() {
        var s = WriteState(fileID: "g/M00/00/00/n", size: 10 * mib, appender: false)
        #expect(s.baseID == "g/M00/00/00/n" && s.fileID == nil)
        #expect(s.isClean, "opening for write without writing changes nothing")
        s.wrote(100, 10)
        #expect(!s.isClean)
        // The copy streams out as soon as whole chunks of the source are known.
        #expect(s.plan(chunk: 4 * mib, final: false) == [.upload(4 * mib), .modify(4 * mib, 8 * mib)])
        #expect(s.plan(chunk: 4 * mib, final: true).count == 3)
    }

    @Test func truncatingANormalFileToZeroDropsItsSource() {
        var s = WriteState(fileID: "g/M00/00/00/n", size: 10, appender: false)
        s.resize(0)
        #expect(s.baseID == nil && !s.isClean)
        #expect(s.plan(chunk: 4 * mib, final: true) == [.upload(0)], "an emptied file still gets an (empty) appender file")
    }

    @Test func nothingShipsWhileTheContiguousRunIsShorterThanAChunk() {
        var s = WriteState(fileID: nil, size: 0, appender: false)
        s.wrote(0, 3 * mib)
        s.wrote(5 * mib, 4 * mib)   // out of order: not contiguous with the server's end
        #expect(s.plan(chunk: 4 * mib, final: false) == [])
    }
}

@Suite("Write state in a shared tree")
struct SharedWriteStateTests {
    let mib: Int64 = 1 << 20

    @Test func aChangeBelowTheCommittedSizeMakesTheFileACopyAndLeavesTheServersFileAlone() {
        var s = WriteState(fileID: "g/M00/00/00/app", size: 8 * mib, appender: true)
        #expect(!s.changesCommittedBytes(at: 8 * mib), "appends past the committed size stay in place")
        #expect(s.changesCommittedBytes(at: 0))
        s.copyInsteadOfChanging()
        #expect(s.fileID == nil && s.baseID == "g/M00/00/00/app" && s.baseSize == 8 * mib)
        s.wrote(0, 100)
        #expect(s.plan(chunk: 4 * mib, final: true) == [.upload(4 * mib), .modify(4 * mib, 8 * mib)],
                "a new appender built from the old file and the edit; no request to the old file")
        #expect(!s.changesCommittedBytes(at: 0), "once a copy, nothing to guard")
    }

    @Test func bytesAlreadyAppendedInPlaceStayPartOfTheBase() {
        var s = WriteState(fileID: "g/M00/00/00/app", size: 100, appender: true)
        s.remoteSize = 150   // 50 bytes appended in place, shipped, not committed
        s.size = 150
        s.copyInsteadOfChanging()
        #expect(s.baseSize == 150 && s.baseID == "g/M00/00/00/app")
    }

    @Test func aPendingShrinkIsTakenIntoTheBaseNotSent() {
        var s = WriteState(fileID: "g/M00/00/00/app", size: 100, appender: true)
        s.copyInsteadOfChanging()
        s.resize(0)
        #expect(s.baseID == nil && s.fileID == nil)
        #expect(s.plan(chunk: 4 * mib, final: true) == [.upload(0)], "an empty new file, the old one untouched")
    }
}
