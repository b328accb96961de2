import Testing
import FuseTypes
import Synchronization
@testable import FDFSFileSystem
#if canImport(Glibc)
import Glibc
#endif

/// MemoryFileStore with injected failures on the calls that change files (fail the Nth such
/// call on, or every call of one kind with a given errno), counting the bytes sent per kind.
final class FaultyStore: FileStore {
    let inner: MemoryFileStore
    struct Faults {
        var failNth: Int?; var failOps: [String: Int32] = [:]; var calls = 0; var bytes: [String: Int64] = [:]
        /// Ops that reach the server and then never return (the process "dies" right after).
        var hangAfter: Set<String> = []
        /// Changing calls in progress, and the most at once; each takes `slow` when set.
        var inFlight = 0, peakInFlight = 0
        var slow: Duration?
    }
    let faults = Mutex(Faults())
    init(_ inner: MemoryFileStore) { self.inner = inner }

    func inject(_ op: String, _ errno: Int32?) { faults.withLock { $0.failOps[op] = errno } }
    /// Every changing call from the `n`th one (counted from now) fails with EIO; nil: heal.
    func failFrom(_ n: Int?) { faults.withLock { f in f.failNth = n.map { $0 + f.calls } } }
    func bytes(_ op: String) -> Int64 { faults.withLock { $0.bytes[op, default: 0] } }
    func hangAfter(_ op: String) { faults.withLock { _ = $0.hangAfter.insert(op) } }
    func slowDown(_ d: Duration?) { faults.withLock { $0.slow = d } }
    var peakInFlight: Int { faults.withLock { $0.peakInFlight } }
    var inFlightNow: Int { faults.withLock { $0.inFlight } }
    /// Counts the call in flight (and takes `slow`) around `body`.
    private func tracked<T>(_ body: () async throws(FSError) -> T) async throws(FSError) -> T {
        let slow = faults.withLock { f -> Duration? in f.inFlight += 1; f.peakInFlight = max(f.peakInFlight, f.inFlight); return f.slow }
        defer { faults.withLock { $0.inFlight -= 1 } }
        if let slow { try? await Task.sleep(for: slow) }
        return try await body()
    }
    /// The server has done `op`; the caller never hears back (until the task is cancelled).
    private func hangIfAsked(_ op: String) async throws(FSError) {
        guard faults.withLock({ $0.hangAfter.contains(op) }) else { return }
        try? await Task.sleep(for: .seconds(3600))
        throw FSError(EIO, "\(op): gave up waiting")
    }

    private func gate(_ op: String, _ n: Int) throws(FSError) {
        let e: Int32? = faults.withLock { f in
            f.calls += 1
            if let e = f.failOps[op] { return e }
            if let nth = f.failNth, f.calls >= nth { return EIO }
            f.bytes[op, default: 0] += Int64(n)
            return nil
        }
        if let e { throw FSError(e, "injected \(op) failure") }
    }

    func download(_ f: String, offset: Int64, length: Int64, storage: StorageHint?) async throws(FSError) -> [UInt8] { try await inner.download(f, offset: offset, length: length, storage: storage) }
    func upload(_ d: [UInt8], ext: String, group: String?, appender: Bool) async throws(FSError) -> String {
        try gate("upload", d.count)
        let id = try await tracked { () async throws(FSError) in try await inner.upload(d, ext: ext, group: group, appender: appender) }
        try await hangIfAsked("upload")
        return id
    }
    func append(_ d: [UInt8], to f: String) async throws(FSError) {
        try gate("append", d.count)
        try await tracked { () async throws(FSError) in try await inner.append(d, to: f) }
        try await hangIfAsked("append")
    }
    func uploadSlave(_ d: [UInt8], master: String, prefix: String, ext: String) async throws(FSError) -> String {
        try gate("uploadSlave", d.count)
        let id = try await inner.uploadSlave(d, master: master, prefix: prefix, ext: ext)
        try await hangIfAsked("uploadSlave")
        return id
    }
    func modify(_ d: [UInt8], in f: String, at o: Int64) async throws(FSError) {
        try gate("modify", d.count)
        try await tracked { () async throws(FSError) in try await inner.modify(d, in: f, at: o) }
        try await hangIfAsked("modify")
    }
    func truncate(_ f: String, to s: Int64) async throws(FSError) { try gate("truncate", 0); try await inner.truncate(f, to: s) }
    func delete(_ f: String) async throws(FSError) { try await inner.delete(f) }
    func metadata(of f: String) async throws(FSError) -> [String: String] { try await inner.metadata(of: f) }
    func setMetadata(_ m: [String: String], for f: String, merge: Bool) async throws(FSError) { try await inner.setMetadata(m, for: f, merge: merge) }
    func fileInfo(_ f: String) async throws(FSError) -> StoreFileInfo { try await inner.fileInfo(f) }
    func listGroups() async throws(FSError) -> [StoreGroup] { try await inner.listGroups() }
    func decode(_ f: String) throws(FSError) -> DecodedFileID { try inner.decode(f) }
    func sourceStorage(of f: String) -> StorageHint? { inner.sourceStorage(of: f) }
}

struct WriteFixture {
    let store = MemoryFileStore()
    let faulty: FaultyStore
    let naming: NamingStore
    let stagingDir: String
    let fs: FDFSFileSystem
    let ctx = RequestContext(uid: UInt32(getuid()), gid: UInt32(getgid()))
    static let chunk: Int64 = 64 << 10

    /// `failing`: calls that fail with the errno from the start (before `start()` runs).
    init(naming: NamingStore? = nil, stagingDir: String? = nil, store: MemoryFileStore? = nil, failing: [String: Int32] = [:],
         maxStaged: Int64? = nil, maxUploads: Int? = nil) async throws {
        let base = store ?? MemoryFileStore()
        faulty = FaultyStore(base)
        for (op, e) in failing { faulty.inject(op, e) }
        self.naming = try naming ?? NamingStore(path: nil)
        self.stagingDir = stagingDir ?? FDFSFileSystem.makeStagingDir(nil)
        var o = FDFSOptions()
        o.stagingDir = self.stagingDir
        o.writeChunk = Self.chunk
        if let maxStaged { o.maxStaged = maxStaged }
        if let maxUploads { o.maxUploads = maxUploads }
        fs = FDFSFileSystem(store: faulty, naming: self.naming, options: o)
        try await fs.start()
        fs.stop()
    }
    var mem: MemoryFileStore { faulty.inner }

    func create(_ name: String) async throws -> (ino: UInt64, fh: UInt64) {
        let (e, o) = try await fs.create(parent: InodeTable.root, name: name, mode: 0o644, flags: O_WRONLY, ctx: ctx)
        return (e.attr.ino, o.fh)
    }

    func close(_ ino: UInt64, _ fh: UInt64) async throws {
        try await fs.flush(ino: ino, fh: fh)
        try await fs.release(ino: ino, fh: fh)
    }

    func content(_ ino: UInt64) async throws -> [UInt8] {
        guard let n = try await naming.node(Int64(ino)), let fid = n.fileID else { return [] }
        return try await mem.download(fid, offset: 0, length: n.size, storage: nil)
    }

    /// A named file bound to an existing FastDFS file.
    func adopt(_ name: String, data: [UInt8], appender: Bool) async throws -> (ino: UInt64, id: String) {
        let id = try await mem.upload(data, ext: "bin", group: nil, appender: appender)
        let n = try await naming.create(parent: NamingStore.rootID, name: name, mode: 0o100644, uid: 0, gid: 0)
        _ = try await naming.bind(n.id, fileID: id, size: Int64(data.count), mtime: nil)
        return (UInt64(n.id), id)
    }
}

/// Bytes that do not repeat with any period a chunk size divides (xorshift).
func noise(_ n: Int, seed: UInt64 = 1) -> [UInt8] {
    var x = 0x9E37_79B9_7F4A_7C15 ^ seed
    return (0..<n).map { _ in x ^= x << 13; x ^= x >> 7; x ^= x << 17; return UInt8(truncatingIfNeeded: x >> 24) }
}

func pattern(_ n: Int, seed: UInt8 = 1) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) } }

@Suite("Write-back")
struct WriteBackTests {
    @Test func sequentialWritesStreamInChunksAndCloseRecordsIdAndSize() async throws {
        let fx = try await WriteFixture()
        let (ino, fh) = try await fx.create("big.bin")
        let data = pattern(1 << 20)
        for off in stride(from: 0, to: data.count, by: 32 << 10) {
            _ = try await fx.fs.write(ino: ino, fh: fh, offset: Int64(off), data: Array(data[off..<off + (32 << 10)]))
        }
        // Before close: all whole chunks are on the server, the name records nothing yet.
        #expect(fx.faulty.bytes("upload") + fx.faulty.bytes("modify") >= Int64(data.count) - WriteFixture.chunk)
        #expect(try await fx.naming.node(Int64(ino))?.fileID == nil)
        var st = stat()
        let stagingFile = try #require(await fx.fs.writer(of: ino)?.state.stagingFile)
        #expect(stat(stagingFile, &st) == 0)
        #expect(Int64(st.st_blocks) * 512 <= 2 * WriteFixture.chunk, "shipped ranges are punched out of the staging file")
        try await fx.close(ino, fh)
        let n = try #require(try await fx.naming.node(Int64(ino)))
        #expect(n.size == Int64(data.count))
        #expect(try fx.mem.decode(n.fileID!).kind == .appender)
        #expect(try await fx.content(ino) == data)
        #expect(fx.faulty.bytes("upload") == WriteFixture.chunk, "one upload creates the appender, the rest are appends")
        #expect(try await fx.naming.stagedFiles().isEmpty)
    }

    @Test func aModificationTimeSetBeforeTheCloseIsKeptByItsCommit() async throws {
        // `cp -p`: data, then the times through the still-open file, then the close.
        let fx = try await WriteFixture()
        let when = Timespec(sec: 1_577_934_245, nsec: 5)
        for (name, size, onLibfusesThread) in [("small.txt", 3000, true), ("staged.bin", 300_000, false)] {
            let (ino, fh) = try await fx.create(name)
            _ = try await fx.fs.write(ino: ino, fh: fh, offset: 0, data: pattern(size))
            let change = SetAttr(mode: 0o600, mtime: .time(when), fh: fh)
            if onLibfusesThread {
                // Answered on libfuse's thread (the local database's transaction, no Task).
                let (attr, _) = try #require(fx.fs.immediateSetattr(ino: ino, changes: change, ctx: fx.ctx)).get()
                #expect(attr.mode == UInt32(S_IFREG) | 0o600 && attr.size == Int64(size) && attr.mtime == when)
            } else {
                _ = try await fx.fs.setattr(ino: ino, changes: change, ctx: fx.ctx)
            }
            try await fx.close(ino, fh)
            #expect(try await fx.naming.node(Int64(ino))?.mtimeNs == when.nanoseconds, "\(name): the time set is recorded")
            #expect(try await fx.naming.node(Int64(ino))?.mode == UInt32(S_IFREG) | 0o600)
            #expect(try await fx.content(ino) == pattern(size))
            // A write after it: the close stamps its own time again.
            let fh2 = try await fx.fs.open(ino: ino, flags: O_WRONLY, ctx: fx.ctx).fh
            _ = try await fx.fs.write(ino: ino, fh: fh2, offset: 0, data: [1])
            try await fx.close(ino, fh2)
            #expect(try await fx.naming.node(Int64(ino))?.mtimeNs ?? 0 > when.nanoseconds, "\(name): a later write moves it")
        }
    }

    @Test func aSmallEditInsideALargeAppenderSendsOnlyTheEdit() async throws {
        let fx = try await WriteFixture()
        let data = pattern(4 << 20)
        let (ino, id) = try await fx.adopt("a.bin", data: data, appender: true)
        let o = try await fx.fs.open(ino: ino, flags: O_RDWR, ctx: fx.ctx)
        let edit = [UInt8](repeating: 0xAB, count: 4096)
        _ = try await fx.fs.write(ino: ino, fh: o.fh, offset: 2 << 20, data: edit)
        try await fx.close(ino, o.fh)
        #expect(fx.faulty.bytes("modify") == 4096)
        #expect(fx.faulty.bytes("append") == 0 && fx.faulty.bytes("upload") == 0)
        var expected = data
        expected.replaceSubrange((2 << 20)..<((2 << 20) + 4096), with: edit)
        #expect(try await fx.naming.node(Int64(ino))?.fileID == id, "in-place edits keep the file id")
        #expect(try await fx.content(ino) == expected)
    }

    @Test func readsSeeTheirOwnWritesAcrossHandles() async throws {
        let fx = try await WriteFixture()
        let (ino, id) = try await fx.adopt("r.bin", data: pattern(1000), appender: true)
        let reader = try await fx.fs.open(ino: ino, flags: O_RDONLY, ctx: fx.ctx)
        #expect(try await fx.fs.read(ino: ino, fh: reader.fh, offset: 0, size: 10) == Array(pattern(1000)[0..<10]))
        let w1 = try await fx.fs.open(ino: ino, flags: O_RDWR, ctx: fx.ctx)
        let w2 = try await fx.fs.open(ino: ino, flags: O_RDWR, ctx: fx.ctx)
        _ = try await fx.fs.write(ino: ino, fh: w1.fh, offset: 5, data: [9, 9, 9])
        _ = try await fx.fs.write(ino: ino, fh: w2.fh, offset: 1000, data: [7, 7])
        var expected = pattern(1000)
        expected.replaceSubrange(5..<8, with: [9, 9, 9])
        expected += [7, 7]
        #expect(fx.faulty.bytes("modify") == 0, "nothing sent before a durability point")
        for fh in [reader.fh, w1.fh, w2.fh] {
            #expect(try await fx.fs.read(ino: ino, fh: fh, offset: 0, size: 2000) == expected)
        }
        #expect(try await fx.fs.getattr(ino: ino, fh: nil).0.size == 1002)
        try await fx.close(ino, w1.fh)
        try await fx.close(ino, w2.fh)
        #expect(try await fx.fs.read(ino: ino, fh: reader.fh, offset: 0, size: 2000) == expected, "the reader's read-ahead was dropped")
        #expect(try await fx.mem.download(id, offset: 0, length: 0, storage: nil) == expected)
    }

    @Test func writingANormalFileCopiesItAndDeletesTheOldID() async throws {
        let fx = try await WriteFixture()
        let data = pattern(300_000)
        let (ino, old) = try await fx.adopt("n.bin", data: data, appender: false)
        let o = try await fx.fs.open(ino: ino, flags: O_RDWR, ctx: fx.ctx)
        _ = try await fx.fs.write(ino: ino, fh: o.fh, offset: 1000, data: [1, 2, 3])
        try await fx.close(ino, o.fh)
        let n = try #require(try await fx.naming.node(Int64(ino)))
        #expect(n.fileID != old && n.size == 300_000)
        #expect(try fx.mem.decode(n.fileID!).kind == .appender)
        var expected = data
        expected.replaceSubrange(1000..<1003, with: [1, 2, 3])
        #expect(try await fx.content(ino) == expected)
        await expectErrno(ENOENT) { _ = try await fx.mem.fileInfo(old) }
    }

    @Test func openingANormalFileForWriteWithoutWritingKeepsIt() async throws {
        let fx = try await WriteFixture()
        let (ino, old) = try await fx.adopt("k.bin", data: pattern(100), appender: false)
        let o = try await fx.fs.open(ino: ino, flags: O_RDWR, ctx: fx.ctx)
        try await fx.close(ino, o.fh)
        #expect(try await fx.naming.node(Int64(ino))?.fileID == old)
        #expect(fx.faulty.bytes("upload") == 0)
    }

    @Test func aNormalFileSharedByTwoNamesIsNotDeletedByCopyOnWrite() async throws {
        let fx = try await WriteFixture()
        let (ino, old) = try await fx.adopt("one", data: pattern(100), appender: false)
        let other = try await fx.naming.create(parent: NamingStore.rootID, name: "two", mode: 0o100644, uid: 0, gid: 0)
        _ = try await fx.naming.bind(other.id, fileID: old, size: 100, mtime: nil)
        let o = try await fx.fs.open(ino: ino, flags: O_WRONLY | O_TRUNC, ctx: fx.ctx)
        _ = try await fx.fs.write(ino: ino, fh: o.fh, offset: 0, data: [1])
        try await fx.close(ino, o.fh)
        #expect(try await fx.content(ino) == [1])
        #expect(try await fx.mem.fileInfo(old).size == 100, "still referenced by another name")
    }

    @Test func truncateShrinksAndGrowsAnAppenderInPlace() async throws {
        let fx = try await WriteFixture()
        let (ino, id) = try await fx.adopt("t.bin", data: pattern(1000), appender: true)
        var c = SetAttr(); c.size = 400
        _ = try await fx.fs.setattr(ino: ino, changes: c, ctx: fx.ctx)
        #expect(try await fx.mem.fileInfo(id).size == 400)
        c.size = 600
        _ = try await fx.fs.setattr(ino: ino, changes: c, ctx: fx.ctx)
        #expect(try await fx.content(ino) == Array(pattern(1000)[0..<400]) + [UInt8](repeating: 0, count: 200))
        #expect(try await fx.naming.node(Int64(ino))?.fileID == id)
    }

    @Test func byIDWritesRefuseNormalFilesAndEditAppendersInPlace() async throws {
        let fx = try await WriteFixture()
        let normal = try await fx.mem.upload(pattern(10), ext: "", group: nil, appender: false)
        let appender = try await fx.mem.upload(pattern(10), ext: "", group: nil, appender: true)
        var ino = InodeTable.root
        for part in normal.split(separator: "/") { ino = try await fx.fs.lookup(parent: ino, name: String(part), ctx: fx.ctx).attr.ino }
        await expectErrno(EPERM) { _ = try await fx.fs.open(ino: ino, flags: O_WRONLY, ctx: fx.ctx) }
        ino = InodeTable.root
        for part in appender.split(separator: "/") { ino = try await fx.fs.lookup(parent: ino, name: String(part), ctx: fx.ctx).attr.ino }
        let o = try await fx.fs.open(ino: ino, flags: O_WRONLY, ctx: fx.ctx)
        _ = try await fx.fs.write(ino: ino, fh: o.fh, offset: 10, data: [1, 2])
        _ = try await fx.fs.write(ino: ino, fh: o.fh, offset: 0, data: [5])
        try await fx.close(ino, o.fh)
        #expect(try await fx.mem.download(appender, offset: 0, length: 0, storage: nil) == [5] + pattern(10)[1...] + [1, 2])
        var c = SetAttr(); c.size = 4
        #expect(try await fx.fs.setattr(ino: ino, changes: c, ctx: fx.ctx).0.size == 4)
        #expect(try await fx.mem.download(appender, offset: 0, length: 0, storage: nil) == [5] + pattern(10)[1..<4])
    }
}

@Suite("Write-back: staging and sending overlap (issue 13)")
struct WriteBackOverlapTests {
    @Test func writesGoOnWhileAChunkIsOnItsWayAndWaitOnlyAtTwoChunksStaged() async throws {
        let fx = try await WriteFixture()
        let (ino, fh) = try await fx.create("stream.bin")
        let c = Int(WriteFixture.chunk)
        let data = noise(6 * c, seed: 11)
        // Long enough that the second write is staged before the first chunk's request ends, even
        // on a loaded machine.
        fx.faulty.slowDown(.seconds(3))
        _ = try await fx.fs.write(ino: ino, fh: fh, offset: 0, data: Array(data[0..<c]))   // a chunk: streaming starts
        #expect(await eventuallyAsync { fx.faulty.inFlightNow == 1 }, "the first chunk is on its way")
        _ = try await fx.fs.write(ino: ino, fh: fh, offset: Int64(c), data: Array(data[c..<(2 * c)]))
        #expect(fx.faulty.inFlightNow == 1, "the second chunk was staged while the first was still being sent")
        fx.faulty.slowDown(nil)
        for k in 2..<6 { _ = try await fx.fs.write(ino: ino, fh: fh, offset: Int64(k * c), data: Array(data[(k * c)..<((k + 1) * c)])) }
        try await fx.close(ino, fh)
        #expect(try await fx.content(ino) == data)
        #expect(fx.faulty.peakInFlight == 1, "one request at a time per file")
    }
}

@Suite("Write-back: holes and huge sizes (issue 9)")
struct WriteBackHoleTests {
    @Test func aWriteFarPastTheEndSendsOnlyItsBytesAndGrowsTheFileWithTruncate() async throws {
        let fx = try await WriteFixture()
        let (ino, fh) = try await fx.create("sparse.bin")
        let at: Int64 = 64 << 20
        let data = pattern(4096, seed: 9)
        _ = try await fx.fs.write(ino: ino, fh: fh, offset: at, data: data)
        try await fx.close(ino, fh)
        #expect(fx.faulty.bytes("upload") == 0, "an empty appender file, then a sparse grow")
        #expect(fx.faulty.bytes("modify") == 4096, "only the written bytes cross the network")
        #expect(fx.faulty.bytes("append") == 0)
        let content = try await fx.content(ino)
        #expect(content.count == Int(at) + 4096)
        #expect(content[..<Int(at)].allSatisfy { $0 == 0 } && Array(content[Int(at)...]) == data)
        #expect(try await fx.naming.stagedFiles().isEmpty)
    }

    @Test func growingAFileIsOneTruncateAndAPetabyteIsEFBIGAtOnce() async throws {
        let fx = try await WriteFixture()
        let (ino, fh) = try await fx.create("grow.bin")
        _ = try await fx.fs.write(ino: ino, fh: fh, offset: 0, data: pattern(100))
        try await fx.close(ino, fh)
        var grow = SetAttr(); grow.size = 32 << 20
        #expect(try await fx.fs.setattr(ino: ino, changes: grow, ctx: fx.ctx).0.size == 32 << 20)
        #expect(fx.faulty.bytes("modify") + fx.faulty.bytes("upload") == 100, "no zero is sent")
        #expect(try await fx.content(ino).count == 32 << 20)
        var huge = SetAttr(); huge.size = 1 << 50
        await expectErrno(EFBIG) { _ = try await fx.fs.setattr(ino: ino, changes: huge, ctx: fx.ctx) }
        #expect(try await fx.fs.getattr(ino: ino, fh: nil).0.size == 32 << 20, "nothing changed")
        #expect(try await fx.naming.stagedFiles().isEmpty, "nothing staged: the next mount has nothing to replay")
        let o = try await fx.fs.open(ino: ino, flags: O_WRONLY, ctx: fx.ctx)
        await expectErrno(EFBIG) { _ = try await fx.fs.write(ino: ino, fh: o.fh, offset: FDFSFileSystem.maxFileSize, data: [1]) }
        try await fx.close(ino, o.fh)
    }

    /// A MODIFY that extends the file and fails part way may leave more bytes on the server than
    /// recorded; the next ship cuts them back before going on, and the durability point checks
    /// the size on the source.
    @Test func aFailedExtendIsSettledAndVerifiedBeforeTheFileIsDeclaredDurable() async throws {
        let fx = try await WriteFixture()
        let (ino, fh) = try await fx.create("x.bin")
        let first = pattern(100_000, seed: 3)
        _ = try await fx.fs.write(ino: ino, fh: fh, offset: 0, data: first)
        try await fx.fs.fsync(ino: ino, fh: fh, dataOnly: false)
        let fid = try #require(try await fx.naming.node(Int64(ino))?.fileID)
        // The server got 10 stray bytes past the recorded end (a request cut off half way),
        // then the next request fails.
        try await fx.mem.modify(pattern(10, seed: 77), in: fid, at: 100_000)
        fx.faulty.inject("modify", EIO)
        _ = try await fx.fs.write(ino: ino, fh: fh, offset: 100_000, data: pattern(50, seed: 4))
        await expectErrno(EIO) { try await fx.fs.fsync(ino: ino, fh: fh, dataOnly: false) }
        fx.faulty.inject("modify", nil)
        try await fx.close(ino, fh)
        let content = try await fx.content(ino)
        #expect(content == first + pattern(50, seed: 4))
    }
}

@Suite("Write-back faults")
struct WriteBackFaultTests {
    @Test func aFailedCloseKeepsTheDataStagedAndARetryCompletesIt() async throws {
        let fx = try await WriteFixture()
        let (ino, fh) = try await fx.create("f.bin")
        let data = pattern(200_000)
        _ = try await fx.fs.write(ino: ino, fh: fh, offset: 0, data: data)
        fx.faulty.inject("modify", EIO)
        fx.faulty.inject("upload", EIO)
        await expectErrno(EIO) { try await fx.fs.flush(ino: ino, fh: fh) }
        try await fx.fs.release(ino: ino, fh: fh)
        let staged = try await fx.naming.stagedFiles()
        #expect(staged.count == 1 && staged.first?.status == .failed && staged.first?.path == "/f.bin")
        #expect(try await fx.naming.node(Int64(ino))?.fileID == nil, "no half-written file is recorded")
        #expect(try await fx.fs.getattr(ino: ino, fh: nil).0.size == Int64(data.count), "the staged size stays visible")
        fx.faulty.inject("modify", nil)
        fx.faulty.inject("upload", nil)
        await fx.fs.retryStagedWrites()
        #expect(try await fx.content(ino) == data)
        #expect(try await fx.naming.stagedFiles().isEmpty)
        #expect(fx.fs.writers.withLock { $0.isEmpty })
    }

    /// After a failed ship, writes keep staging up to max_staged bytes, then fail with that
    /// ship's error (the local disk is no unbounded buffer); nothing accepted is lost.
    @Test func stagingAfterAFailureIsCappedAtMaxStaged() async throws {
        let fx = try await WriteFixture(maxStaged: 3 * WriteFixture.chunk)
        let (ino, fh) = try await fx.create("cap.bin")
        fx.faulty.inject("upload", ENOSPC)
        let piece = Int(WriteFixture.chunk / 2)
        var accepted: [UInt8] = []
        var refused: FSError?
        for i in 0..<20 {
            let data = pattern(piece, seed: UInt8(i))
            do { _ = try await fx.fs.write(ino: ino, fh: fh, offset: Int64(accepted.count), data: data); accepted += data }
            catch { refused = error; break }
        }
        #expect(refused?.errno == ENOSPC, "the ship's error, once the cap is reached")
        #expect(accepted.count >= Int(3 * WriteFixture.chunk) && accepted.count < Int(3 * WriteFixture.chunk) + 2 * piece)
        fx.faulty.inject("upload", nil)
        try await fx.close(ino, fh)
        #expect(try await fx.content(ino) == accepted)
    }

    /// Many files written at once: never more than max_uploads requests carry staged bytes at
    /// the same time (write-back memory is bounded in total), and every file arrives whole.
    @Test func requestsSendingStagedBytesAreCappedAcrossFiles() async throws {
        let fx = try await WriteFixture(maxUploads: 2)
        fx.faulty.slowDown(.milliseconds(5))
        let files = 8
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<files {
                group.addTask {
                    let (ino, fh) = try await fx.create("par\(i).bin")
                    let data = noise(Int(WriteFixture.chunk) * 3 + i, seed: UInt64(i + 1))
                    var at = 0
                    while at < data.count {
                        let n = min(40_000, data.count - at)
                        _ = try await fx.fs.write(ino: ino, fh: fh, offset: Int64(at), data: Array(data[at..<(at + n)]))
                        at += n
                    }
                    try await fx.close(ino, fh)
                    let same = try await fx.content(ino) == data
                    #expect(same, "file \(i)")
                }
            }
            try await group.waitForAll()
        }
        #expect(fx.faulty.peakInFlight <= 2)
        #expect(fx.fs.uploadSlots.peakInUse == 2, "the files did compete for the two slots")
    }

    @Test func aStorageDyingMidFileLeavesThePreviousContentRecorded() async throws {
        let fx = try await WriteFixture()
        let (ino, id) = try await fx.adopt("m.bin", data: pattern(1000), appender: true)
        let o = try await fx.fs.open(ino: ino, flags: O_RDWR, ctx: fx.ctx)
        let more = pattern(300_000, seed: 7)
        fx.faulty.failFrom(2)   // the storage dies after the first append
        _ = try await fx.fs.write(ino: ino, fh: o.fh, offset: 1000, data: more)
        await expectErrno(EIO) { try await fx.fs.flush(ino: ino, fh: o.fh) }
        #expect(try await fx.naming.node(Int64(ino))?.size == 1000, "the name keeps its recorded size")
        fx.faulty.failFrom(nil)
        try await fx.close(ino, o.fh)
        #expect(try await fx.naming.node(Int64(ino))?.fileID == id)
        #expect(try await fx.content(ino) == pattern(1000) + more)
    }

    @Test func enospcFromTheClusterIsENOSPC() async throws {
        let fx = try await WriteFixture()
        let (ino, fh) = try await fx.create("full.bin")
        fx.faulty.inject("upload", ENOSPC)
        _ = try await fx.fs.write(ino: ino, fh: fh, offset: 0, data: pattern(100))
        await expectErrno(ENOSPC) { try await fx.fs.flush(ino: ino, fh: fh) }
        await expectErrno(ENOSPC) { try await fx.fs.fsync(ino: ino, fh: fh, dataOnly: false) }
        try await fx.fs.release(ino: ino, fh: fh)
    }

    /// Killed while a ship request was done on the server but not yet recorded: the next start
    /// finds the file exactly as written (no bytes twice, no zeros), whichever request it was.
    /// "extend": a MODIFY at the server's end that grows the file (what replaced APPEND).
    @Test(arguments: ["upload", "extend", "modify"])
    func killedBetweenAShipAndItsRecord(op: String) async throws {
        let naming = try NamingStore(path: nil)
        let mem = MemoryFileStore()
        let first = try await WriteFixture(naming: naming, store: mem)
        let chunk = Int(WriteFixture.chunk)
        var expected = noise(3 * chunk + 1000)
        let ino: UInt64
        if op == "modify" {
            let (i, _) = try await first.adopt("k.bin", data: expected, appender: true)
            ino = i
        } else {
            let (i, fh) = try await first.create("k.bin")
            ino = i
            if op == "extend" {
                _ = try await first.fs.write(ino: ino, fh: fh, offset: 0, data: Array(expected[..<chunk]))
                try await first.fs.fsync(ino: ino, fh: fh, dataOnly: false)
            }
        }
        let storeOp = op == "extend" ? "modify" : op
        first.faulty.hangAfter(storeOp)
        let fh = try await first.fs.open(ino: ino, flags: O_WRONLY, ctx: first.ctx).fh
        let start = op == "extend" ? chunk : 0
        let edit = noise(op == "modify" ? 2 * chunk : 3 * chunk + 1000 - start, seed: 5)
        expected.replaceSubrange(start..<(start + edit.count), with: edit)
        // Written (the first chunk of it shipped and hung, or staged until fsync), then fsync
        // hangs in the ship: the process "dies" there.
        let writer = Task {
            _ = try await first.fs.write(ino: ino, fh: fh, offset: Int64(start), data: edit)
            try await first.fs.fsync(ino: ino, fh: fh, dataOnly: false)
        }
        #expect(await eventuallyAsync { first.faulty.bytes(storeOp) > 0 }, "the \(op) reached the server")
        let second = try await WriteFixture(naming: naming, stagingDir: first.stagingDir, store: mem)
        await second.fs.retryStagedWrites()
        _ = writer   // left hanging: the first mount is "dead" (its task would otherwise ship again)
        if let n = try await naming.node(Int64(ino)), let fid = n.fileID {
            let held = try await mem.fileInfo(fid).size
            #expect(held == Int64(expected.count), "\(op): the server holds \(held) bytes, written \(expected.count)")
        }
        let got = try await second.content(ino)
        let same = got == expected
        #expect(same, "\(op): first difference at \(zip(got, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(got.count, expected.count)) of \(got.count)/\(expected.count)")
        #expect(try await naming.stagedFiles().isEmpty)
    }

    /// In-place edits of existing bytes, neither fsynced nor shipped, when the mount is killed:
    /// the next start finds them (the write log next to the staging file), not only the bytes
    /// past the server's end.
    @Test func unsyncedInPlaceEditsSurviveAKill() async throws {
        let naming = try NamingStore(path: nil)
        let mem = MemoryFileStore()
        let first = try await WriteFixture(naming: naming, store: mem)
        var expected = pattern(100_000)
        let (ino, _) = try await first.adopt("e.bin", data: expected, appender: true)
        let fh = try await first.fs.open(ino: ino, flags: O_WRONLY, ctx: first.ctx).fh
        for (i, at) in [10, 5000, 70_001].enumerated() {
            let edit = pattern(300, seed: UInt8(20 + i))
            _ = try await first.fs.write(ino: ino, fh: fh, offset: Int64(at), data: edit)
            expected.replaceSubrange(at..<(at + 300), with: edit)
        }
        let second = try await WriteFixture(naming: naming, stagingDir: first.stagingDir, store: mem)
        await second.fs.retryStagedWrites()
        let same = try await second.content(ino) == expected
        #expect(same)
        #expect(try await naming.stagedFiles().isEmpty)
    }

    /// Small rewrites that never fill a chunk do not grow the write log without end, and a kill
    /// after many of them still recovers the last bytes.
    @Test func theWriteLogStaysSmallUnderManySmallRewrites() async throws {
        let naming = try NamingStore(path: nil)
        let mem = MemoryFileStore()
        let first = try await WriteFixture(naming: naming, store: mem)
        var expected = pattern(10_000)
        let (ino, _) = try await first.adopt("db.bin", data: expected, appender: true)
        let fh = try await first.fs.open(ino: ino, flags: O_WRONLY, ctx: first.ctx).fh
        let n = FileWriter.maxLogEntries + 5_000
        for i in 0..<n {
            let at = (i * 37) % 9_000
            let b = UInt8(truncatingIfNeeded: i)
            _ = try await first.fs.write(ino: ino, fh: fh, offset: Int64(at), data: [b, b &+ 1])
            expected[at] = b; expected[at + 1] = b &+ 1
        }
        let staged = try #require(try await naming.stagedFiles().first)
        let log = try #require(staged.state.stagingFile).appending(".log")
        var st = stat()
        #expect(stat(log, &st) == 0)
        #expect(Int(st.st_size) <= 24 * FileWriter.maxLogEntries, "log of \(st.st_size) bytes after \(n) writes")
        let second = try await WriteFixture(naming: naming, stagingDir: first.stagingDir, store: mem)
        await second.fs.retryStagedWrites()
        let same = try await second.content(ino) == expected
        #expect(same)
    }

    @Test func stagedWritesOfAKilledMountAreCompletedAtTheNextStart() async throws {
        let naming = try NamingStore(path: nil)
        let mem = MemoryFileStore()
        let first = try await WriteFixture(naming: naming, store: mem)
        let (ino, fh) = try await first.create("crash.bin")
        let data = pattern(150_000)
        _ = try await first.fs.write(ino: ino, fh: fh, offset: 0, data: data)
        let staged = try await naming.stagedFiles()
        #expect(staged.map(\.path) == ["/crash.bin"])
        // Written after the dirty map was last recorded: found in the staging file's extents.
        let tail = pattern(3000, seed: 9)
        _ = try await first.fs.write(ino: ino, fh: fh, offset: 150_000, data: tail)
        #expect(try await naming.stagedFiles().first?.state.size == 150_000)
        // "SIGKILL": no flush, no release; the first mount's objects are abandoned.
        let second = try await WriteFixture(naming: naming, stagingDir: first.stagingDir, store: mem)
        await second.fs.retryStagedWrites()
        #expect(try await second.content(ino) == data + tail)
        #expect(try await naming.stagedFiles().isEmpty)
    }
}

@Suite("Write-back metadata")
struct WriteBackMetadataTests {
    @Test func xattrsSetBeforeTheUploadGoWithIt() async throws {
        let fx = try await WriteFixture()
        let (ino, fh) = try await fx.create("x.txt")
        try await fx.fs.setxattr(ino: ino, name: "user.author", value: Array("me".utf8), flags: [], ctx: fx.ctx)
        #expect(try await fx.fs.listxattr(ino: ino) == ["user.author"])
        _ = try await fx.fs.write(ino: ino, fh: fh, offset: 0, data: [1, 2, 3])
        try await fx.close(ino, fh)
        let id = try #require(try await fx.naming.node(Int64(ino))?.fileID)
        #expect(try await fx.mem.metadata(of: id) == ["author": "me"])
        #expect(try await fx.naming.pendingMetadata(Int64(ino)).isEmpty)
    }

    @Test func copyOnWriteKeepsTheMetadata() async throws {
        let fx = try await WriteFixture()
        let (ino, old) = try await fx.adopt("m.bin", data: pattern(100), appender: false)
        try await fx.mem.setMetadata(["k": "v"], for: old, merge: false)
        let o = try await fx.fs.open(ino: ino, flags: O_RDWR, ctx: fx.ctx)
        _ = try await fx.fs.write(ino: ino, fh: o.fh, offset: 0, data: [0])
        try await fx.close(ino, o.fh)
        let id = try #require(try await fx.naming.node(Int64(ino))?.fileID)
        #expect(id != old)
        #expect(try await fx.mem.metadata(of: id) == ["k": "v"])
    }
}

/// Polls `condition` every millisecond for up to about 20 s; returns whether it held.
func eventuallyAsync(_ condition: () -> Bool) async -> Bool {
    for _ in 0..<20_000 {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(1))
    }
    return condition()
}

@Suite("Staging directory hygiene (issue 13)")
struct StagingSweepTests {
    @Test func aStartRemovesStagingFilesNoStagedWriteClaimsAndKeepsTheOthers() async throws {
        let naming = try NamingStore(path: nil)
        let mem = MemoryFileStore()
        let first = try await WriteFixture(naming: naming, store: mem)
        // A file with staged bytes (its record claims its staging file), never closed.
        // (Larger than a small file, which would wait in the write journal instead.)
        let (ino, fh) = try await first.create("kept.bin")
        _ = try await first.fs.write(ino: ino, fh: fh, offset: 0, data: pattern(100_000))
        let kept = try #require(await first.fs.writer(of: ino)?.state.stagingFile)
        // Leftovers of a crash before any record, or of an older version.
        let junk = first.stagingDir + "/999-1"
        for path in [junk, junk + ".log"] { #expect(creat(path, 0o600) >= 0) }
        let second = try await WriteFixture(naming: naming, stagingDir: first.stagingDir, store: mem)
        #expect(access(junk, F_OK) != 0 && access(junk + ".log", F_OK) != 0, "unclaimed staging files are removed")
        #expect(access(kept, F_OK) == 0, "a staging file a record claims stays")
        await second.fs.retryStagedWrites()
        #expect(try await second.content(ino) == pattern(100_000))
    }
}
