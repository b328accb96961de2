import Testing
import FuseTypes
@testable import FDFSFileSystem
#if canImport(Glibc)
import Glibc
#endif

let dirMode = UInt32(S_IFDIR) | 0o755
let fileMode = UInt32(S_IFREG) | 0o644

func expectErrno(_ errno: Int32, _ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async {
    do {
        try await body()
        Issue.record("expected errno \(errno), got success", sourceLocation: sourceLocation)
    } catch let error as FSError {
        #expect(error.errno == errno, "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected FSError errno \(errno), got \(error)", sourceLocation: sourceLocation)
    }
}

/// The naming layer's suite, run against both engines (SQLite in memory; a namespace of its own
/// in the private PostgreSQL the tests start).
@Suite("Naming engines", .serialized)
struct NamingStoreTests {
    let root = NamingStore.rootID

    @Test(arguments: EngineKind.allCases) func createLookupAndDuplicate(engine: EngineKind) async throws {
        let s = try await makeEngine(engine)
        defer { shutdownLater(s) }
        let d = try await s.create(parent: root, name: "d", mode: dirMode, uid: 1, gid: 2)
        let f = try await s.create(parent: d.id, name: "f", mode: fileMode, uid: 1, gid: 2)
        #expect(try await s.lookup(parent: d.id, name: "f")?.id == f.id)
        #expect(try await s.node(d.id)?.nlink == 2)
        #expect(try await s.node(root)?.nlink == 3)
        await expectErrno(EEXIST) { _ = try await s.create(parent: d.id, name: "f", mode: fileMode, uid: 0, gid: 0) }
        await expectErrno(ENOTDIR) { _ = try await s.create(parent: f.id, name: "x", mode: fileMode, uid: 0, gid: 0) }
    }

    @Test(arguments: EngineKind.allCases) func rmdirNonEmptyAndUnlinkKinds(engine: EngineKind) async throws {
        let s = try await makeEngine(engine)
        defer { shutdownLater(s) }
        let d = try await s.create(parent: root, name: "d", mode: dirMode, uid: 0, gid: 0)
        _ = try await s.create(parent: d.id, name: "f", mode: fileMode, uid: 0, gid: 0)
        await expectErrno(ENOTEMPTY) { _ = try await s.remove(parent: root, name: "d", directory: true) }
        await expectErrno(EISDIR) { _ = try await s.remove(parent: root, name: "d", directory: false) }
        await expectErrno(ENOTDIR) { _ = try await s.remove(parent: d.id, name: "f", directory: true) }
        let gone = try await s.remove(parent: d.id, name: "f", directory: false)
        #expect(gone.nlink == 0)
        let dd = try await s.remove(parent: root, name: "d", directory: true)
        #expect(dd.nlink == 0)
        #expect(try await s.node(root)?.nlink == 2)
    }

    @Test(arguments: EngineKind.allCases) func hardLinksShareTheNode(engine: EngineKind) async throws {
        let s = try await makeEngine(engine)
        defer { shutdownLater(s) }
        let f = try await s.create(parent: root, name: "f", mode: fileMode, uid: 0, gid: 0)
        let l = try await s.link(node: f.id, parent: root, name: "g")
        #expect(l.id == f.id && l.nlink == 2)
        let after = try await s.remove(parent: root, name: "f", directory: false)
        #expect(after.nlink == 1)
        #expect(try await s.lookup(parent: root, name: "g")?.nlink == 1)
        let d = try await s.create(parent: root, name: "d", mode: dirMode, uid: 0, gid: 0)
        await expectErrno(EPERM) { _ = try await s.link(node: d.id, parent: root, name: "d2") }
    }

    @Test(arguments: EngineKind.allCases) func renameVariants(engine: EngineKind) async throws {
        let s = try await makeEngine(engine)
        defer { shutdownLater(s) }
        let a = try await s.create(parent: root, name: "a", mode: dirMode, uid: 0, gid: 0)
        let b = try await s.create(parent: a.id, name: "b", mode: dirMode, uid: 0, gid: 0)
        let c = try await s.create(parent: b.id, name: "c", mode: dirMode, uid: 0, gid: 0)
        let f = try await s.create(parent: root, name: "f", mode: fileMode, uid: 0, gid: 0)
        let g = try await s.create(parent: root, name: "g", mode: fileMode, uid: 0, gid: 0)
        // a directory into itself or below itself
        await expectErrno(EINVAL) { _ = try await s.rename(parent: root, name: "a", newParent: c.id, newName: "x", flags: 0) }
        await expectErrno(EINVAL) { _ = try await s.rename(parent: root, name: "a", newParent: a.id, newName: "x", flags: 0) }
        // move a directory deep, nlink bookkeeping
        _ = try await s.rename(parent: a.id, name: "b", newParent: root, newName: "b2", flags: 0)
        #expect(try await s.node(a.id)?.nlink == 2)
        #expect(try await s.lookup(parent: root, name: "b2")?.id == b.id)
        // noreplace
        await expectErrno(EEXIST) { _ = try await s.rename(parent: root, name: "f", newParent: root, newName: "g", flags: RENAME_NOREPLACE_FLAG) }
        // file over directory and directory over file
        await expectErrno(EISDIR) { _ = try await s.rename(parent: root, name: "f", newParent: root, newName: "a", flags: 0) }
        await expectErrno(ENOTDIR) { _ = try await s.rename(parent: root, name: "a", newParent: root, newName: "f", flags: 0) }
        // directory over a non-empty directory
        await expectErrno(ENOTEMPTY) { _ = try await s.rename(parent: root, name: "a", newParent: root, newName: "b2", flags: 0) }
        // exchange a file and a directory
        try await s.rename(parent: root, name: "f", newParent: b.id, newName: "c", flags: RENAME_EXCHANGE_FLAG).forEach { _ in }
        #expect(try await s.lookup(parent: root, name: "f")?.id == c.id)
        #expect(try await s.lookup(parent: b.id, name: "c")?.id == f.id)
        await expectErrno(ENOENT) { _ = try await s.rename(parent: root, name: "g", newParent: root, newName: "nothing", flags: RENAME_EXCHANGE_FLAG) }
        // replace a file: the old target loses its last name
        let dead = try await s.rename(parent: root, name: "g", newParent: b.id, newName: "c", flags: 0)
        #expect(dead.map(\.id) == [f.id])
        #expect(try await s.lookup(parent: root, name: "g") == nil)
        #expect(try await s.lookup(parent: b.id, name: "c")?.id == g.id)
    }

    @Test(arguments: EngineKind.allCases) func readdirOffsetsAreStable(engine: EngineKind) async throws {
        let s = try await makeEngine(engine)
        defer { shutdownLater(s) }
        for i in 0..<10 { _ = try await s.create(parent: root, name: FileName("n\(i)"), mode: fileMode, uid: 0, gid: 0) }
        let first = try await s.list(parent: root, afterEntry: 0, limit: 4)
        #expect(first.map(\.name) == ["n0", "n1", "n2", "n3"])
        _ = try await s.remove(parent: root, name: "n1", directory: false)
        let rest = try await s.list(parent: root, afterEntry: first.last!.entryID, limit: 100)
        #expect(rest.map(\.name) == (4..<10).map { FileName("n\($0)") })
    }

    @Test func persistsAcrossReopenWithStableInodes() async throws {
        let dir = "/tmp/fdfsfs-naming-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(dir, 0o700)
        defer { _ = unlink(dir + "/db"); _ = unlink(dir + "/db-wal"); _ = unlink(dir + "/db-shm"); _ = rmdir(dir) }
        var ids: [Int64] = []
        do {
            let s = try NamingStore(path: dir + "/db")
            let d = try await s.create(parent: root, name: "d", mode: dirMode, uid: 5, gid: 6)
            let l = try await s.create(parent: d.id, name: "l", mode: UInt32(S_IFLNK) | 0o777, uid: 0, gid: 0, target: "../x")
            let f = try await s.create(parent: d.id, name: "f", mode: fileMode, uid: 0, gid: 0, fileID: "group1/M00/00/00/x")
            _ = try await s.setAttributes(f.id, mode: 0o600, uid: nil, gid: nil, size: nil, atime: nil, mtime: .time(Timespec(sec: 1_000_000)))
            ids = [d.id, l.id, f.id]
            // a deleted row's number is not reused
            let tmp = try await s.create(parent: root, name: "tmp", mode: fileMode, uid: 0, gid: 0)
            _ = try await s.remove(parent: root, name: "tmp", directory: false)
            _ = try await s.purge(tmp.id)
            ids.append(tmp.id)
        }
        let s = try NamingStore(path: dir + "/db")
        let d = try #require(try await s.lookup(parent: root, name: "d"))
        #expect(d.id == ids[0] && d.uid == 5 && d.gid == 6)
        #expect(try await s.lookup(parent: d.id, name: "l")?.targetName == "../x")
        let f = try #require(try await s.lookup(parent: d.id, name: "f"))
        #expect(f.id == ids[2] && f.mode & 0o7777 == 0o600 && f.mtimeNs == 1_000_000_000_000_000 && f.fileID == "group1/M00/00/00/x")
        let fresh = try await s.create(parent: root, name: "fresh", mode: fileMode, uid: 0, gid: 0)
        #expect(fresh.id > ids[3])
    }

    @Test(arguments: EngineKind.allCases) func purgeQueuesTheRemoteDeleteOnlyForTheLastReference(engine: EngineKind) async throws {
        let s = try await makeEngine(engine)
        defer { shutdownLater(s) }
        let a = try await s.create(parent: root, name: "a", mode: fileMode, uid: 0, gid: 0, fileID: "g/M00/00/00/same")
        let b = try await s.create(parent: root, name: "b", mode: fileMode, uid: 0, gid: 0, fileID: "g/M00/00/00/same")
        _ = try await s.remove(parent: root, name: "a", directory: false)
        #expect(try await s.purge(a.id) == nil, "b still refers to the file")
        _ = try await s.remove(parent: root, name: "b", directory: false)
        let queued = try await s.purge(b.id)
        #expect(queued?.fileID == "g/M00/00/00/same")
        #expect(try await s.pendingDeletes().map(\.fileID) == ["g/M00/00/00/same"])
    }
}

/// The in-memory cache of nodes and names (issue 12) follows every committed change, whoever
/// made it: each step reads through the cache first, then checks it against a fresh store on
/// the same database file, which has no cache history.
@Suite("NamingStore cache coherence")
struct NamingCacheTests {
    let root = NamingStore.rootID

    @Test func everyMutationIsSeenThroughTheCache() async throws {
        let path = "/tmp/fdfsfs-cache-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) } }
        let s = try NamingStore(path: path)
        func agree(_ parent: Int64, _ name: FileName, _ what: String) async throws {
            let cached = try await s.lookup(parent: parent, name: name)
            let fresh = try await NamingStore(path: path).lookup(parent: parent, name: name)
            #expect(cached == fresh, "\(what): \(name) cached \(String(describing: cached)) fresh \(String(describing: fresh))")
        }
        // Absent names are cached as absent, and a create replaces that answer.
        #expect(try await s.lookup(parent: root, name: "a") == nil)
        let a = try await s.create(parent: root, name: "a", mode: fileMode, uid: 0, gid: 0)
        if case .child(let id) = s.cache.entry(parent: root, name: "a") { #expect(id == a.id) } else {
            Issue.record("a create leaves its name in the cache (the next lookup needs no database)")
        }
        try await agree(root, "a", "create")
        // Attributes, bind, commit: the node changes under the same name.
        #expect(try await s.node(a.id)?.mode == fileMode)
        _ = try await s.setAttributes(a.id, mode: 0o600, uid: 7, gid: nil, size: nil, atime: nil, mtime: nil)
        #expect(try await s.node(a.id)?.uid == 7)
        try await agree(root, "a", "chmod")
        _ = try await s.commitWrite(a.id, fileID: "group1/M00/00/00/x", size: 42)
        #expect(try await s.node(a.id)?.size == 42)
        // Rename onto a name cached as absent, and away from a cached name.
        #expect(try await s.lookup(parent: root, name: "b") == nil)
        _ = try await s.rename(parent: root, name: "a", newParent: root, newName: "b", flags: 0)
        try await agree(root, "a", "rename (old name)")
        try await agree(root, "b", "rename (new name)")
        // Exchange, link, unlink.
        let c = try await s.create(parent: root, name: "c", mode: fileMode, uid: 0, gid: 0)
        _ = try await s.lookup(parent: root, name: "c")
        _ = try await s.rename(parent: root, name: "b", newParent: root, newName: "c", flags: RENAME_EXCHANGE_FLAG)
        #expect(try await s.lookup(parent: root, name: "c")?.id == a.id)
        #expect(try await s.lookup(parent: root, name: "b")?.id == c.id)
        _ = try await s.link(node: a.id, parent: root, name: "hard")
        #expect(try await s.node(a.id)?.nlink == 2)
        try await agree(root, "hard", "link")
        _ = try await s.remove(parent: root, name: "hard", directory: false)
        try await agree(root, "hard", "unlink")
        #expect(try await s.node(a.id)?.nlink == 1)
        // A directory's link count and times follow its children.
        let d = try await s.create(parent: root, name: "d", mode: dirMode, uid: 0, gid: 0)
        let before = try await s.node(root)?.nlink
        _ = try await s.create(parent: d.id, name: "sub", mode: dirMode, uid: 0, gid: 0)
        #expect(try await s.node(d.id)?.nlink == 3)
        _ = try await s.remove(parent: d.id, name: "sub", directory: true)
        #expect(try await s.node(d.id)?.nlink == 2)
        #expect(try await s.node(root)?.nlink == before)
        // Purge drops the node.
        _ = try await s.remove(parent: root, name: "b", directory: false)
        _ = try await s.purge(c.id)
        #expect(try await s.node(c.id) == nil)
    }
}
