import FDFSFileSystem
import FuseTypes
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import FDFSFileSystem

/// Small new files (issue 12): kept in memory and the write journal until their close, uploaded
/// from memory in one request; recovered from the journal after a killed mount.
@Suite("Small files and the write journal")
struct SmallFileJournalTests {
    func stagingEntries(_ dir: String) -> [String] { StagingFile.entries(of: dir).sorted() }

    @Test func aSmallFileGoesUpInOneUploadWithNoStagingFileOrRecord() async throws {
        let fx = try await WriteFixture()
        let (ino, fh) = try await fx.create("a.txt")
        let data = pattern(5000)
        // Through libfuse's thread (no Task), as the kernel's writes arrive.
        #expect(try fx.fs.immediateWrite(ino: ino, fh: fh, offset: 0, data: Array(data[..<3000]))?.get() == 3000)
        #expect(try fx.fs.immediateWrite(ino: ino, fh: fh, offset: 3000, data: Array(data[3000...]))?.get() == 2000)
        #expect(fx.fs.immediateGetattr(ino: ino)?.0.size == 5000, "stat sees the bytes written")
        #expect(try await fx.fs.read(ino: ino, fh: fh, offset: 1000, size: 100) == Array(data[1000..<1100]), "read your writes")
        #expect(try await fx.naming.stagedFiles().isEmpty, "no staged record")
        #expect(stagingEntries(fx.stagingDir).allSatisfy { $0.hasPrefix("journal-") }, "no staging file: \(stagingEntries(fx.stagingDir))")
        try await fx.close(ino, fh)
        #expect(fx.mem.callCount("upload") == 1 && fx.faulty.bytes("upload") == 5000 && fx.faulty.bytes("modify") == 0)
        #expect(try await fx.content(ino) == data)
    }

    @Test func aCreateIsAnsweredOnLibfusesThreadAndItsFileGoesUpLikeAnyOther() async throws {
        let fx = try await WriteFixture()
        let d = try await fx.fs.mkdir(parent: InodeTable.root, name: "d", mode: 0o755, ctx: fx.ctx).attr.ino
        // The local database's create runs on the calling thread (libfuse's): no Task.
        let made = try #require(fx.fs.immediateCreate(parent: d, name: "a.jpg", mode: 0o640, flags: O_WRONLY | O_CREAT, ctx: fx.ctx))
        let (e, o) = try made.get()
        #expect(e.attr.mode == UInt32(S_IFREG) | 0o640 && e.attr.size == 0)
        #expect(try await fx.naming.lookup(parent: Int64(d), name: "a.jpg")?.id == Int64(e.attr.ino), "committed")
        if case .success(let again)? = fx.fs.immediateLookup(parent: d, name: "a.jpg") {
            #expect(again.attr.ino == e.attr.ino, "cached by the commit")
        } else {
            Issue.record("the new name is not answered from the cache")
        }
        // Marked as created: its first bytes take the small-file path, the upload gets its extension.
        #expect(try fx.fs.immediateWrite(ino: e.attr.ino, fh: o.fh, offset: 0, data: pattern(2000))?.get() == 2000)
        try await fx.close(e.attr.ino, o.fh)
        #expect(fx.mem.callCount("upload") == 1)
        #expect(try await fx.content(e.attr.ino) == pattern(2000))
        #expect(try await fx.naming.node(Int64(e.attr.ino))?.fileID?.hasSuffix(".jpg") == true)
        // An existing name goes the async way (which opens it without O_EXCL, EEXIST with it).
        #expect(fx.fs.immediateCreate(parent: d, name: "a.jpg", mode: 0o644, flags: O_WRONLY | O_CREAT, ctx: fx.ctx).map { _ in true } == nil)
        await #expect(throws: FSError.self) {
            _ = try await fx.fs.create(parent: d, name: "a.jpg", mode: 0o644, flags: O_WRONLY | O_CREAT | O_EXCL, ctx: fx.ctx)
        }
        // A bad name is refused here; the by-id view is left to the async way.
        if case .failure(let bad)? = fx.fs.immediateCreate(parent: d, name: "x/y", mode: 0o644, flags: O_WRONLY, ctx: fx.ctx) {
            #expect(bad.errno == EINVAL)
        } else {
            Issue.record("a name with a slash was not refused")
        }
        #expect(fx.fs.immediateCreate(parent: InodeTable.byIDBase, name: "z", mode: 0o644, flags: O_WRONLY, ctx: fx.ctx).map { _ in true } == nil)
    }

    @Test func aReleaseAfterASuccessfulCloseIsAnsweredOnLibfusesThreadAndAnythingUnsettledGoesTheAsyncWay() async throws {
        let fx = try await WriteFixture()
        // In a directory: at the root a create is answered here only while the group list is
        // cached, which a slow machine may outlast between the fixture's start and this line.
        let d = try await fx.fs.mkdir(parent: InodeTable.root, name: "d", mode: 0o755, ctx: fx.ctx).attr.ino
        let (e, o) = try #require(fx.fs.immediateCreate(parent: d, name: "a.txt", mode: 0o644, flags: O_WRONLY, ctx: fx.ctx)).get()
        let ino = e.attr.ino
        #expect(try fx.fs.immediateWrite(ino: ino, fh: o.fh, offset: 0, data: pattern(3000))?.get() == 3000)
        // Bytes not yet on a storage: not here.
        #expect(fx.fs.immediateRelease(ino: ino, fh: o.fh, lockOwner: 1, flockRelease: false) == nil)
        try await fx.fs.flush(ino: ino, fh: o.fh)
        #expect(fx.fs.immediateRelease(ino: ino, fh: o.fh, lockOwner: 1, flockRelease: false) != nil)
        #expect(fx.fs.writer(of: ino) == nil, "the settled writer went with its last handle")
        #expect(fx.fs.openHandleCount == 0)
        #expect(try await fx.content(ino) == pattern(3000))

        // Two handles: a write through the second after the first's close leaves the writer
        // unsettled; the first's release only drops a reference, the second's goes the async way.
        let h1 = try await fx.fs.open(ino: ino, flags: O_WRONLY, ctx: fx.ctx).fh
        let h2 = try await fx.fs.open(ino: ino, flags: O_WRONLY, ctx: fx.ctx).fh
        try await fx.fs.flush(ino: ino, fh: h1)
        _ = try await fx.fs.write(ino: ino, fh: h2, offset: 3000, data: pattern(10))
        #expect(fx.fs.immediateRelease(ino: ino, fh: h1, lockOwner: 1, flockRelease: false) == nil, "unsettled writer")
        try await fx.fs.release(ino: ino, fh: h1)
        #expect(fx.fs.writer(of: ino) != nil)
        // A close whose upload fails: the bytes stay staged, the release is the async one, the
        // writer stays (retried later).
        fx.faulty.inject("modify", EIO)
        fx.faulty.inject("upload", EIO)
        await #expect(throws: FSError.self) { try await fx.fs.flush(ino: ino, fh: h2) }
        #expect(fx.fs.immediateRelease(ino: ino, fh: h2, lockOwner: 1, flockRelease: false) == nil)
        try await fx.fs.release(ino: ino, fh: h2)
        #expect(fx.fs.writer(of: ino) != nil, "a writer with staged bytes stays")
        fx.faulty.inject("modify", nil)
        fx.faulty.inject("upload", nil)
        let h3 = try await fx.fs.open(ino: ino, flags: O_WRONLY, ctx: fx.ctx).fh
        try await fx.fs.flush(ino: ino, fh: h3)
        #expect(fx.fs.immediateRelease(ino: ino, fh: h3, lockOwner: 1, flockRelease: false) != nil)
        #expect(fx.fs.writer(of: ino) == nil)
        #expect(try await fx.content(ino) == pattern(3000) + pattern(10))
    }

    @Test func aReadOnlyCloseIsAnsweredOnLibfusesThreadUnlessItHasSomethingToDo() async throws {
        let fx = try await WriteFixture()
        let (ino, fh) = try await fx.create("r.txt")
        _ = try await fx.fs.write(ino: ino, fh: fh, offset: 0, data: pattern(100))
        #expect(fx.fs.immediateFlush(ino: ino, fh: fh, lockOwner: 1) == nil, "a writer's close makes its bytes durable: the async way")
        try await fx.close(ino, fh)
        let ro = try await fx.fs.open(ino: ino, flags: O_RDONLY, ctx: fx.ctx).fh
        #expect(try await fx.fs.read(ino: ino, fh: ro, offset: 0, size: 100) == pattern(100))
        #expect(fx.fs.immediateFlush(ino: ino, fh: ro, lockOwner: 1) != nil, "nothing to do")
        // An owner holding a POSIX lock: the close drops it, the async way.
        try await fx.fs.setlk(ino: ino, fh: ro, owner: 7, lock: FileLock(type: .read), sleep: false)
        #expect(fx.fs.immediateFlush(ino: ino, fh: ro, lockOwner: 7) == nil)
        try await fx.fs.flush(ino: ino, fh: ro, lockOwner: 7)
        #expect(fx.fs.immediateFlush(ino: ino, fh: ro, lockOwner: 7) != nil, "the lock is gone")
        // The read-ahead's buffers go with a release answered here.
        #expect(fx.fs.immediateRelease(ino: ino, fh: ro, lockOwner: 7, flockRelease: false) != nil)
        #expect(fx.fs.openHandleCount == 0)
    }

    @Test func anOpenForReadingIsAnsweredOnLibfusesThread() async throws {
        let fx = try await WriteFixture()
        let (ino, fh) = try await fx.create("o.txt")
        _ = try await fx.fs.write(ino: ino, fh: fh, offset: 0, data: pattern(700))
        try await fx.close(ino, fh)
        let o = try #require(fx.fs.immediateOpen(ino: ino, flags: O_RDONLY, ctx: fx.ctx)).get()
        #expect(o.keepCache == false, "an appender's bytes may change: no keep_cache")
        #expect(try await fx.fs.read(ino: ino, fh: o.fh, offset: 0, size: 4096) == pattern(700))
        try await fx.close(ino, o.fh)
        // Writing, truncating, directories and the by-id view go the async way or fail as it would.
        #expect(fx.fs.immediateOpen(ino: ino, flags: O_WRONLY, ctx: fx.ctx) == nil)
        #expect(fx.fs.immediateOpen(ino: ino, flags: O_RDONLY | O_TRUNC, ctx: fx.ctx) == nil)
        #expect(fx.fs.immediateOpen(ino: InodeTable.byIDBase + 1, flags: O_RDONLY, ctx: fx.ctx) == nil)
        let d = try await fx.fs.mkdir(parent: InodeTable.root, name: "dir", mode: 0o755, ctx: fx.ctx).attr.ino
        if case .failure(let e)? = fx.fs.immediateOpen(ino: d, flags: O_RDONLY, ctx: fx.ctx) {
            #expect(e.errno == EISDIR)
        } else {
            Issue.record("a directory opened as a file")
        }
        #expect(fx.fs.openHandleCount == 0)
    }

    @Test func aColdLookupAndStatAreAnsweredOnLibfusesThreadFromTheLocalDatabase() async throws {
        let dir = "/tmp/fdfsfs-cold-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(dir, 0o700)
        defer { for f in ["db", "db-wal", "db-shm"] { _ = unlink(dir + "/" + f) }; _ = rmdir(dir) }
        let (d, f): (Int64, Int64)
        do {
            let first = try NamingStore(path: dir + "/db")
            d = try await first.create(parent: NamingStore.rootID, name: "d", mode: UInt32(S_IFDIR) | 0o755, uid: 0, gid: 0).id
            f = try await first.create(parent: d, name: "f.txt", mode: UInt32(S_IFREG) | 0o644, uid: 0, gid: 0, fileID: "group1/M00/00/00/x.txt", size: 7).id
        }
        // A new mount: nothing cached.
        let fx = try await WriteFixture(naming: try NamingStore(path: dir + "/db"))
        #expect(fx.naming.cachedEntry(parent: d, name: "f.txt") == nil && fx.naming.cachedNode(f) == nil)
        if case .success(let e)? = fx.fs.immediateLookup(parent: UInt64(d), name: "f.txt") {
            #expect(e.attr.ino == UInt64(f) && e.attr.size == 7)
        } else {
            Issue.record("a cold lookup was not answered on the calling thread")
        }
        #expect(fx.naming.cachedNode(f)?.size == 7, "the read filled the cache")
        if case .success(let e)? = fx.fs.immediateLookup(parent: UInt64(d), name: "nope") {
            #expect(e.attr.ino == 0, "a name not in the database: a negative entry")
        } else {
            Issue.record("a cold miss was not answered on the calling thread")
        }
        let fresh = try await WriteFixture(naming: try NamingStore(path: dir + "/db"))
        #expect(fresh.fs.immediateGetattr(ino: UInt64(f))?.0.size == 7, "a cold stat, read on the calling thread")
        #expect(fresh.fs.immediateGetattr(ino: 999_999) == nil, "a node not in the database: the async way answers")
    }

    @Test func aWriteElsewhereMovesTheBytesToTheStagedPath() async throws {
        let fx = try await WriteFixture()
        let (ino, fh) = try await fx.create("b.txt")
        var data = pattern(4000)
        #expect(try fx.fs.immediateWrite(ino: ino, fh: fh, offset: 0, data: data)?.get() == 4000)
        // Not at the end: not a small-file append; the writer takes over.
        #expect(fx.fs.immediateWrite(ino: ino, fh: fh, offset: 100, data: [9, 9, 9]) == nil)
        _ = try await fx.fs.write(ino: ino, fh: fh, offset: 100, data: [9, 9, 9])
        data.replaceSubrange(100..<103, with: [9, 9, 9])
        #expect(try await fx.naming.stagedFiles().map(\.state.size) == [4000], "staged and recorded like any file")
        #expect(try await fx.fs.read(ino: ino, fh: fh, offset: 0, size: 4000) == data)
        try await fx.close(ino, fh)
        #expect(try await fx.content(ino) == data)
        #expect(try await fx.naming.stagedFiles().isEmpty)
    }

    @Test func aTruncateOfASmallFileIsStagedAndCorrect() async throws {
        let fx = try await WriteFixture()
        let (ino, fh) = try await fx.create("c.txt")
        _ = try await fx.fs.write(ino: ino, fh: fh, offset: 0, data: pattern(3000))
        _ = try await fx.fs.setattr(ino: ino, changes: SetAttr(size: 1000, fh: fh), ctx: fx.ctx)
        try await fx.close(ino, fh)
        #expect(try await fx.content(ino) == pattern(1000))
    }

    @Test func smallFilesOfAKilledMountAreRecoveredFromTheJournal() async throws {
        let naming = try NamingStore(path: nil)
        let mem = MemoryFileStore()
        let first = try await WriteFixture(naming: naming, store: mem)
        let (open1, fh1) = try await first.create("open.txt")
        _ = try await first.fs.write(ino: open1, fh: fh1, offset: 0, data: pattern(3000, seed: 1))
        _ = try await first.fs.write(ino: open1, fh: fh1, offset: 3000, data: pattern(2000, seed: 2))
        let (closed, fh2) = try await first.create("closed.txt")
        _ = try await first.fs.write(ino: closed, fh: fh2, offset: 0, data: pattern(700, seed: 3))
        try await first.close(closed, fh2)
        let closedID = try #require(try await naming.node(Int64(closed))?.fileID)
        let journals = stagingEntries(first.stagingDir).filter { $0.hasPrefix("journal-") }
        #expect(journals.count == 1)
        #expect(try await naming.stagedFiles().isEmpty, "the open file's bytes are only in the journal")
        // "SIGKILL": no flush, no release; the first mount's objects are abandoned.
        let second = try await WriteFixture(naming: naming, stagingDir: first.stagingDir, store: mem)
        #expect(try await naming.stagedFiles().map(\.ino) == [Int64(open1)], "recovered as a staged write")
        #expect(!stagingEntries(first.stagingDir).contains(journals[0]), "the old journal is removed")
        await second.fs.retryStagedWrites()
        #expect(try await second.content(open1) == pattern(3000, seed: 1) + pattern(2000, seed: 2))
        #expect(try await naming.node(Int64(closed))?.fileID == closedID, "a closed file is left as it was")
        #expect(try await naming.stagedFiles().isEmpty)
    }

    @Test func aNodeNumberUsedAgainDoesNotGetTheOldFilesBytes() async throws {
        let naming = try NamingStore(path: nil)
        let mem = MemoryFileStore()
        let first = try await WriteFixture(naming: naming, store: mem)
        let (a, fha) = try await first.create("a.txt")
        _ = try await first.fs.write(ino: a, fh: fha, offset: 0, data: pattern(900))
        try await first.close(a, fha)
        _ = try await first.fs.unlink(parent: InodeTable.root, name: "a.txt", ctx: first.ctx)
        first.fs.forget(ino: a, nlookup: 1)
        await first.fs.drainBackground()
        // SQLite gives the highest free row id again: the new file may get the old number.
        let (b, fhb) = try await first.create("b.txt")
        try await first.fs.release(ino: b, fh: fhb)
        let second = try await WriteFixture(naming: naming, stagingDir: first.stagingDir, store: mem)
        await second.fs.retryStagedWrites()
        #expect(try await naming.stagedFiles().isEmpty)
        #expect(try await naming.node(Int64(b))?.size == 0, "inode \(b) (a was \(a)) stays empty")
    }

    @Test func anUnmountKeepsTheJournalOnlyWhileItHoldsBytesNotElsewhere() async throws {
        let fx = try await WriteFixture()
        let (ino, fh) = try await fx.create("held.txt")
        _ = try await fx.fs.write(ino: ino, fh: fh, offset: 0, data: pattern(100))
        fx.fs.destroyed()
        #expect(stagingEntries(fx.stagingDir).contains { $0.hasPrefix("journal-") }, "an open small file's bytes are only in the journal")
        try await fx.close(ino, fh)
        fx.fs.destroyed()
        #expect(!stagingEntries(fx.stagingDir).contains { $0.hasPrefix("journal-") }, "every file committed: the journal goes")
        #expect(try await fx.content(ino) == pattern(100))
    }

    @Test func aTornLastRecordIsIgnored() throws {
        let one = WriteJournal.record(.data, writer: 7, ino: 3, offset: 0, payload: [1, 2, 3])
        let two = WriteJournal.record(.data, writer: 7, ino: 3, offset: 3, payload: [4, 5])
        var seen: [[UInt8]] = []
        WriteJournal.parse(one + two.dropLast(1)) { _, _, _, _, p in seen.append(Array(p)) }
        #expect(seen == [[1, 2, 3]])
        var damaged = one + two
        damaged[damaged.count - 1] ^= 0xFF
        seen = []
        WriteJournal.parse(damaged) { _, _, _, _, p in seen.append(Array(p)) }
        #expect(seen == [[1, 2, 3]], "a payload that fails its CRC ends the journal")
    }
}
