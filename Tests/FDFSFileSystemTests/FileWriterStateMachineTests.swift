import Testing
import FuseTypes
@testable import FDFSFileSystem
#if canImport(Glibc)
import Glibc
#endif

/// The write-back decisions, event by event, with an injected clock (issue 13 part 1).
@Suite("FileWriterStateMachine")
struct FileWriterStateMachineTests {
    let chunk: Int64 = 100

    func fresh() -> FileWriterStateMachine {
        FileWriterStateMachine(state: WriteState(fileID: nil, size: 0, appender: false), chunk: chunk)
    }

    @Test func streamingSendsOneWholeChunkAtATimeAndThrottlesAtTwoStaged() {
        var m = fresh()
        m.bytesStaged(offset: 0, count: 50)
        #expect(m.nextStreamingStep(now: 0) == nil, "less than a chunk: nothing to send yet")
        m.bytesStaged(offset: 50, count: 100)
        #expect(m.nextStreamingStep(now: 0) == .upload(100))
        #expect(m.inFlight == .upload(100))
        m.bytesStaged(offset: 150, count: 100)
        #expect(m.nextStreamingStep(now: 0) == nil, "one request in flight at a time")
        #expect(m.shouldThrottle, "two chunks staged behind a request in flight: writes wait")
        let punch = m.stepSucceeded(uploadedID: "g/M00/00/00/x")
        #expect(punch.map { [$0.lo, $0.hi] } == [[0, 100]])
        #expect(m.state.fileID == "g/M00/00/00/x" && m.state.remoteSize == 100)
        #expect(m.inFlight == nil && !m.shouldThrottle)
        #expect(m.nextStreamingStep(now: 0) == .modify(100, 200), "the next chunk extends the file with MODIFY")
    }

    @Test func bytesWrittenIntoTheRangeInFlightStayDirtyAndAreNotPunched() {
        var m = FileWriterStateMachine(state: WriteState(fileID: "g/M00/00/00/a", size: 1000, appender: true), chunk: chunk)
        m.bytesStaged(offset: 200, count: 100)
        #expect(m.nextStreamingStep(now: 0) == .modify(200, 300))
        m.bytesStaged(offset: 250, count: 10)   // newer than what the request carries
        m.bytesStaged(offset: 500, count: 10)   // outside it
        let punch = m.stepSucceeded()
        #expect(punch.map { [$0.lo, $0.hi] } == [[200, 250], [260, 300]])
        #expect(m.state.dirty.ranges.map { [$0.lo, $0.hi] } == [[250, 260], [500, 510]])
    }

    @Test func aFailureBacksStreamingOffForFiveSecondsAndMakesTheServerSizeUncertain() {
        var m = FileWriterStateMachine(state: WriteState(fileID: "g/M00/00/00/a", size: 0, appender: true), chunk: chunk)
        m.bytesStaged(offset: 0, count: 300)
        #expect(m.nextStreamingStep(now: 10) == .modify(0, 100))
        m.stepFailed(FSError(EIO, "storage down"), now: 10)
        #expect(m.state.remoteUncertain && m.mustVerify)
        #expect(m.lastError?.errno == EIO && m.inFlight == nil)
        #expect(m.state.dirty.byteCount == 300, "nothing is dropped")
        #expect(m.nextStreamingStep(now: 14.9) == nil, "backing off")
        #expect(m.nextStreamingStep(now: 15) == .modify(0, 100))
        _ = m.stepSucceeded()
        #expect(m.lastError == nil)
    }

    @Test func aDurabilityPointSendsEverythingAndSaysWhichStepIsTheLast() {
        var m = fresh()
        m.bytesStaged(offset: 0, count: 250)
        var sent: [WriteState.Step] = []
        var lasts: [Bool] = []
        while let (step, isLast) = m.nextFinalStep() {
            sent.append(step)
            lasts.append(isLast)
            _ = m.stepSucceeded(uploadedID: sent.count == 1 ? "g/M00/00/00/n" : nil)
        }
        #expect(sent == [.upload(100), .modify(100, 200), .modify(200, 250)])
        #expect(lasts == [false, false, true])
        #expect(m.state.dirty.isEmpty && m.state.remoteSize == 250)
        m.requestFailed(FSError(EIO, "x"), now: 1)
        m.committed()
        #expect(m.lastError == nil && !m.backingOff(now: 1))
    }

    @Test func aCopyOnWriteEndsOnceTheNewFileHoldsTheOldBytes() {
        var m = FileWriterStateMachine(state: WriteState(fileID: "g/M00/00/00/normal", size: 150, appender: false), chunk: chunk)
        m.bytesStaged(offset: 10, count: 5)
        #expect(m.nextFinalStep()?.step == .upload(100))
        _ = m.stepSucceeded(uploadedID: "g/M00/00/00/copy")
        #expect(m.state.baseID != nil, "50 bytes of the old file still to copy")
        #expect(m.nextFinalStep()?.step == .modify(100, 150))
        _ = m.stepSucceeded()
        #expect(m.state.baseID == nil && m.state.fileID == "g/M00/00/00/copy")
    }
}
