import Testing
import FuseTypes
import Synchronization
@testable import FDFSFileSystem

/// A FileStore that records every download range and yields a few times inside each one, so
/// concurrent reads really interleave in the prefetcher actor. Everything else is unused.
final class RecordingStore: FileStore {
    let inner = MemoryFileStore()
    let ranges = Mutex<[Range<Int64>]>([])
    func download(_ f: String, offset: Int64, length: Int64, storage: StorageHint?) async throws(FSError) -> [UInt8] {
        ranges.withLock { $0.append(offset..<(offset + length)) }
        for _ in 0..<5 { await Task.yield() }
        return try await inner.download(f, offset: offset, length: length, storage: storage)
    }
    func upload(_ d: [UInt8], ext: String, group: String?, appender: Bool) async throws(FSError) -> String { try await inner.upload(d, ext: ext, group: group, appender: appender) }
    func append(_ d: [UInt8], to f: String) async throws(FSError) { try await inner.append(d, to: f) }
    func modify(_ d: [UInt8], in f: String, at o: Int64) async throws(FSError) { try await inner.modify(d, in: f, at: o) }
    func truncate(_ f: String, to s: Int64) async throws(FSError) { try await inner.truncate(f, to: s) }
    func delete(_ f: String) async throws(FSError) { try await inner.delete(f) }
    func metadata(of f: String) async throws(FSError) -> [String: String] { try await inner.metadata(of: f) }
    func setMetadata(_ m: [String: String], for f: String, merge: Bool) async throws(FSError) { try await inner.setMetadata(m, for: f, merge: merge) }
    func fileInfo(_ f: String) async throws(FSError) -> StoreFileInfo { try await inner.fileInfo(f) }
    func listGroups() async throws(FSError) -> [StoreGroup] { try await inner.listGroups() }
    func decode(_ f: String) throws(FSError) -> DecodedFileID { try inner.decode(f) }
    func sourceStorage(of f: String) -> StorageHint? { nil }

    /// Whether any byte was requested twice.
    var overlapping: Bool {
        let r = ranges.withLock { $0 }.sorted { $0.lowerBound < $1.lowerBound }
        return zip(r, r.dropFirst()).contains { $0.upperBound > $1.lowerBound }
    }
    var bytes: Int64 { ranges.withLock { $0 }.reduce(0) { $0 + Int64($1.count) } }
    var count: Int { ranges.withLock { $0.count } }
}

@Suite("Prefetcher")
struct PrefetcherTests {
    static let mib: Int64 = 1 << 20

    static func file(_ store: RecordingStore, mib n: Int) async throws -> (String, [UInt8]) {
        var data = [UInt8](repeating: 0, count: n << 20)
        for i in 0..<data.count { data[i] = UInt8(truncatingIfNeeded: i &* 131 &+ i >> 16) }
        return (try await store.upload(data, ext: "bin", group: nil, appender: false), data)
    }

    /// Reads the file the way the kernel does with read_ahead_kb=1024 and FUSE_CAP_ASYNC_READ:
    /// 1 MiB requests, `batch` at a time, each batch concurrently and in a scrambled order.
    static func kernelStyleRead(_ pf: Prefetcher, size: Int, batch: Int) async throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        let n = (size + Int(mib) - 1) / Int(mib)
        var k = 0
        while k < n {
            let ids = Array(k..<min(n, k + batch))
            let order = ids.count > 1 ? [ids.last!] + ids.dropLast() : ids   // the furthest first
            try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { g in
                for j in order {
                    g.addTask { (j, try await pf.read(offset: Int64(j) * mib, length: Int(mib))) }
                }
                for try await (j, bytes) in g {
                    out.replaceSubrange(j << 20..<(j << 20) + bytes.count, with: bytes)
                }
            }
            k += batch
        }
        return out
    }

    @Test func concurrentOutOfOrderMiBReadsDownloadEachByteOnce() async throws {
        let store = RecordingStore()
        let (id, data) = try await Self.file(store, mib: 48)
        let budget = MemoryBudget(limit: 256 << 20)
        let config = ReadAheadConfig()
        let pf = Prefetcher(fileID: id, size: Int64(data.count), store: store, hint: nil, budget: budget, config: config)
        let out = try await Self.kernelStyleRead(pf, size: data.count, batch: 3)
        #expect(out == data)
        #expect(!store.overlapping, "no byte downloaded twice")
        #expect(store.bytes == Int64(data.count), "every byte downloaded exactly once")
        // One download per 1 MiB grid cell, plus a few cells split while the window ramps up.
        #expect(store.count <= 48 + 8, "downloads: \(store.count)")
        #expect(budget.inUse <= config.perFileLimit(readSize: Self.mib))
        await pf.dropAll()
        #expect(budget.inUse == 0)
    }

    @Test func overlappingReadsShareInFlightChunks() async throws {
        let store = RecordingStore()
        let (id, data) = try await Self.file(store, mib: 4)
        let pf = Prefetcher(fileID: id, size: Int64(data.count), store: store, hint: nil,
                            budget: MemoryBudget(limit: 64 << 20), config: ReadAheadConfig())
        // Four readers of the same bytes at once, at page-unaligned offsets, then the rest.
        let results = try await withThrowingTaskGroup(of: [UInt8].self) { g in
            for _ in 0..<4 { g.addTask { try await pf.read(offset: 1000, length: 300_000) } }
            return try await g.reduce(into: [[UInt8]]()) { $0.append($1) }
        }
        for r in results { #expect(r == Array(data[1000..<301_000])) }
        #expect(!store.overlapping)
        let rest = try await pf.read(offset: 301_000, length: data.count)
        #expect(rest == Array(data[301_000...]))
        #expect(!store.overlapping, "the tail reuses the read-ahead already in flight")
    }

    @Test func budgetExhaustionStillServesEveryReadWithoutDuplicates() async throws {
        let store = RecordingStore()
        let (id, data) = try await Self.file(store, mib: 16)
        let budget = MemoryBudget(limit: 2 << 20)
        let pf = Prefetcher(fileID: id, size: Int64(data.count), store: store, hint: nil, budget: budget, config: ReadAheadConfig())
        let out = try await Self.kernelStyleRead(pf, size: data.count, batch: 4)
        #expect(out == data)
        #expect(!store.overlapping)
        #expect(budget.inUse <= 2 << 20)
        await pf.dropAll()
        #expect(budget.inUse == 0)
    }

    @Test func aJumpFarAwayStartsANewStream() async throws {
        let store = RecordingStore()
        let (id, data) = try await Self.file(store, mib: 64)
        let budget = MemoryBudget(limit: 256 << 20)
        let pf = Prefetcher(fileID: id, size: Int64(data.count), store: store, hint: nil, budget: budget, config: ReadAheadConfig())
        for i in 0..<8 { _ = try await pf.read(offset: Int64(i) * Self.mib, length: Int(Self.mib)) }
        let far = try await pf.read(offset: 50 * Self.mib + 5, length: 4096)
        #expect(far == Array(data[(50 << 20) + 5..<(50 << 20) + 5 + 4096]))
        // Only the initial window is buffered after the jump: the old stream's chunks are gone.
        let held = await pf.bufferedRanges
        #expect(held.allSatisfy { $0.lowerBound >= 50 * Self.mib })
        #expect(held.reduce(0) { $0 + $1.count } <= Int(ReadAheadConfig().initialWindow) + 4096)
    }
}
