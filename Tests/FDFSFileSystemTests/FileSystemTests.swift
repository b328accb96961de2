import Testing
import FuseTypes
import Synchronization
@testable import FDFSFileSystem
#if canImport(Glibc)
import Glibc
#endif

/// MemoryFileStore with injectable delete failures (mountpoint-s3's failure_client idea).
final class FlakyStore: FileStore {
    let inner: MemoryFileStore
    let failDeletes = Mutex(false)
    let failGroups = Mutex(false)
    init(_ inner: MemoryFileStore) { self.inner = inner }
    func download(_ f: String, offset: Int64, length: Int64, storage: StorageHint?) async throws(FSError) -> [UInt8] { try await inner.download(f, offset: offset, length: length, storage: storage) }
    func upload(_ d: [UInt8], ext: String, group: String?, appender: Bool) async throws(FSError) -> String { try await inner.upload(d, ext: ext, group: group, appender: appender) }
    func append(_ d: [UInt8], to f: String) async throws(FSError) { try await inner.append(d, to: f) }
    func modify(_ d: [UInt8], in f: String, at o: Int64) async throws(FSError) { try await inner.modify(d, in: f, at: o) }
    func truncate(_ f: String, to s: Int64) async throws(FSError) { try await inner.truncate(f, to: s) }
    func delete(_ f: String) async throws(FSError) {
        if failDeletes.withLock({ $0 }) { throw FSError(EIO, "injected delete failure") }
        try await inner.delete(f)
    }
    func metadata(of f: String) async throws(FSError) -> [String: String] { try await inner.metadata(of: f) }
    func setMetadata(_ m: [String: String], for f: String, merge: Bool) async throws(FSError) { try await inner.setMetadata(m, for: f, merge: merge) }
    func fileInfo(_ f: String) async throws(FSError) -> StoreFileInfo { try await inner.fileInfo(f) }
    func listGroups() async throws(FSError) -> [StoreGroup] {
        if failGroups.withLock({ $0 }) { throw FSError(ECONNREFUSED, "injected tracker failure") }
        return try await inner.listGroups()
    }
    func decode(_ f: String) throws(FSError) -> DecodedFileID { try inner.decode(f) }
    func sourceStorage(of f: String) -> StorageHint? { inner.sourceStorage(of: f) }
}

struct Fixture {
    let store: MemoryFileStore
    let flaky: FlakyStore
    let fs: FDFSFileSystem
    /// The mounting user (may adopt file ids).
    let ctx = RequestContext(uid: UInt32(getuid()), gid: UInt32(getgid()))

    init(readAhead: ReadAheadConfig = ReadAheadConfig(), groupCacheTTL: Double = 30, memoryLimit: Int64 = 256 << 20) async throws {
        store = MemoryFileStore(groups: [
            StoreGroup(name: "group1", totalMB: 1000, freeMB: 600, storePathCount: 2, subdirCountPerPath: 256),
            StoreGroup(name: "group2", totalMB: 24, freeMB: 4, storePathCount: 1, subdirCountPerPath: 16),
        ])
        flaky = FlakyStore(store)
        var o = FDFSOptions()
        o.readAhead = readAhead
        o.groupCacheTTL = groupCacheTTL
        o.readAheadMemoryLimit = memoryLimit
        fs = FDFSFileSystem(store: flaky, naming: try NamingStore(path: nil), options: o)
        try await fs.start()
        fs.stop()
    }

    /// lookup, with a negative entry (inode 0, what the kernel caches as a miss) as ENOENT.
    func lookup(parent: UInt64, name: String) async throws(FSError) -> Entry {
        let e = try await fs.lookup(parent: parent, name: name, ctx: ctx)
        if e.attr.ino == 0 { throw FSError(ENOENT, "negative entry") }
        return e
    }

    /// Walks a slash path from the root with lookups (each counted, as the kernel would).
    func resolve(_ path: String) async throws(FSError) -> Entry {
        var ino = InodeTable.root
        var e: Entry? = nil
        for part in path.split(separator: "/") {
            e = try await lookup(parent: ino, name: String(part))
            ino = e!.attr.ino
        }
        guard let e else { throw FSError(EINVAL, "empty path") }
        return e
    }
}

@Suite("FDFSFileSystem")
struct FileSystemTests {
    @Test func byIDResolutionOfANormalFileNeedsNoRequestAfterLookup() async throws {
        let fx = try await Fixture()
        let data = Array("0123456789".utf8)
        let id = try await fx.store.upload(data, ext: "txt", group: "group1", appender: false)
        let e = try await fx.resolve(id)
        #expect(e.attr.size == 10 && e.attr.isRegular)
        let infos = fx.store.callCount("fileInfo")
        let (a, _) = try await fx.fs.getattr(ino: e.attr.ino, fh: nil)
        #expect(a.size == 10)
        #expect(fx.store.callCount("fileInfo") == infos, "getattr of a normal file decodes the id")
        let o = try await fx.fs.open(ino: e.attr.ino, flags: O_RDONLY, ctx: fx.ctx)
        #expect(try await fx.fs.read(ino: e.attr.ino, fh: o.fh, offset: 2, size: 100) == Array("23456789".utf8))
        let downloads = fx.store.callCount("download")
        #expect(try await fx.fs.read(ino: e.attr.ino, fh: o.fh, offset: 10, size: 100) == [])
        #expect(fx.store.callCount("download") == downloads, "EOF is answered locally")
        try await fx.fs.release(ino: e.attr.ino, fh: o.fh)
        await expectErrno(EPERM) { _ = try await fx.fs.open(ino: e.attr.ino, flags: O_WRONLY, ctx: fx.ctx) }   // immutable: write it through a name
    }

    @Test func appenderSizeComesFromFileInfo() async throws {
        let fx = try await Fixture()
        let id = try await fx.store.upload(Array("abc".utf8), ext: "", group: "group2", appender: true)
        try await fx.store.append(Array("def".utf8), to: id)
        let e = try await fx.resolve(id)
        #expect(e.attr.size == 6)
    }

    @Test func malformedIDsAreENOENTAndCachedNegatively() async throws {
        let fx = try await Fixture()
        let leaf = try await fx.resolve("group1/M00/00/00")
        let before = fx.store.callCount("fileInfo")
        await expectErrno(ENOENT) { _ = try await fx.lookup(parent: leaf.attr.ino, name: "garbage") }
        await expectErrno(ENOENT) { _ = try await fx.lookup(parent: leaf.attr.ino, name: "garbage") }
        #expect(fx.store.callCount("fileInfo") == before, "malformed ids never reach the server")
        let unknown = "fwAAAWsKZv6AeAFmAAAAEkmkZMY999.txt"
        await expectErrno(ENOENT) { _ = try await fx.lookup(parent: leaf.attr.ino, name: unknown) }
        await expectErrno(ENOENT) { _ = try await fx.lookup(parent: leaf.attr.ino, name: unknown) }
        #expect(fx.store.callCount("fileInfo") == before + 1, "a missing id is asked once, then cached")
        let negative = try await fx.fs.lookup(parent: leaf.attr.ino, name: "garbage", ctx: fx.ctx)
        #expect(negative.attr.ino == 0 && negative.entryTimeout == fx.fs.options.negativeTTL, "misses are negative entries the kernel caches")
        #expect(fx.fs.inodes.withLock { $0.lookupCount(0) } == 0, "negative entries are not counted")
        await expectErrno(ENOENT) { _ = try await fx.resolve("group1/M02") }
        await expectErrno(ENOENT) { _ = try await fx.resolve("group2/M00/10") }
        await expectErrno(ENOENT) { _ = try await fx.resolve("group1/M00/0a") }
        await expectErrno(ENOENT) { _ = try await fx.resolve("group3") }
    }

    @Test func rootListsGroupsAndNamedEntries() async throws {
        let fx = try await Fixture()
        _ = try await fx.fs.mkdir(parent: InodeTable.root, name: "docs", mode: 0o755, ctx: fx.ctx)
        let entries = try await fx.fs.readdir(ino: InodeTable.root, fh: 0, offset: 0, plus: true)
        #expect(entries.map(\.name) == [".", "..", "group1", "group2", "docs"])
        // resuming after each offset gives the rest
        for (i, e) in entries.enumerated() {
            let rest = try await fx.fs.readdir(ino: InodeTable.root, fh: 0, offset: e.nextOffset, plus: false)
            #expect(rest.map(\.name) == entries.dropFirst(i + 1).map(\.name))
        }
        await expectErrno(EEXIST) { _ = try await fx.fs.mkdir(parent: InodeTable.root, name: "group1", mode: 0o755, ctx: fx.ctx) }
        await expectErrno(EPERM) {
            try await fx.fs.rename(parent: InodeTable.root, name: "docs", newParent: InodeTable.root, newName: "group2", flags: 0, ctx: fx.ctx)
        }
        await expectErrno(ENAMETOOLONG) { _ = try await fx.fs.mkdir(parent: InodeTable.root, name: String(repeating: "x", count: 256), mode: 0o755, ctx: fx.ctx) }
    }

    @Test func unlinkDeletesTheRemoteFileAfterLastNameAndForget() async throws {
        let fx = try await Fixture()
        let id = try await fx.store.upload(Array("data".utf8), ext: "bin", group: "group1", appender: false)
        let e = try await fx.fs.mknod(parent: InodeTable.root, name: "f", mode: UInt32(S_IFREG) | 0o644, rdev: 0, ctx: fx.ctx)
        try await fx.fs.setxattr(ino: e.attr.ino, name: "user.fdfs.file_id", value: Array(id.utf8), flags: [], ctx: fx.ctx)
        _ = try await fx.fs.link(ino: e.attr.ino, newParent: InodeTable.root, newName: "g", ctx: fx.ctx)
        try await fx.fs.unlink(parent: InodeTable.root, name: "f", ctx: fx.ctx)
        #expect(fx.store.callCount("delete") == 0, "another name remains")
        try await fx.fs.unlink(parent: InodeTable.root, name: "g", ctx: fx.ctx)
        #expect(fx.store.callCount("delete") == 0, "the kernel still holds lookups: zombie")
        fx.fs.forget(ino: e.attr.ino, nlookup: 2)
        await fx.fs.drainBackground()
        #expect(fx.store.callCount("delete") == 1)
        await expectErrno(ENOENT) { _ = try await fx.store.fileInfo(id) }
    }

    @Test func failedRemoteDeleteIsQueuedAndRetried() async throws {
        let fx = try await Fixture()
        let id = try await fx.store.upload(Array("data".utf8), ext: "bin", group: "group1", appender: false)
        let e = try await fx.fs.create(parent: InodeTable.root, name: "f", mode: 0o644, flags: O_WRONLY, ctx: fx.ctx)
        try await fx.fs.release(ino: e.0.attr.ino, fh: e.1.fh)
        try await fx.fs.setxattr(ino: e.0.attr.ino, name: "user.fdfs.file_id", value: Array(id.utf8), flags: [], ctx: fx.ctx)
        fx.fs.forget(ino: e.0.attr.ino, nlookup: 1)
        fx.flaky.failDeletes.withLock { $0 = true }
        try await fx.fs.unlink(parent: InodeTable.root, name: "f", ctx: fx.ctx)
        #expect(try await fx.fs.naming.pendingDeletes().map(\.fileID) == [id])
        fx.flaky.failDeletes.withLock { $0 = false }
        await fx.fs.retryPendingDeletes()
        #expect(try await fx.fs.naming.pendingDeletes().isEmpty)
        await expectErrno(ENOENT) { _ = try await fx.store.fileInfo(id) }
    }

    @Test func byIDUnlinkDeletesTheFile() async throws {
        let fx = try await Fixture()
        let id = try await fx.store.upload(Array("x".utf8), ext: "", group: "group1", appender: false)
        let leaf = try await fx.resolve(String(id.split(separator: "/").dropLast().joined(separator: "/")))
        try await fx.fs.unlink(parent: leaf.attr.ino, name: String(id.split(separator: "/").last!), ctx: fx.ctx)
        await expectErrno(ENOENT) { _ = try await fx.store.fileInfo(id) }
        await expectErrno(ENOENT) { _ = try await fx.resolve(id) }
    }

    @Test func readsStayCorrectWhenTheGlobalBudgetIsExhausted() async throws {
        let fx = try await Fixture(readAhead: ReadAheadConfig(initialWindow: 64 << 10, maxWindow: 1 << 20, chunkSize: 256 << 10),
                                   memoryLimit: 300 << 10)
        var data = [UInt8](repeating: 0, count: 3 << 20)
        for i in 0..<data.count { data[i] = UInt8(truncatingIfNeeded: i / 7) }
        let id = try await fx.store.upload(data, ext: "bin", group: "group1", appender: false)
        let e = try await fx.resolve(id)
        // two interleaved readers share a budget smaller than one window
        let a = try await fx.fs.open(ino: e.attr.ino, flags: O_RDONLY, ctx: fx.ctx)
        let b = try await fx.fs.open(ino: e.attr.ino, flags: O_RDONLY, ctx: fx.ctx)
        var outA: [UInt8] = [], outB: [UInt8] = []
        var off: Int64 = 0
        while off < Int64(data.count) {
            outA += try await fx.fs.read(ino: e.attr.ino, fh: a.fh, offset: off, size: 100_000)
            outB += try await fx.fs.read(ino: e.attr.ino, fh: b.fh, offset: off, size: 100_000)
            #expect(fx.fs.budget.inUse <= 300 << 10)
            off += 100_000
        }
        #expect(outA == data && outB == data)
        try await fx.fs.release(ino: e.attr.ino, fh: a.fh)
        try await fx.fs.release(ino: e.attr.ino, fh: b.fh)
        #expect(fx.fs.budget.inUse == 0)
    }

    @Test func readAheadSpreadsChunksOverReplicas() async throws {
        let store = MemoryFileStore(replicaHosts: ["10.0.0.1", "10.0.0.2"], remembersSources: false)
        let fs = FDFSFileSystem(store: store, naming: try NamingStore(path: nil))
        try await fs.start()
        fs.stop()
        let data = [UInt8](repeating: 7, count: 8 << 20)
        let id = try await store.upload(data, ext: "bin", group: "group1", appender: false)
        var ino = InodeTable.root
        for part in id.split(separator: "/") { ino = try await fs.lookup(parent: ino, name: String(part), ctx: RequestContext()).attr.ino }
        let o = try await fs.open(ino: ino, flags: O_RDONLY, ctx: RequestContext())
        var off: Int64 = 0, total = 0
        while true {
            let chunk = try await fs.read(ino: ino, fh: o.fh, offset: off, size: 128 << 10)
            if chunk.isEmpty { break }
            total += chunk.count
            off += Int64(chunk.count)
        }
        #expect(total == data.count)
        #expect(store.callCount("replicas") == 1, "QUERY_FETCH_ALL once per open file")
        #expect(store.downloads(from: "10.0.0.1") > 0 && store.downloads(from: "10.0.0.2") > 0, "chunks go to both replicas")
        try await fs.release(ino: ino, fh: o.fh)
    }

    @Test func namespaceSurvivesUnreachableTrackers() async throws {
        let fx = try await Fixture(groupCacheTTL: 0)
        _ = try await fx.fs.mkdir(parent: InodeTable.root, name: "docs", mode: 0o755, ctx: fx.ctx)
        fx.flaky.failGroups.withLock { $0 = true }
        #expect(try await fx.fs.lookup(parent: InodeTable.root, name: "docs", ctx: fx.ctx).attr.isDirectory)
        #expect(try await fx.resolve("group1").attr.isDirectory)
        let names = try await fx.fs.readdir(ino: InodeTable.root, fh: 0, offset: 0, plus: false).map(\.name)
        #expect(names == [".", "..", "group1", "group2", "docs"])
    }

    @Test func statfsSumsTheGroups() async throws {
        let fx = try await Fixture()
        let s = try await fx.fs.statfs(ino: InodeTable.root)
        #expect(s.blocks * s.blockSize == 1024 * 1024 * 1024)
        #expect(s.blocksAvailable * s.blockSize == 604 * 1024 * 1024)
    }

    @Test func sequentialReadOfALargeFileIsIntactAndBounded() async throws {
        let fx = try await Fixture(readAhead: ReadAheadConfig(initialWindow: 64 << 10, maxWindow: 1 << 20, chunkSize: 256 << 10, backwardTolerance: 128 << 10))
        var data = [UInt8](repeating: 0, count: 5 << 20)
        for i in 0..<data.count { data[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 12) }
        let id = try await fx.store.upload(data, ext: "bin", group: "group1", appender: false)
        let e = try await fx.resolve(id)
        let o = try await fx.fs.open(ino: e.attr.ino, flags: O_RDONLY, ctx: fx.ctx)
        var out: [UInt8] = []
        var off: Int64 = 0
        while true {
            let chunk = try await fx.fs.read(ino: e.attr.ino, fh: o.fh, offset: off, size: 128 << 10)
            if chunk.isEmpty { break }
            out += chunk
            off += Int64(chunk.count)
            #expect(fx.fs.budget.inUse <= fx.fs.options.readAhead.perFileLimit(readSize: 128 << 10))
        }
        #expect(out == data)
        #expect(fx.store.callCount("download") < 40, "read-ahead batches requests")
        try await fx.fs.release(ino: e.attr.ino, fh: o.fh)
        #expect(fx.fs.budget.inUse == 0)
    }
}
