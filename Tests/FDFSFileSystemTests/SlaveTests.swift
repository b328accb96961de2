@testable import FDFSFileSystem
import FuseTypes
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Slave files in the by-id view")
struct SlaveTests {
    /// The inode of `id`'s directory (`GROUP/Mxx/XX/YY`), by lookups from the root.
    func dirIno(_ fx: WriteFixture, _ id: String) async throws -> UInt64 {
        var ino = InodeTable.root
        for part in id.split(separator: "/").dropLast() { ino = try await fx.fs.lookup(parent: ino, name: String(part), ctx: fx.ctx).attr.ino }
        return ino
    }

    /// NAME of `id` with its extension (from the first '.' in the last 7 characters) replaced.
    func slaveName(_ id: String, _ suffix: String) -> String {
        let name = String(id.split(separator: "/").last!)
        let tail = name.suffix(7)
        let stem = tail.firstIndex(of: ".").map { String(name[..<$0]) } ?? name
        return stem + suffix
    }

    @Test func creatingASlaveNameUploadsASlaveAtClose() async throws {
        let fx = try await WriteFixture()
        let master = try await fx.mem.upload(Array("master".utf8), ext: "jpg", group: nil, appender: false)
        let dir = try await dirIno(fx, master)
        let name = slaveName(master, "_150x150.jpg")
        let slaveID = master.split(separator: "/").dropLast().joined(separator: "/") + "/" + name
        let (e, o) = try await fx.fs.create(parent: dir, name: name, mode: 0o644, flags: O_WRONLY, ctx: fx.ctx)
        _ = try await fx.fs.write(ino: e.attr.ino, fh: o.fh, offset: 0, data: Array("thu".utf8))
        _ = try await fx.fs.write(ino: e.attr.ino, fh: o.fh, offset: 3, data: Array("mb".utf8))
        #expect(fx.mem.callCount("uploadSlave") == 0)   // staged until close
        #expect(try await fx.fs.getattr(ino: e.attr.ino, fh: nil).0.size == 5)
        try await fx.close(e.attr.ino, o.fh)
        #expect(fx.mem.callCount("uploadSlave") == 1)
        #expect(try await fx.mem.download(slaveID, offset: 0, length: 0, storage: nil) == Array("thumb".utf8))
        #expect(try fx.mem.decode(slaveID).kind == .slave)
        let looked = try await fx.fs.lookup(parent: dir, name: name, ctx: fx.ctx)
        #expect(looked.attr.size == 5)
    }

    @Test func invalidSlaveNamesAndMissingMastersAreRefused() async throws {
        let fx = try await WriteFixture()
        let master = try await fx.mem.upload(Array("master".utf8), ext: "jpg", group: nil, appender: false)
        let dir = try await dirIno(fx, master)
        // Bad prefix characters.
        await expectErrno(EINVAL) { _ = try await fx.fs.create(parent: dir, name: slaveName(master, "_1@x.jpg"), mode: 0o644, flags: O_WRONLY, ctx: fx.ctx) }
        // Not derived from any master.
        await expectErrno(EINVAL) { _ = try await fx.fs.create(parent: dir, name: "hello.txt", mode: 0o644, flags: O_WRONLY, ctx: fx.ctx) }
        // A well-formed slave name whose master is gone.
        let other = try await fx.mem.upload(Array("gone".utf8), ext: "jpg", group: nil, appender: false)
        try await fx.mem.delete(other)
        let otherDir = try await dirIno(fx, other)
        await expectErrno(ENOENT) { _ = try await fx.fs.create(parent: otherDir, name: slaveName(other, "_s.jpg"), mode: 0o644, flags: O_WRONLY, ctx: fx.ctx) }
        #expect(fx.mem.callCount("uploadSlave") == 0)
    }
}

extension SlaveTests {
    /// `printf x > f` in sh: the created descriptor is dup'ed and closed (a flush) before the write.
    @Test func aFlushBeforeAnyWriteDoesNotUploadAnEmptySlave() async throws {
        let fx = try await WriteFixture()
        let master = try await fx.mem.upload(Array("master".utf8), ext: "png", group: nil, appender: false)
        let dir = try await dirIno(fx, master)
        let name = slaveName(master, "-small.png")
        let slaveID = master.split(separator: "/").dropLast().joined(separator: "/") + "/" + name
        let (e, o) = try await fx.fs.create(parent: dir, name: name, mode: 0o644, flags: O_WRONLY, ctx: fx.ctx)
        try await fx.fs.flush(ino: e.attr.ino, fh: o.fh)
        #expect(fx.mem.callCount("uploadSlave") == 0)
        _ = try await fx.fs.write(ino: e.attr.ino, fh: o.fh, offset: 0, data: Array("small".utf8))
        try await fx.close(e.attr.ino, o.fh)
        #expect(try await fx.mem.download(slaveID, offset: 0, length: 0, storage: nil) == Array("small".utf8))
        // An empty slave is uploaded at the last close. Its extension differs from the master's:
        // the master is found among the names looked up in the directory.
        _ = try await fx.fs.lookup(parent: dir, name: String(master.split(separator: "/").last!), ctx: fx.ctx)
        let empty = slaveName(master, "_e")
        let (e2, o2) = try await fx.fs.create(parent: dir, name: empty, mode: 0o644, flags: O_WRONLY, ctx: fx.ctx)
        try await fx.close(e2.attr.ino, o2.fh)
        let emptyID = master.split(separator: "/").dropLast().joined(separator: "/") + "/" + empty
        #expect(try await fx.mem.fileInfo(emptyID).size == 0)
    }
}

extension SlaveTests {
    /// No lookup of the master first: it is found by trying its likely names (NAME's stem with
    /// NAME's own extension, then common ones), each one QUERY_FILE_INFO.
    @Test func aMasterWithAnotherExtensionIsFoundWithoutALookup() async throws {
        let fx = try await WriteFixture()
        let master = try await fx.mem.upload(Array("a png".utf8), ext: "png", group: nil, appender: false)
        let dir = try await dirIno(fx, master)
        let name = slaveName(master, "_t.jpg")
        let before = fx.mem.callCount("fileInfo")
        let (e, o) = try await fx.fs.create(parent: dir, name: name, mode: 0o644, flags: O_WRONLY, ctx: fx.ctx)
        #expect(fx.mem.callCount("fileInfo") - before <= 10, "a few probes, not a scan")
        _ = try await fx.fs.write(ino: e.attr.ino, fh: o.fh, offset: 0, data: Array("jpg thumb".utf8))
        try await fx.close(e.attr.ino, o.fh)
        let slaveID = master.split(separator: "/").dropLast().joined(separator: "/") + "/" + name
        #expect(try await fx.mem.download(slaveID, offset: 0, length: 0, storage: nil) == Array("jpg thumb".utf8))
        // 4-character and missing extensions of the master work the same way.
        for ext in ["jpeg", ""] {
            let m = try await fx.mem.upload(Array("m".utf8), ext: ext, group: nil, appender: false)
            let d = try await dirIno(fx, m)
            let n = slaveName(m, "-s.gif")
            let (e2, o2) = try await fx.fs.create(parent: d, name: n, mode: 0o644, flags: O_WRONLY, ctx: fx.ctx)
            _ = try await fx.fs.write(ino: e2.attr.ino, fh: o2.fh, offset: 0, data: [1])
            try await fx.close(e2.attr.ino, o2.fh)
            #expect(try fx.mem.decode(m.split(separator: "/").dropLast().joined(separator: "/") + "/" + n).kind == .slave, "master ext \(ext)")
        }
    }

    /// A master with an extension nobody would guess: ENOENT naming what was tried, until the
    /// master has been looked up once (then it is a known name of the directory).
    @Test func anUnusualMasterExtensionNeedsALookupFirst() async throws {
        let fx = try await WriteFixture()
        let master = try await fx.mem.upload(Array("odd".utf8), ext: "q9z", group: nil, appender: false)
        let dir = try await dirIno(fx, master)
        let name = slaveName(master, "_t.jpg")
        await expectErrno(ENOENT) { _ = try await fx.fs.create(parent: dir, name: name, mode: 0o644, flags: O_WRONLY, ctx: fx.ctx) }
        _ = try await fx.fs.lookup(parent: dir, name: String(master.split(separator: "/").last!), ctx: fx.ctx)
        let (e, o) = try await fx.fs.create(parent: dir, name: name, mode: 0o644, flags: O_WRONLY, ctx: fx.ctx)
        _ = try await fx.fs.write(ino: e.attr.ino, fh: o.fh, offset: 0, data: [7])
        try await fx.close(e.attr.ino, o.fh)
        #expect(fx.mem.callCount("uploadSlave") == 1)
    }

    /// A slave whose upload failed stays staged with its master in `staged_files`: the next
    /// start (after a kill) uploads it.
    @Test func aStagedSlaveSurvivesARestart() async throws {
        let naming = try NamingStore(path: nil)
        let mem = MemoryFileStore()
        let first = try await WriteFixture(naming: naming, store: mem)
        let master = try await mem.upload(Array("master".utf8), ext: "jpg", group: nil, appender: false)
        let dir = try await dirIno(first, master)
        let name = slaveName(master, "_big.jpg")
        let slaveID = master.split(separator: "/").dropLast().joined(separator: "/") + "/" + name
        let data = pattern(100_000)
        first.faulty.inject("uploadSlave", EIO)
        let (e, o) = try await first.fs.create(parent: dir, name: name, mode: 0o644, flags: O_WRONLY, ctx: first.ctx)
        _ = try await first.fs.write(ino: e.attr.ino, fh: o.fh, offset: 0, data: Array(data[..<60_000]))
        _ = try await first.fs.write(ino: e.attr.ino, fh: o.fh, offset: 60_000, data: Array(data[60_000...]))
        await expectErrno(EIO) { try await first.fs.flush(ino: e.attr.ino, fh: o.fh) }
        let staged = try await naming.stagedFiles()
        #expect(staged.count == 1)
        #expect(staged.first?.state.slave?.fileID == slaveID)
        #expect(staged.first?.path.hasPrefix(slaveID) == true)
        #expect(staged.first?.status == .failed)
        // "SIGKILL": no release; a new mount of the same state completes the upload.
        let second = try await WriteFixture(naming: naming, stagingDir: first.stagingDir, store: mem)
        #expect(try await mem.download(slaveID, offset: 0, length: 0, storage: nil) == data)
        #expect(try mem.decode(slaveID).kind == .slave)
        #expect(try await naming.stagedFiles().isEmpty)
        _ = second
    }

    /// The upload still fails at the next start: the slave stays listed, reads of it see the
    /// staged bytes, and the periodic retry completes it once the cluster takes it.
    @Test func aStagedSlaveIsRetriedAfterARestart() async throws {
        let naming = try NamingStore(path: nil)
        let mem = MemoryFileStore()
        let first = try await WriteFixture(naming: naming, store: mem)
        let master = try await mem.upload(Array("master".utf8), ext: "jpg", group: nil, appender: false)
        let dir = try await dirIno(first, master)
        let name = slaveName(master, "_r.jpg")
        let slaveID = master.split(separator: "/").dropLast().joined(separator: "/") + "/" + name
        first.faulty.inject("uploadSlave", EIO)
        let (e, o) = try await first.fs.create(parent: dir, name: name, mode: 0o644, flags: O_WRONLY, ctx: first.ctx)
        _ = try await first.fs.write(ino: e.attr.ino, fh: o.fh, offset: 0, data: Array("retry me".utf8))
        // Killed before close: the bytes were recorded at the first write. The cluster still
        // refuses the upload when the next mount starts.
        let second = try await WriteFixture(naming: naming, stagingDir: first.stagingDir, store: mem, failing: ["uploadSlave": EIO])
        #expect(try await naming.stagedFiles().first?.status == .failed)
        second.faulty.inject("uploadSlave", nil)
        #expect(try await naming.stagedFiles().map(\.state.slave?.fileID) == [slaveID])
        let d2 = try await dirIno(second, slaveID)
        let looked = try await second.fs.lookup(parent: d2, name: name, ctx: second.ctx)
        #expect(looked.attr.size == 8)
        await second.fs.retryStagedWrites()
        #expect(try await mem.download(slaveID, offset: 0, length: 0, storage: nil) == Array("retry me".utf8))
        #expect(try await naming.stagedFiles().isEmpty)
    }
}

extension SlaveTests {
    /// Killed after the slave upload reached the server but before it was recorded: the next
    /// start gets EEXIST for the same bytes and takes it as done.
    @Test func killedBetweenASlaveUploadAndItsRecord() async throws {
        let naming = try NamingStore(path: nil)
        let mem = MemoryFileStore()
        let first = try await WriteFixture(naming: naming, store: mem)
        let master = try await mem.upload(Array("master".utf8), ext: "jpg", group: nil, appender: false)
        let dir = try await dirIno(first, master)
        let name = slaveName(master, "_k.jpg")
        let slaveID = master.split(separator: "/").dropLast().joined(separator: "/") + "/" + name
        let data = noise(5000)
        first.faulty.hangAfter("uploadSlave")
        let (e, o) = try await first.fs.create(parent: dir, name: name, mode: 0o644, flags: O_WRONLY, ctx: first.ctx)
        _ = try await first.fs.write(ino: e.attr.ino, fh: o.fh, offset: 0, data: data)
        let closer = Task { try await first.fs.flush(ino: e.attr.ino, fh: o.fh) }
        #expect(await eventuallyAsync { first.faulty.bytes("uploadSlave") > 0 })
        let second = try await WriteFixture(naming: naming, stagingDir: first.stagingDir, store: mem)
        _ = (closer, second)
        #expect(try await mem.download(slaveID, offset: 0, length: 0, storage: nil) == data)
        #expect(try await naming.stagedFiles().isEmpty)
    }
}
