import Testing
@testable import FuseTypes
@testable import FDFSFileSystem
#if canImport(Glibc)
import Glibc
#endif

@Suite("xattrs")
struct XattrTests {
    @Test func sizeProtocol() {
        #expect(XattrAnswer.resolve(value: [1, 2, 3], requestedSize: 0) == .size(3))
        #expect(XattrAnswer.resolve(value: [1, 2, 3], requestedSize: 2) == .tooSmall)
        #expect(XattrAnswer.resolve(value: [1, 2, 3], requestedSize: 3) == .data([1, 2, 3]))
        #expect(XattrAnswer.list(["user.a", "user.b"]) == Array("user.a\0user.b\0".utf8))
    }

    @Test func metadataRules() async throws {
        let fx = try await Fixture()
        let id = try await fx.store.upload(Array("x".utf8), ext: "txt", group: "group1", appender: false)
        let ino = try await fx.resolve(id).attr.ino
        try await fx.fs.setxattr(ino: ino, name: "user.color", value: Array("blue".utf8), flags: [], ctx: fx.ctx)
        #expect(try await fx.fs.getxattr(ino: ino, name: "user.color") == Array("blue".utf8))
        await expectErrno(EEXIST) { try await fx.fs.setxattr(ino: ino, name: "user.color", value: [65], flags: .create, ctx: fx.ctx) }
        await expectErrno(ENODATA) { try await fx.fs.setxattr(ino: ino, name: "user.other", value: [65], flags: .replace, ctx: fx.ctx) }
        try await fx.fs.setxattr(ino: ino, name: "user.color", value: Array("red".utf8), flags: .replace, ctx: fx.ctx)
        try await fx.fs.setxattr(ino: ino, name: "user.size", value: Array("L".utf8), flags: .create, ctx: fx.ctx)
        #expect(try await fx.store.metadata(of: id) == ["color": "red", "size": "L"], "merge keeps other keys")
        let names = try await fx.fs.listxattr(ino: ino)
        #expect(names.contains("user.color") && names.contains("user.size") && names.contains("user.fdfs.file_id"))
        try await fx.fs.removexattr(ino: ino, name: "user.color")
        #expect(try await fx.store.metadata(of: id) == ["size": "L"])
        await expectErrno(ENODATA) { try await fx.fs.removexattr(ino: ino, name: "user.color") }
        await expectErrno(ENODATA) { _ = try await fx.fs.getxattr(ino: ino, name: "user.color") }
        // limits: never silently truncated
        await expectErrno(ERANGE) { try await fx.fs.setxattr(ino: ino, name: "user." + String(repeating: "k", count: 65), value: [65], flags: [], ctx: fx.ctx) }
        try await fx.fs.setxattr(ino: ino, name: "user." + String(repeating: "k", count: 64), value: [65], flags: [], ctx: fx.ctx)
        await expectErrno(E2BIG) { try await fx.fs.setxattr(ino: ino, name: "user.v", value: [UInt8](repeating: 65, count: 257), flags: [], ctx: fx.ctx) }
        try await fx.fs.setxattr(ino: ino, name: "user.v", value: [UInt8](repeating: 65, count: 256), flags: [], ctx: fx.ctx)
        await expectErrno(EINVAL) { try await fx.fs.setxattr(ino: ino, name: "user.sep", value: [65, 1, 66], flags: [], ctx: fx.ctx) }
        // namespaces
        await expectErrno(ENODATA) { _ = try await fx.fs.getxattr(ino: ino, name: "security.selinux") }
        await expectErrno(ENODATA) { _ = try await fx.fs.getxattr(ino: ino, name: "system.posix_acl_access") }
        await expectErrno(ENOTSUP) { try await fx.fs.setxattr(ino: ino, name: "trusted.x", value: [1], flags: [], ctx: fx.ctx) }
        await expectErrno(ENOTSUP) { _ = try await fx.fs.getxattr(ino: ino, name: "weird.x") }
    }

    @Test func virtualAttributesAreReadOnly() async throws {
        let fx = try await Fixture()
        let id = try await fx.store.upload(Array("123456789".utf8), ext: "txt", group: "group1", appender: false)
        let ino = try await fx.resolve(id).attr.ino
        #expect(String(decoding: try await fx.fs.getxattr(ino: ino, name: "user.fdfs.file_id"), as: UTF8.self) == id)
        #expect(String(decoding: try await fx.fs.getxattr(ino: ino, name: "user.fdfs.group"), as: UTF8.self) == "group1")
        #expect(String(decoding: try await fx.fs.getxattr(ino: ino, name: "user.fdfs.crc32"), as: UTF8.self) == "cbf43926")
        #expect(String(decoding: try await fx.fs.getxattr(ino: ino, name: "user.fdfs.source"), as: UTF8.self) == "127.0.0.1")
        #expect(String(decoding: try await fx.fs.getxattr(ino: ino, name: "user.fdfs.appender"), as: UTF8.self) == "0")
        for n in FDFSFileSystem.virtualNames where n != "user.fdfs.file_id" {
            await expectErrno(EPERM) { try await fx.fs.setxattr(ino: ino, name: n, value: [49], flags: [], ctx: fx.ctx) }
            await expectErrno(EPERM) { try await fx.fs.removexattr(ino: ino, name: n) }
        }
        await expectErrno(EPERM) { try await fx.fs.setxattr(ino: ino, name: "user.fdfs.file_id", value: Array(id.utf8), flags: [], ctx: fx.ctx) }
    }

    @Test func adoptionBindsAnEmptyNamedFile() async throws {
        let fx = try await Fixture()
        let id = try await fx.store.upload(Array("adopt me".utf8), ext: "txt", group: "group1", appender: false)
        let e = try await fx.fs.mknod(parent: InodeTable.root, name: "a.txt", mode: UInt32(S_IFREG) | 0o644, rdev: 0, ctx: fx.ctx)
        let missing = "group1/M00/00/00/fwAAAWsKZv6AeAFmAAAAEkmkZMY999.txt"
        await expectErrno(ENOENT) { try await fx.fs.setxattr(ino: e.attr.ino, name: "user.fdfs.file_id", value: Array(missing.utf8), flags: [], ctx: fx.ctx) }
        await expectErrno(EINVAL) { try await fx.fs.setxattr(ino: e.attr.ino, name: "user.fdfs.file_id", value: Array("nonsense".utf8), flags: [], ctx: fx.ctx) }
        // Before there is data, user.* metadata is kept and goes to the file the name gets.
        try await fx.fs.setxattr(ino: e.attr.ino, name: "user.k", value: [65], flags: [], ctx: fx.ctx)
        #expect(try await fx.fs.getxattr(ino: e.attr.ino, name: "user.k") == [65])
        await expectErrno(EPERM) {
            try await fx.fs.setxattr(ino: e.attr.ino, name: "user.fdfs.file_id", value: Array(id.utf8), flags: [], ctx: RequestContext(uid: 4242, gid: 4242))
        }
        try await fx.fs.setxattr(ino: e.attr.ino, name: "user.fdfs.file_id", value: Array(id.utf8), flags: [], ctx: RequestContext(uid: 0, gid: 0))
        let (a, _) = try await fx.fs.getattr(ino: e.attr.ino, fh: nil)
        #expect(a.size == 8)
        #expect(try await fx.store.metadata(of: id)["k"] == "A")
        let o = try await fx.fs.open(ino: e.attr.ino, flags: O_RDONLY, ctx: fx.ctx)
        #expect(try await fx.fs.read(ino: e.attr.ino, fh: o.fh, offset: 0, size: 4096) == Array("adopt me".utf8))
        try await fx.fs.release(ino: e.attr.ino, fh: o.fh)
        await expectErrno(EPERM) { try await fx.fs.setxattr(ino: e.attr.ino, name: "user.fdfs.file_id", value: Array(missing.utf8), flags: [], ctx: fx.ctx) }
        try await fx.fs.setxattr(ino: e.attr.ino, name: "user.k", value: [65], flags: [], ctx: fx.ctx)
        #expect(try await fx.store.metadata(of: id) == ["k": "A"])
    }
}

@Suite("File ids and mount options")
struct ParsingTests {
    @Test func decodesTheWorkedExample() throws {
        let d = try DecodedFileID(decoding: "group1/M00/00/00/wKgBaGVT8QCAEjRWAAAACcv0OSY123.txt")
        #expect(d == DecodedFileID(kind: .normal, size: 9, createTime: 1_700_000_000, crc32: 0xCBF4_3926, source: "192.168.1.104"))
        let idMode = try DecodedFileID(decoding: "group1/M00/00/00/oYYBAGVT8QCAEjRWAAAACcv0OSY123.txt")
        #expect(idMode.source == "100001")
        let app = try DecodedFileID(decoding: "group1/M00/00/00/wKgBaGVT8QCEEjRWAAAAAMv0OSY123.txt")
        #expect(app.kind == .appender && app.size == nil)
        #expect(try DecodedFileID(decoding: "group1/M00/00/00/wKgBaGVT8QCAEjRWAAAACcv0OSY123_150x150.jpg").kind == .slave)
    }

    @Test func rejectsMalformedIDs() {
        for bad in ["", "group1", "group1/M00/00/00/short", "group1/M00/0a/00/wKgBaGVT8QCAEjRWAAAACcv0OSY123.txt",
                    "group1/X00/00/00/wKgBaGVT8QCAEjRWAAAACcv0OSY123.txt", "/M00/00/00/wKgBaGVT8QCAEjRWAAAACcv0OSY123.txt",
                    "group1/M00/00/00/wKgBaGVT8QCAEjRW!AAACcv0OSY123.txt"] {
            #expect(throws: FSError.self, "\(bad)") { try DecodedFileID(decoding: bad) }
        }
    }

    @Test func readAheadKBOption() throws {
        let d = try MountCommand.parse(["t:22122", "/mnt/x"])
        #expect(d.readAheadKB == 1024)
        let c = try MountCommand.parse(["t:22122", "/mnt/x", "-o", "read_ahead_kb=8192"])
        #expect(c.readAheadKB == 8192)
        // The prefetcher must treat two kernel read-ahead windows of concurrent requests as one stream.
        #expect(c.fs.readAhead.forwardTolerance >= 16 << 20 && c.fs.readAhead.backwardTolerance >= 16 << 20)
        #expect(try MountCommand.parse(["t:22122", "/mnt/x", "-o", "read_ahead_kb=0"]).readAheadKB == 0)
        #expect(throws: MountCommand.ParseError.self) { try MountCommand.parse(["t:22122", "/mnt/x", "-o", "read_ahead_kb=big"]) }
    }

    @Test func maxStagedOption() throws {
        #expect(try MountCommand.parse(["t:22122", "/mnt/x"]).fs.maxStaged == 256 << 20)
        #expect(try MountCommand.parse(["t:22122", "/mnt/x", "-o", "max_staged=1073741824"]).fs.maxStaged == 1 << 30)
        // Never below one ship request.
        #expect(try MountCommand.parse(["t:22122", "/mnt/x", "-o", "max_staged=1"]).fs.maxStaged == 4 << 20)
        #expect(throws: MountCommand.ParseError.self) { try MountCommand.parse(["t:22122", "/mnt/x", "-o", "max_staged=-5"]) }
        #expect(try MountCommand.parse(["t:22122", "/mnt/x"]).fs.maxUploads == 4)
        #expect(try MountCommand.parse(["t:22122", "/mnt/x", "-o", "max_uploads=3"]).fs.maxUploads == 3)
        #expect(try MountCommand.parse(["t:22122", "/mnt/x", "-o", "max_uploads=0"]).fs.maxUploads == 1)
    }

    @Test func mountCommandLine() throws {
        let c = try MountCommand.parse(["10.0.0.1:22122,10.0.0.2:22122", "/mnt/fdfs", "-o",
                                        "_netdev,allow_other,nofail,x-systemd.automount,defaults,uid=1000,gid=100,umask=027,attr_timeout=5,state_dir=/tmp/s,group=group2,ro", "-f"])
        #expect(c.foreground && c.source == "10.0.0.1:22122,10.0.0.2:22122" && c.mountpoint == "/mnt/fdfs")
        #expect(c.fs.uid == 1000 && c.fs.gid == 100 && c.fs.umask == 0o027 && c.fs.attrTimeout == 5 && c.fs.group == "group2")
        #expect(c.readOnly && c.stateDir == "/tmp/s")
        #expect(c.fuseOptions == ["allow_other", "ro", "fsname=10.0.0.1:22122;10.0.0.2:22122", "subtype=fdfsfs", "default_permissions"])
        #expect(!(try MountCommand.parse(["s", "/m", "-o", "no_default_permissions"]).fuseOptions.contains("default_permissions")))
        #expect(throws: MountCommand.ParseError.self) { try MountCommand.parse(["s", "/m", "-o", "nonsense"]) }
        #expect(throws: MountCommand.ParseError.self) { try MountCommand.parse(["s"]) }
        #expect(throws: MountCommand.ParseError.self) { try MountCommand.parse(["s", "/m", "-o", "attr_timeout=abc"]) }
        let d = try MountCommand.parse(["/etc/fdfs/client.conf", "/m", "-d"])
        #expect(d.debug && d.foreground && d.resolvedStateDir.hasPrefix("/var/lib/fdfsfs/"))
        #expect(try MountCommand.parse(["memory:", "/m"]).memoryStore)
    }
}
