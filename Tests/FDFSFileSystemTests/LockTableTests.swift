import Testing
import FuseTypes
@testable import FDFSFileSystem
#if canImport(Glibc)
import Glibc
#endif

private let A = LockOwner(session: "m1", id: 1)
private let B = LockOwner(session: "m1", id: 2)
/// Same owner number as A, on another mount: a different owner.
private let A2 = LockOwner(session: "m2", id: 1)
private let EOF_ = Int64.max

/// The errno `body` fails with, nil when it succeeds.
func errnoOf(_ body: () async throws(FSError) -> Void) async -> Int32? {
    do throws(FSError) { try await body(); return nil } catch { return error.errno }
}

private func posix(_ o: LockOwner, _ t: LockType, _ s: Int64, _ e: Int64, pid: Int32 = 0) -> LockRequest {
    LockRequest(owner: o, kind: .posix, type: t, start: s, end: e, pid: pid)
}
private func flock(_ o: LockOwner, _ t: LockType, pid: Int32 = 0) -> LockRequest {
    LockRequest(owner: o, kind: .flock, type: t, pid: pid)
}
/// The owner's posix ranges on inode 1 as (type, start, end).
private func ranges(_ t: LockTable, _ o: LockOwner, kind: LockKind = .posix, ino: UInt64 = 1) -> [String] {
    t.rows(ino: ino, owner: o, kind: kind).map { "\($0.type == .read ? "r" : "w")\($0.start)-\($0.end == EOF_ ? "eof" : String($0.end))" }
}

@Suite("LockTable: POSIX record locks")
struct LockTablePosixTests {
    @Test func setAndReadBack() {
        var t = LockTable()
        #expect(t.set(ino: 1, posix(A, .write, 0, 99, pid: 10)) == .granted)
        #expect(ranges(t, A) == ["w0-99"])
        let r = t.rows(ino: 1)[0]
        #expect(r.owner == 1 && r.session == "m1" && r.pid == 10 && r.kind == .posix && r.ino == 1)
        #expect(t.rows(ino: 2).isEmpty)
    }

    @Test func readLocksShareWriteLocksExclude() {
        var t = LockTable()
        #expect(t.set(ino: 1, posix(A, .read, 0, 99)) == .granted)
        #expect(t.set(ino: 1, posix(B, .read, 50, 150)) == .granted)
        #expect(t.set(ino: 1, posix(B, .write, 50, 60)) == .conflict(t.rows(ino: 1, owner: A, kind: .posix)[0]))
        var u = LockTable()
        u.set(ino: 1, posix(A, .write, 10, 19))
        #expect(u.conflict(ino: 1, posix(B, .read, 0, 10)) != nil, "overlap at one byte")
        #expect(u.conflict(ino: 1, posix(B, .read, 0, 9)) == nil, "adjacent is not overlapping")
        #expect(u.conflict(ino: 1, posix(B, .write, 20, EOF_)) == nil)
        #expect(u.conflict(ino: 2, posix(B, .write, 0, EOF_)) == nil, "other inode")
    }

    @Test func conflictLeavesTableUnchanged() {
        var t = LockTable()
        t.set(ino: 1, posix(A, .write, 0, 9))
        let before = t
        guard case .conflict(let c) = t.set(ino: 1, posix(B, .read, 5, 20, pid: 7)) else { Issue.record("expected a conflict"); return }
        #expect(c.owner == 1 && c.start == 0 && c.end == 9)
        #expect(t == before)
    }

    @Test func anOwnerNeverConflictsWithItself() {
        var t = LockTable()
        t.set(ino: 1, posix(A, .read, 0, 99))
        #expect(t.set(ino: 1, posix(A, .write, 10, 19)) == .granted)
        #expect(ranges(t, A) == ["r0-9", "w10-19", "r20-99"], "upgrade in the middle splits")
    }

    @Test func sameNumberOnAnotherMountIsAnotherOwner() {
        var t = LockTable()
        t.set(ino: 1, posix(A, .write, 0, EOF_))
        #expect(t.conflict(ino: 1, posix(A2, .read, 0, 0)) != nil)
        #expect(t.conflict(ino: 1, posix(A, .write, 0, 0)) == nil)
    }

    @Test func toEOFOverlapsEverythingAfterItsStart() {
        var t = LockTable()
        t.set(ino: 1, posix(A, .write, 1000, EOF_))
        #expect(t.conflict(ino: 1, posix(B, .read, Int64.max - 1, Int64.max - 1)) != nil)
        #expect(t.conflict(ino: 1, posix(B, .read, 0, 999)) == nil)
        #expect(t.conflict(ino: 1, posix(B, .read, 999, 1000)) != nil)
    }

    @Test func unlockOfASubRangeSplits() {
        var t = LockTable()
        t.set(ino: 1, posix(A, .write, 0, EOF_))
        t.set(ino: 1, posix(A, .unlock, 100, 199))
        #expect(ranges(t, A) == ["w0-99", "w200-eof"])
        #expect(t.conflict(ino: 1, posix(B, .write, 100, 199)) == nil)
        #expect(t.conflict(ino: 1, posix(B, .write, 99, 100)) != nil)
        t.set(ino: 1, posix(A, .unlock, 0, 0))
        #expect(ranges(t, A) == ["w1-99", "w200-eof"])
        t.set(ino: 1, posix(A, .unlock, 50, EOF_))
        #expect(ranges(t, A) == ["w1-49"])
        t.set(ino: 1, posix(A, .unlock, 0, EOF_))
        #expect(t.isEmpty)
    }

    @Test func unlockWithoutLocksIsGranted() {
        var t = LockTable()
        #expect(t.set(ino: 1, posix(A, .unlock, 0, EOF_)) == .granted)
        #expect(t.isEmpty)
        t.set(ino: 1, posix(B, .write, 0, EOF_))
        #expect(t.set(ino: 1, posix(A, .unlock, 0, EOF_)) == .granted, "unlock never conflicts")
        #expect(ranges(t, B) == ["w0-eof"])
    }

    @Test func adjacentAndOverlappingRangesOfOneTypeMerge() {
        var t = LockTable()
        t.set(ino: 1, posix(A, .read, 0, 9))
        t.set(ino: 1, posix(A, .read, 10, 19))
        #expect(ranges(t, A) == ["r0-19"])
        t.set(ino: 1, posix(A, .read, 30, 39))
        #expect(ranges(t, A) == ["r0-19", "r30-39"])
        t.set(ino: 1, posix(A, .read, 15, 34))
        #expect(ranges(t, A) == ["r0-39"])
        t.set(ino: 1, posix(A, .read, 40, EOF_))
        #expect(ranges(t, A) == ["r0-eof"])
    }

    @Test func differentTypesDoNotMerge() {
        var t = LockTable()
        t.set(ino: 1, posix(A, .read, 0, 9))
        t.set(ino: 1, posix(A, .write, 10, 19))
        #expect(ranges(t, A) == ["r0-9", "w10-19"])
        // Downgrade the write part: now it merges.
        t.set(ino: 1, posix(A, .read, 10, 19))
        #expect(ranges(t, A) == ["r0-19"])
    }

    @Test func replacingACoveringRangeChangesItsType() {
        var t = LockTable()
        t.set(ino: 1, posix(A, .write, 10, 19))
        t.set(ino: 1, posix(A, .write, 30, 39))
        t.set(ino: 1, posix(A, .read, 0, 100))
        #expect(ranges(t, A) == ["r0-100"])
    }

    @Test func ownerRowsAreIndependentOfOthers() {
        var t = LockTable()
        t.set(ino: 1, posix(A, .read, 0, 9))
        t.set(ino: 1, posix(B, .read, 5, 14))
        t.set(ino: 1, posix(A, .read, 10, 19))
        #expect(ranges(t, A) == ["r0-19"])
        #expect(ranges(t, B) == ["r5-14"])
    }

    @Test func firstConflictIsTheLowestStartWithItsPid() {
        var t = LockTable()
        t.set(ino: 1, posix(B, .write, 50, 59, pid: 22))
        t.set(ino: 1, posix(A2, .read, 10, 19, pid: 11))
        let c = t.conflict(ino: 1, posix(A, .write, 0, EOF_))
        #expect(c?.start == 10 && c?.pid == 11 && c?.session == "m2")
        let d = t.conflict(ino: 1, posix(A, .read, 0, EOF_))
        #expect(d?.start == 50 && d?.pid == 22 && d?.type == .write, "read locks do not conflict with reads")
    }

    @Test func pidOfAMergedRangeIsTheLatest() {
        var t = LockTable()
        t.set(ino: 1, posix(A, .read, 0, 9, pid: 1))
        t.set(ino: 1, posix(A, .read, 10, 19, pid: 2))
        #expect(t.rows(ino: 1).map(\.pid) == [2])
    }

    @Test func releaseAllDropsOneOwnersKind() {
        var t = LockTable()
        t.set(ino: 1, posix(A, .read, 0, 9))
        t.set(ino: 1, posix(A, .read, 20, 29))
        t.set(ino: 1, flock(A, .write))
        t.set(ino: 1, posix(B, .read, 0, 9))
        t.set(ino: 2, posix(A, .read, 0, 9))
        let dropped = t.releaseAll(ino: 1, owner: A, kind: .posix)
        #expect(dropped)
        #expect(ranges(t, A).isEmpty && ranges(t, A, kind: .flock) == ["w0-eof"] && ranges(t, B) == ["r0-9"])
        #expect(ranges(t, A, ino: 2) == ["r0-9"])
        let again = t.releaseAll(ino: 1, owner: A, kind: .posix)
        #expect(!again)
    }

    @Test func releaseSessionDropsEveryLockOfTheMount() {
        var t = LockTable()
        t.set(ino: 1, posix(A, .write, 0, 9))
        t.set(ino: 2, flock(B, .read))
        t.set(ino: 1, posix(A2, .write, 10, 19))
        t.releaseSession("m1")
        #expect(t.rows.map(\.session) == ["m2"])
        t.releaseSession("m2")
        #expect(t.isEmpty)
    }
}

@Suite("LockTable: flock locks")
struct LockTableFlockTests {
    @Test func sharedSharesExclusiveExcludes() {
        var t = LockTable()
        #expect(t.set(ino: 1, flock(A, .read)) == .granted)
        #expect(t.set(ino: 1, flock(B, .read)) == .granted)
        #expect(t.set(ino: 1, flock(A2, .write)) != .granted)
        t.set(ino: 1, flock(A, .unlock))
        t.set(ino: 1, flock(B, .unlock))
        #expect(t.set(ino: 1, flock(A2, .write)) == .granted)
        #expect(t.set(ino: 1, flock(A, .read)) != .granted)
    }

    @Test func alwaysTheWholeFile() {
        let r = LockRequest(owner: A, kind: .flock, type: .write, start: 10, end: 20)
        #expect(r.start == 0 && r.end == Int64.max)
        var t = LockTable()
        t.set(ino: 1, r)
        #expect(ranges(t, A, kind: .flock) == ["w0-eof"])
    }

    @Test func conversionBothWays() {
        var t = LockTable()
        t.set(ino: 1, flock(A, .read))
        #expect(t.set(ino: 1, flock(A, .write)) == .granted)
        #expect(ranges(t, A, kind: .flock) == ["w0-eof"])
        #expect(t.set(ino: 1, flock(A, .read)) == .granted)
        #expect(ranges(t, A, kind: .flock) == ["r0-eof"])
        #expect(t.rows(ino: 1).count == 1, "one lock per owner")
    }

    @Test func failedConversionKeepsTheSharedLock() {
        var t = LockTable()
        t.set(ino: 1, flock(A, .read))
        t.set(ino: 1, flock(B, .read))
        #expect(t.set(ino: 1, flock(A, .write)) != .granted)
        #expect(ranges(t, A, kind: .flock) == ["r0-eof"])
    }

    @Test func flockAndPosixDoNotConflict() {
        var t = LockTable()
        t.set(ino: 1, flock(A, .write))
        #expect(t.set(ino: 1, posix(B, .write, 0, EOF_)) == .granted)
        #expect(t.set(ino: 1, flock(B, .read)) != .granted)
    }
}

@Suite("LockTable: rows")
struct LockTableRowTests {
    @Test func roundTripsThroughRows() {
        var t = LockTable()
        t.set(ino: 1, posix(A, .read, 0, 9, pid: 3))
        t.set(ino: 1, posix(B, .write, 20, EOF_, pid: 4))
        t.set(ino: 7, flock(A2, .write, pid: 5))
        let copy = LockTable(rows: t.rows.shuffled())
        #expect(copy == t)
        #expect(copy.rows == t.rows)
    }

    @Test func aServiceCanWorkOnOneInodesRows() {
        // What a database service does: load one inode's rows, run the algebra, write back the
        // owner's rows of that kind. Others' rows on the inode are left alone.
        var db = LockTable()
        db.set(ino: 1, posix(A, .read, 0, 99))
        db.set(ino: 1, posix(B, .read, 50, 149))
        db.set(ino: 2, posix(A, .write, 0, EOF_))
        var one = LockTable(rows: db.rows(ino: 1))
        #expect(one.set(ino: 1, posix(A, .write, 0, 9)) == .granted)
        let written = one.rows(ino: 1, owner: A, kind: .posix)
        #expect(written.map { [$0.start, $0.end] } == [[0, 9], [10, 99]])
        let merged = LockTable(rows: db.rows.filter { !($0.ino == 1 && $0.lockOwner == A && $0.kind == .posix) } + written)
        #expect(merged.rows(ino: 1) == one.rows(ino: 1))
        #expect(merged.rows(ino: 2) == db.rows(ino: 2))
    }

    @Test func rowsAreCodable() throws {
        let r = LockRow(ino: 3, owner: UInt64.max, kind: .flock, type: .write, start: 0, end: Int64.max, pid: 9, session: "h/1/ab")
        #expect(r.kind.rawValue == "flock" && r.type.rawValue == "write")
        #expect(LockKind(rawValue: "posix") == .posix && LockAccess(rawValue: "read") == .read)
    }
}

@Suite("MemoryLockService")
struct MemoryLockServiceTests {
    @Test func setTestAndRelease() async throws {
        let s = MemoryLockService()
        try await s.set(ino: 1, posix(A, .write, 0, 9, pid: 42))
        let c = try await s.test(ino: 1, posix(B, .read, 5, 5))
        #expect(c?.pid == 42)
        #expect(await errnoOf { () async throws(FSError) in try await s.set(ino: 1, posix(B, .read, 5, 5)) } == EAGAIN)
        try await s.releaseAll(ino: 1, owner: A, kind: .posix)
        try await s.set(ino: 1, posix(B, .read, 5, 5))
        try await s.releaseSession("m1")
        #expect(s.rows.isEmpty)
    }

    @Test func badRangesAreEINVAL() async {
        let s = MemoryLockService()
        for r in [posix(A, .write, -1, 5), posix(A, .write, 10, 9)] {
            #expect(await errnoOf { () async throws(FSError) in try await s.set(ino: 1, r) } == EINVAL)
            #expect(await errnoOf { () async throws(FSError) in _ = try await s.test(ino: 1, r) } == EINVAL)
        }
    }
}
