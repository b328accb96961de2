import Foundation
import Testing
import FuseTypes
import GRDB
@testable import FDFSFileSystem
#if canImport(Glibc)
import Glibc
#endif

/// Special files (FIFOs, sockets, devices) and names as bytes (issue 10), through the
/// `FuseFilesystem` API as the kernel calls it. The same behaviours are checked on a real mount,
/// side by side with ext4, by scripts/posix-tests.sh.
@Suite("Special files and byte names")
struct PosixTests {
    let root = InodeTable.root
    static let badFF = FileName(bytes: Array("bad".utf8) + [0xFF])
    static let badFE = FileName(bytes: Array("bad".utf8) + [0xFE])

    /// makedev(8, 1) as the kernel encodes it for FUSE (new_encode_dev).
    static let rdev: UInt64 = (8 << 8) | 1

    func type(_ a: Attr) -> UInt32 { a.mode & UInt32(S_IFMT) }

    @Test func mknodCreatesMetadataOnlySpecialFiles() async throws {
        let fx = try await Fixture()
        let d = try await fx.fs.mkdir(parent: root, name: "dev", mode: 0o755, ctx: fx.ctx).attr.ino
        let kinds: [(FileName, UInt32, UInt64)] = [("fifo", UInt32(S_IFIFO), 0), ("sock", UInt32(S_IFSOCK), 0),
                                                  ("chr", UInt32(S_IFCHR), Self.rdev), ("blk", UInt32(S_IFBLK), Self.rdev)]
        for (name, kind, rdev) in kinds {
            let e = try await fx.fs.mknod(parent: d, name: name, mode: kind | 0o640, rdev: rdev, ctx: RequestContext(uid: 7, gid: 8))
            #expect(type(e.attr) == kind && e.attr.mode & 0o7777 == 0o640 && e.attr.rdev == rdev && e.attr.size == 0, "\(name)")
            #expect(e.attr.uid == 7 && e.attr.gid == 8 && e.attr.nlink == 1)
            let looked = try await fx.lookup(parent: d, name: name.description)
            #expect(looked.attr.ino == e.attr.ino && type(looked.attr) == kind && looked.attr.rdev == rdev)
            let (a, _) = try await fx.fs.getattr(ino: e.attr.ino, fh: nil)
            #expect(type(a) == kind && a.rdev == rdev)
        }
        // readdir gives the kernel each entry's type (d_type)
        let listed = try await fx.fs.readdir(ino: d, fh: 0, offset: 0, plus: true).filter { $0.name != "." && $0.name != ".." }
        #expect(Dictionary(uniqueKeysWithValues: listed.map { ($0.name, $0.mode) })
                == ["fifo": UInt32(S_IFIFO), "sock": UInt32(S_IFSOCK), "chr": UInt32(S_IFCHR), "blk": UInt32(S_IFBLK)])
        #expect(listed.first { $0.name == "chr" }?.entry?.attr.rdev == Self.rdev)
        // mknod of a regular file (mode type 0 or S_IFREG) still makes a regular file
        let reg = try await fx.fs.mknod(parent: d, name: "reg", mode: 0o600, rdev: 0, ctx: fx.ctx)
        #expect(type(reg.attr) == UInt32(S_IFREG))
        // an existing name of any type is EEXIST
        await expectErrno(EEXIST) { _ = try await fx.fs.mknod(parent: d, name: "fifo", mode: UInt32(S_IFSOCK) | 0o600, rdev: 0, ctx: fx.ctx) }
        await expectErrno(EEXIST) { _ = try await fx.fs.symlink(target: "x", parent: d, name: "sock", ctx: fx.ctx) }
        // nothing was sent to FastDFS
        #expect(fx.store.callCount("upload") == 0)
    }

    @Test func namespaceOperationsWorkOnSpecialFiles() async throws {
        let fx = try await Fixture()
        let d = try await fx.fs.mkdir(parent: root, name: "d", mode: 0o755, ctx: fx.ctx).attr.ino
        let fifo = try await fx.fs.mknod(parent: d, name: "p", mode: UInt32(S_IFIFO) | 0o644, rdev: 0, ctx: fx.ctx).attr.ino
        // rmdir of a directory holding only a FIFO
        await expectErrno(ENOTEMPTY) { try await fx.fs.rmdir(parent: root, name: "d", ctx: fx.ctx) }
        // hard link
        let l = try await fx.fs.link(ino: fifo, newParent: root, newName: "p2", ctx: fx.ctx)
        #expect(l.attr.ino == fifo && l.attr.nlink == 2 && type(l.attr) == UInt32(S_IFIFO))
        // chmod, chown, utimens
        let (a, _) = try await fx.fs.setattr(ino: fifo, changes: SetAttr(mode: 0o600, uid: 5, gid: 6, mtime: .time(Timespec(sec: 1000))), ctx: fx.ctx)
        #expect(a.mode == UInt32(S_IFIFO) | 0o600 && a.uid == 5 && a.gid == 6 && a.mtime == Timespec(sec: 1000))
        // rename a socket over the FIFO's second name, then a regular file onto the socket
        let sock = try await fx.fs.mknod(parent: root, name: "s", mode: UInt32(S_IFSOCK) | 0o755, rdev: 0, ctx: fx.ctx).attr.ino
        try await fx.fs.rename(parent: root, name: "s", newParent: root, newName: "p2", flags: 0, ctx: fx.ctx)
        #expect(try await fx.lookup(parent: root, name: "p2").attr.ino == sock)
        #expect(try await fx.fs.getattr(ino: fifo, fh: nil).0.nlink == 1)
        let (f, o) = try await fx.fs.create(parent: root, name: "f", mode: 0o644, flags: O_WRONLY, ctx: fx.ctx)
        try await fx.fs.release(ino: f.attr.ino, fh: o.fh)
        try await fx.fs.rename(parent: root, name: "f", newParent: root, newName: "p2", flags: 0, ctx: fx.ctx)
        #expect(try await fx.lookup(parent: root, name: "p2").attr.ino == f.attr.ino)
        // exchange a FIFO and a directory
        let sub = try await fx.fs.mkdir(parent: root, name: "sub", mode: 0o755, ctx: fx.ctx).attr.ino
        try await fx.fs.rename(parent: d, name: "p", newParent: root, newName: "sub", flags: RENAME_EXCHANGE_FLAG, ctx: fx.ctx)
        #expect(try await fx.lookup(parent: root, name: "sub").attr.ino == fifo)
        #expect(try await fx.lookup(parent: d, name: "p").attr.ino == sub)
        // unlink; the directory is then removable
        try await fx.fs.unlink(parent: root, name: "sub", ctx: fx.ctx)
        try await fx.fs.rmdir(parent: d, name: "p", ctx: fx.ctx)
        try await fx.fs.rmdir(parent: root, name: "d", ctx: fx.ctx)
        // size changes are the kernel's business for special files (EINVAL there); here EISDIR-free
        await expectErrno(ENOENT) { _ = try await fx.lookup(parent: root, name: "sub") }
    }

    @Test func specialFilesInTheByIDViewAreEPERM() async throws {
        let fx = try await Fixture()
        let group = try await fx.lookup(parent: root, name: "group1").attr.ino
        let leaf = try await fx.resolve("group1/M00/00/00").attr.ino
        for (parent, kind) in [(group, S_IFIFO), (leaf, S_IFIFO), (leaf, S_IFSOCK), (leaf, S_IFCHR), (leaf, S_IFBLK)] {
            await expectErrno(EPERM) { _ = try await fx.fs.mknod(parent: parent, name: "x", mode: UInt32(kind) | 0o644, rdev: 0, ctx: fx.ctx) }
        }
    }

    @Test func namesAreKeptAsBytes() async throws {
        let fx = try await Fixture()
        // bad\xff and bad\xfe are two files (they were one: both became "bad\u{FFFD}")
        let (ff, o1) = try await fx.fs.create(parent: root, name: Self.badFF, mode: 0o644, flags: O_WRONLY, ctx: fx.ctx)
        _ = try await fx.fs.write(ino: ff.attr.ino, fh: o1.fh, offset: 0, data: Array("ff".utf8))
        try await fx.fs.release(ino: ff.attr.ino, fh: o1.fh)
        let (fe, o2) = try await fx.fs.create(parent: root, name: Self.badFE, mode: 0o644, flags: O_WRONLY, ctx: fx.ctx)
        _ = try await fx.fs.write(ino: fe.attr.ino, fh: o2.fh, offset: 0, data: Array("fe".utf8))
        try await fx.fs.release(ino: fe.attr.ino, fh: o2.fh)
        #expect(ff.attr.ino != fe.attr.ino)
        #expect(try await fx.fs.lookup(parent: root, name: Self.badFF, ctx: fx.ctx).attr.ino == ff.attr.ino)
        #expect(try await fx.fs.lookup(parent: root, name: Self.badFE, ctx: fx.ctx).attr.ino == fe.attr.ino)
        // U+FFFD itself is a third, different name
        #expect(try await fx.fs.lookup(parent: root, name: "bad\u{FFFD}", ctx: fx.ctx).attr.ino == 0)
        // readdir gives the exact bytes back
        let names = Set(try await fx.fs.readdir(ino: root, fh: 0, offset: 0, plus: false).map(\.name))
        #expect(names.isSuperset(of: [Self.badFF, Self.badFE]))
        // unlinking one leaves the other
        try await fx.fs.unlink(parent: root, name: Self.badFF, ctx: fx.ctx)
        #expect(try await fx.fs.lookup(parent: root, name: Self.badFF, ctx: fx.ctx).attr.ino == 0)
        #expect(try await fx.fs.lookup(parent: root, name: Self.badFE, ctx: fx.ctx).attr.ino == fe.attr.ino)
        // rename to a byte name, and symlink targets as bytes
        let latin1 = FileName(bytes: [0x63, 0x61, 0x66, 0xE9])   // "café" in Latin-1
        try await fx.fs.rename(parent: root, name: Self.badFE, newParent: root, newName: latin1, flags: 0, ctx: fx.ctx)
        #expect(try await fx.fs.lookup(parent: root, name: latin1, ctx: fx.ctx).attr.ino == fe.attr.ino)
        let target = FileName(bytes: Array("../".utf8) + [0x80, 0xC0, 0xFF])
        let l = try await fx.fs.symlink(target: target, parent: root, name: Self.badFF, ctx: fx.ctx)
        #expect(try await fx.fs.readlink(ino: l.attr.ino) == target)
        #expect(l.attr.size == 6)
    }

    @Test func theNameLimitCountsBytes() async throws {
        let fx = try await Fixture()
        let max = FileName(bytes: [UInt8](repeating: 0xFF, count: 255))
        let over = FileName(bytes: [UInt8](repeating: 0xFF, count: 256))
        _ = try await fx.fs.mkdir(parent: root, name: max, mode: 0o755, ctx: fx.ctx)   // 255 bytes (was 765 "UTF-8" bytes: ENAMETOOLONG)
        #expect(try await fx.fs.lookup(parent: root, name: max, ctx: fx.ctx).attr.isDirectory)
        await expectErrno(ENAMETOOLONG) { _ = try await fx.fs.mkdir(parent: root, name: over, mode: 0o755, ctx: fx.ctx) }
        await expectErrno(ENAMETOOLONG) { _ = try await fx.fs.lookup(parent: root, name: over, ctx: fx.ctx) }
        let e127 = String(repeating: "é", count: 127)   // 254 bytes
        _ = try await fx.fs.mknod(parent: root, name: FileName(e127 + "x"), mode: UInt32(S_IFIFO) | 0o644, rdev: 0, ctx: fx.ctx)
        await expectErrno(ENAMETOOLONG) { _ = try await fx.fs.mknod(parent: root, name: FileName(e127 + "é"), mode: UInt32(S_IFIFO), rdev: 0, ctx: fx.ctx) }
        await expectErrno(ENAMETOOLONG) { _ = try await fx.fs.symlink(target: FileName(bytes: [UInt8](repeating: 0x61, count: 4096)), parent: root, name: "l", ctx: fx.ctx) }
    }

    @Test func setGroupIDDirectoriesPassTheirGroupOn() async throws {
        let fx = try await Fixture()
        let d = try await fx.fs.mkdir(parent: root, name: "shared", mode: 0o2775, ctx: RequestContext(uid: 1, gid: 50)).attr
        #expect(d.mode & UInt32(S_ISGID) != 0 && d.gid == 50)
        let user = RequestContext(uid: 2, gid: 60)
        let (f, o) = try await fx.fs.create(parent: d.ino, name: "f", mode: 0o644, flags: O_WRONLY, ctx: user)
        try await fx.fs.release(ino: f.attr.ino, fh: o.fh)
        #expect(f.attr.gid == 50 && f.attr.uid == 2 && f.attr.mode & UInt32(S_ISGID) == 0)
        let sub = try await fx.fs.mkdir(parent: d.ino, name: "sub", mode: 0o755, ctx: user).attr
        #expect(sub.gid == 50 && sub.mode & 0o7777 == 0o2755)
        let p = try await fx.fs.mknod(parent: sub.ino, name: "p", mode: UInt32(S_IFIFO) | 0o644, rdev: 0, ctx: user).attr
        #expect(p.gid == 50)
        // outside such a directory the creator's group
        let plain = try await fx.fs.mkdir(parent: root, name: "plain", mode: 0o755, ctx: user).attr
        #expect(plain.gid == 60 && plain.mode & UInt32(S_ISGID) == 0)
    }
}

@Suite("Naming database migration")
struct NamingMigrationTests {
    /// A database written by the previous schema (names and targets as TEXT) keeps every name,
    /// target and inode, and the readdir offsets go on from where they were.
    @Test func textNamesBecomeByteNames() async throws {
        let dir = "/tmp/fdfsfs-migration-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(dir, 0o700)
        defer { for f in ["db", "db-wal", "db-shm"] { _ = unlink(dir + "/" + f) }; _ = rmdir(dir) }
        do {
            let q = try DatabaseQueue(path: dir + "/db")
            try Schema.migrator().migrate(q, upTo: "v2-staged-files")
            try await q.write { db in
                try db.execute(sql: "INSERT INTO nodes (id, mode, uid, gid, atime_ns, mtime_ns, ctime_ns, nlink) VALUES (2, ?, 0, 0, 0, 0, 0, 2)", arguments: [dirMode])
                try db.execute(sql: "INSERT INTO nodes (id, mode, uid, gid, atime_ns, mtime_ns, ctime_ns, nlink, file_id) VALUES (3, ?, 0, 0, 0, 0, 0, 1, 'group1/M00/00/00/x')", arguments: [fileMode])
                try db.execute(sql: "INSERT INTO nodes (id, mode, uid, gid, atime_ns, mtime_ns, ctime_ns, nlink, target) VALUES (4, ?, 0, 0, 0, 0, 0, 1, 'ziel/ü')", arguments: [UInt32(S_IFLNK) | 0o777])
                try db.execute(sql: "INSERT INTO entries (id, parent, name, child) VALUES (5, 1, 'dir', 2)")
                try db.execute(sql: "INSERT INTO entries (id, parent, name, child) VALUES (6, 2, 'grüße.txt', 3)")
                try db.execute(sql: "INSERT INTO entries (id, parent, name, child) VALUES (7, 2, 'bad\u{FFFD}', 4)")
                try db.execute(sql: "INSERT INTO entries (id, parent, name, child) VALUES (40, 1, 'gone', 3)")
                try db.execute(sql: "DELETE FROM entries WHERE id = 40")   // the counter stays at 40
            }
        }
        let s = try NamingStore(path: dir + "/db")
        let d = try #require(try await s.lookup(parent: NamingStore.rootID, name: "dir"))
        #expect(d.id == 2)
        #expect(try await s.lookup(parent: 2, name: "grüße.txt")?.fileID == "group1/M00/00/00/x")
        let l = try #require(try await s.lookup(parent: 2, name: "bad\u{FFFD}"))
        #expect(l.id == 4 && l.targetName == "ziel/ü" && l.attr.size == Int64("ziel/ü".utf8.count) && l.rdev == 0)
        #expect(try await s.list(parent: 2, afterEntry: 0, limit: 10).map(\.entryID) == [6, 7])
        // new names are bytes, next to the migrated ones, and entry ids are not reused
        let n = try await s.create(parent: 2, name: PosixTests.badFF, mode: fileMode, uid: 0, gid: 0)
        let listed = try await s.list(parent: 2, afterEntry: 7, limit: 10)
        #expect(listed.map(\.name) == [PosixTests.badFF] && listed.map(\.node.id) == [n.id] && listed[0].entryID > 40)
    }
}
