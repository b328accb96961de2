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
