import Testing
@testable import FDFSFileSystem

@Suite("InodeTable")
struct InodeTableTests {
    @Test func lookupCountsAndForget() {
        var t = InodeTable()
        t.increment(5)
        t.increment(5)
        #expect(t.lookupCount(5) == 2)
        #expect(t.forget(5, 1) == .none)
        #expect(t.lookupCount(5) == 1)
        #expect(t.forget(5, 1) == .none)
        #expect(t.lookupCount(5) == 0)
    }

    @Test func rootIsNeverForgotten() {
        var t = InodeTable()
        t.increment(InodeTable.root)
        #expect(t.forget(InodeTable.root, 10) == .none)
        #expect(t.lookupCount(InodeTable.root) == 1)
    }

    @Test func unlinkedWhileLookedUpBecomesZombieUntilForget() {
        var t = InodeTable()
        t.increment(7, by: 3)
        #expect(t.unlinked(7) == false)
        #expect(t.zombies.contains(7))
        #expect(t.forget(7, 2) == .none)
        #expect(t.forget(7, 1) == .purge(7))
        #expect(!t.zombies.contains(7))
    }

    @Test func zombieWaitsForLastOpenHandle() {
        var t = InodeTable()
        t.increment(9)
        t.opened(9)
        t.opened(9)
        #expect(t.unlinked(9) == false)
        #expect(t.forget(9, 1) == .none)
        #expect(t.closed(9) == .none)
        #expect(t.closed(9) == .purge(9))
    }

    @Test func unreferencedNodeIsPurgedAtOnce() {
        var t = InodeTable()
        #expect(t.unlinked(11) == true)
    }

    @Test func byIDNumbersAreStableWhileReferencedAndReleasedAfter() {
        var t = InodeTable()
        let a = t.byIDIno(for: "group1/M00")
        #expect(InodeTable.isByID(a))
        #expect(t.byIDIno(for: "group1/M00") == a)
        #expect(t.byIDPath(a) == "group1/M00")
        t.increment(a)
        #expect(t.forget(a, 1) == .none)
        #expect(t.byIDPath(a) == nil)
        let b = t.byIDIno(for: "group1/M00")
        #expect(b == a, "a path gets its own number back after release")
    }

    @Test func byIDNumbersAreStableAcrossRemounts() {
        var first = InodeTable(), second = InodeTable()
        let id = "group1/M00/00/00/wKgBaGVT8QCAEjRWAAAACcv0OSY123.txt"
        _ = second.byIDIno(for: "group1/M00")   // a different allocation order in the second mount
        #expect(first.byIDIno(for: id) == second.byIDIno(for: id))
        #expect(first.byIDIno(for: id) == InodeTable.stableByIDIno(for: id))
        #expect(first.byIDIno(for: "group1/M00") != first.byIDIno(for: id))
        #expect(InodeTable.isByID(InodeTable.stableByIDIno(for: "")))
    }

    @Test func forgetDuringALookupKeepsTheByIDPath() {
        var t = InodeTable()
        let a = t.byIDIno(for: "group1/M00/00/00/x")
        t.increment(a)
        // a second lookup hands out the same number, then the old reference is forgotten
        #expect(t.byIDIno(for: "group1/M00/00/00/x") == a)
        _ = t.forget(a, 1)
        t.increment(a)
        #expect(t.byIDPath(a) == "group1/M00/00/00/x")
    }
}
