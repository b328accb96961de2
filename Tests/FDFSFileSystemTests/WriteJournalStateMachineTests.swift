import Testing
@testable import FDFSFileSystem

/// The write journal's bookkeeping, without files: where records go, rotation, "done" records
/// and which journal files can go.
@Suite("Write journal state machine")
struct WriteJournalStateMachineTests {
    typealias Done = WriteJournalStateMachine.Done

    @Test func theFirstAppendOpensGenerationZeroAndRecordsFollowEachOther() {
        var m = WriteJournalStateMachine(rotateBytes: 1000)
        let p = m.appendRequested()
        #expect(p == .init(generation: 0, closeCurrent: false, openFile: true, remove: [], offset: 0, done: []))
        m.fileOpened()
        #expect(m.appendSucceeded(bytes: 100, writer: 7, done: []) == [])
        let q = m.appendRequested()
        #expect(q == .init(generation: 0, closeCurrent: false, openFile: false, remove: [], offset: 100, done: []))
        #expect(m.live == [0: [7]])
    }

    @Test func aFailedOpenIsTriedAgainOnTheSameFile() {
        var m = WriteJournalStateMachine(rotateBytes: 1000)
        _ = m.appendRequested()
        m.fileOpenFailed()
        let p = m.appendRequested()
        #expect(p.generation == 0 && p.openFile && p.offset == 0)
    }

    @Test func doneRecordsWaitForTheNextWriteAndGoFirstInIt() {
        var m = WriteJournalStateMachine(rotateBytes: 1000)
        _ = m.appendRequested(); m.fileOpened()
        _ = m.appendSucceeded(bytes: 50, writer: 1, done: [])
        m.writerFinished(writer: 1, ino: 10)
        m.writerFinished(writer: 99, ino: 11)   // never wrote here: nothing to record
        #expect(m.pendingDone == [Done(writer: 1, ino: 10)])
        #expect(m.doneWriteRequested()! == (50, [Done(writer: 1, ino: 10)]))
        let p = m.appendRequested()
        #expect(p.done == [Done(writer: 1, ino: 10)] && p.offset == 50)
        // The write failed (nothing reported): still waiting.
        #expect(m.pendingDone.count == 1)
        let q = m.appendRequested()
        _ = m.appendSucceeded(bytes: 80, writer: 2, done: q.done)
        #expect(m.pendingDone.isEmpty && m.live == [0: [2]] && m.size == 130)
        #expect(m.doneWriteRequested() == nil)
    }

    @Test func pastTheRotationSizeANewFileStartsAndTheOldOneGoesOnceItsWritersAreDone() {
        var m = WriteJournalStateMachine(rotateBytes: 100)
        _ = m.appendRequested(); m.fileOpened()
        _ = m.appendSucceeded(bytes: 120, writer: 1, done: [])
        // Writer 1 still live in file 0: the rotation keeps it.
        let p = m.appendRequested()
        #expect(p == .init(generation: 1, closeCurrent: true, openFile: true, remove: [], offset: 0, done: []))
        m.fileOpened()
        _ = m.appendSucceeded(bytes: 40, writer: 2, done: [])
        m.writerFinished(writer: 1, ino: 5)
        let (offset, done) = m.doneWriteRequested()!
        #expect(offset == 40)
        #expect(m.doneWritten(bytes: 40, done: done) == [0], "file 0 has no live writer left")
        #expect(m.live == [1: [2]])
        // A rotation with every writer of the current file done removes it at once.
        _ = m.appendSucceeded(bytes: 100, writer: nil, done: [])
        m.writerFinished(writer: 2, ino: 6)
        let r = m.appendRequested()
        #expect(r.generation == 2 && r.closeCurrent && r.remove == [] && r.done == [Done(writer: 2, ino: 6)])
        m.fileOpened()
        #expect(m.appendSucceeded(bytes: 120, writer: 3, done: r.done) == [1])
        m.writerFinished(writer: 3, ino: 7)
        let s = m.appendRequested()
        #expect(s.remove == [] && s.generation == 3, "file 2 still had writer 3 until its done record is written")
    }

    @Test func theUnmountRemovesTheFilesOnlyWhenEveryWriterIsDone() {
        var m = WriteJournalStateMachine(rotateBytes: 100)
        _ = m.appendRequested(); m.fileOpened()
        _ = m.appendSucceeded(bytes: 150, writer: 1, done: [])
        _ = m.appendRequested(); m.fileOpened()
        _ = m.appendSucceeded(bytes: 10, writer: 2, done: [])
        m.writerFinished(writer: 1, ino: 1)
        #expect(m.unmountRequested() == nil, "writer 2 is not done: its bytes are only here")
        m.writerFinished(writer: 2, ino: 2)
        #expect(m.unmountRequested() == [0, 1], "a done record still waiting counts as done")
        #expect(m.live.isEmpty && m.pendingDone.isEmpty && !m.isOpen)
    }
}
