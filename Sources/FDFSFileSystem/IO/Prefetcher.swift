import FuseTypes
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Per-open-file read path: EOF answered locally, ranged downloads clamped to the size, and
/// concurrent read-ahead driven by `ReadAheadPlanner` under a per-file and a global memory cap.
///
/// Chunks are disjoint ranges, sorted, each one download (present or in flight). A read first
/// fills the gaps of its own range and of the planned read-ahead span (cut on the chunk grid),
/// then awaits the chunks covering it, so concurrent and out-of-order reads share in-flight
/// downloads and no byte is requested twice while it is held. A chunk is dropped as soon as all
/// its bytes have been delivered (the kernel keeps them in the page cache), when it falls behind
/// the stream, or when the reader jumps away.
actor Prefetcher {
    /// Actor-isolated (never leaves the actor), so a class is fine: readers share the counters.
    final class Chunk {
        let range: Range<Int64>
        let task: Task<[UInt8], any Error>
        /// Bytes reserved from the global budget (0 for unbudgeted fetches of a read's own bytes).
        let reserved: Int64
        /// Bytes handed to readers so far; at `range.count` the chunk has been consumed.
        var delivered: Int64 = 0
        /// Reads awaiting this chunk: a dropped chunk is cancelled only when nobody waits.
        var waiters = 0
        var dropped = false
        init(range: Range<Int64>, task: Task<[UInt8], any Error>, reserved: Int64) {
            self.range = range; self.task = task; self.reserved = reserved
        }
    }

    let fileID: String
    let size: Int64
    let store: any FileStore
    let hint: StorageHint?
    let budget: MemoryBudget
    private var planner: ReadAheadPlanner
    /// Sorted by lower bound, pairwise disjoint.
    private var chunks: [Chunk] = []
    /// Downloads issued (for tests and the debug log).
    private(set) var downloadsIssued = 0

    let logger: Logger
    let metrics: FileSystemMetrics?

    init(fileID: String, size: Int64, store: any FileStore, hint: StorageHint?, budget: MemoryBudget, config: ReadAheadConfig,
         logger: Logger = .silent, metrics: FileSystemMetrics? = nil) {
        self.logger = logger
        self.metrics = metrics
        self.fileID = fileID; self.size = size; self.store = store; self.hint = hint; self.budget = budget
        planner = ReadAheadPlanner(config: config, fileSize: size)
    }

    /// Storages to spread chunks over (nil until looked up; empty: let the client ask the tracker).
    private var replicas: [StorageHint]?
    private var replicaLookup: Task<[StorageHint], Never>?
    private var nextReplica = 0

    /// Read-your-writes hint first; otherwise the replicas, round-robin, once there is read-ahead.
    private func storageForChunk() -> StorageHint? {
        if let hint { return hint }
        guard let r = replicas, !r.isEmpty else { return nil }
        nextReplica += 1
        return r[nextReplica % r.count]
    }

    private func fetchTask(_ r: Range<Int64>) -> Task<[UInt8], any Error> {
        let store = store, id = fileID, target = storageForChunk()
        downloadsIssued += 1
        return Task {
            do { return try await store.download(id, offset: r.lowerBound, length: r.upperBound - r.lowerBound, storage: target) }
            catch {
                // A replica that fails (not synced yet, down): retry through the tracker once.
                guard target != nil else { throw error }
                return try await store.download(id, offset: r.lowerBound, length: r.upperBound - r.lowerBound, storage: nil)
            }
        }
    }

    /// Learns the replicas once a second read shows the file is being streamed (QUERY_FETCH_ALL,
    /// one lookup shared by concurrent reads).
    private func learnReplicas() async {
        guard replicas == nil, hint == nil, planner.active else { return }
        let lookup: Task<[StorageHint], Never>
        if let replicaLookup { lookup = replicaLookup } else {
            let store = store, id = fileID
            lookup = Task { (try? await store.replicas(of: id)) ?? [] }
            replicaLookup = lookup
        }
        let found = await lookup.value
        if replicas == nil { replicas = found }
    }

    func read(offset: Int64, length: Int) async throws(FSError) -> [UInt8] {
        if offset >= size || length == 0 { return [] }   // EOF locally: the server answers EINVAL there
        await learnReplicas()
        // From here to the first await: plan, drop and issue atomically (no actor reentrancy).
        let plan = planner.read(offset: offset, length: Int64(length))
        logger.trace("read", metadata: [
            "file_id": "\(fileID)", "offset": "\(offset)", "bytes": "\(length)", "stream": "\(plan.reset ? "new" : "sequential")",
            "read_ahead": "\(plan.ahead.map { "\($0.lowerBound)..<\($0.upperBound)" } ?? "none")", "chunks_held": "\(chunks.count)",
            "downloads": "\(downloadsIssued)",
        ])
        let need = plan.need
        if plan.reset {
            dropChunks { !$0.range.overlaps(need) }
        } else {
            dropChunks { $0.range.upperBound <= plan.keepFrom && !$0.range.overlaps(need) }
        }
        let issuedBefore = downloadsIssued
        ensure(need, covering: true)
        // A hit: the bytes were held or already on their way (read-ahead), no new download.
        if downloadsIssued == issuedBefore { metrics?.readAheadHits.increment() } else { metrics?.readAheadMisses.increment() }
        if let ahead = plan.ahead {
            let reached = ensure(ahead, covering: false)
            if reached < ahead.upperBound { planner.aheadStopped(at: reached) }
        }
        let covering = chunks.filter { $0.range.overlaps(need) }
        for c in covering { c.waiters += 1 }
        return try await serve(need, from: covering)
    }

    /// Copies `need` out of `covering` (sorted, contiguous over `need`), awaiting each chunk.
    private func serve(_ need: Range<Int64>, from covering: [Chunk]) async throws(FSError) -> [UInt8] {
        var out: [UInt8] = []
        var pos = need.lowerBound
        for (i, c) in covering.enumerated() {
            let data: [UInt8]
            do { data = try await c.task.value }
            catch {
                for rest in covering[i...] { rest.waiters -= 1 }
                remove(c)   // a later read asks again
                if let e = error as? FSError { throw e }
                throw FSError(EIO, "download of \(fileID) [\(c.range.lowerBound), \(c.range.upperBound)) failed: \(error)")
            }
            c.waiters -= 1
            let base = c.range.lowerBound
            let want = min(need.upperBound, c.range.upperBound)
            let have = min(want, base + Int64(data.count))
            if have > pos {
                c.delivered += have - pos
                if c.delivered >= c.range.count { remove(c) }   // consumed: the page cache has it now
                if out.isEmpty && pos == base && have == need.upperBound && data.count == Int(have - base) {
                    return data   // the read is exactly this chunk: no copy
                }
                if out.isEmpty { out.reserveCapacity(Int(need.upperBound - pos)) }
                out.append(contentsOf: data[Int(pos - base)..<Int(have - base)])
                pos = have
            }
            if have < want {
                // Short answer (the file shrank or the server stopped early): the read ends here.
                for rest in covering[(i + 1)...] { rest.waiters -= 1 }
                break
            }
        }
        return out
    }

    /// A small file opened for reading is fetched whole at once: the first read finds its bytes
    /// on their way (the download overlaps the open's reply and the kernel's read request).
    func prime() {
        guard chunks.isEmpty, size > 0, size <= Self.primeLimit else { return }
        ensure(0..<size, covering: false)
    }
    static let primeLimit: Int64 = 128 << 10

    /// Issues downloads for the parts of `r` not held or in flight, cut on the chunk grid.
    /// Read-ahead (`covering` false) stops where the global budget runs out; a read's own bytes
    /// are fetched regardless. Returns how far `r` is now covered.
    @discardableResult
    private func ensure(_ r: Range<Int64>, covering: Bool) -> Int64 {
        let grid = max(1, planner.config.chunkSize)
        var pos = r.lowerBound
        var i = chunks.firstIndex { $0.range.upperBound > pos } ?? chunks.count
        while pos < r.upperBound {
            if i < chunks.count && chunks[i].range.lowerBound <= pos {
                pos = chunks[i].range.upperBound
                i += 1
                continue
            }
            let gapEnd = min(r.upperBound, i < chunks.count ? chunks[i].range.lowerBound : r.upperBound)
            while pos < gapEnd {
                let to = min(gapEnd, (pos / grid + 1) * grid)
                let n = to - pos
                let reserved: Int64
                if budget.reserve(n) { reserved = n }
                else if covering { reserved = 0 }
                else { return pos }
                chunks.insert(Chunk(range: pos..<to, task: fetchTask(pos..<to), reserved: reserved), at: i)
                i += 1
                pos = to
            }
        }
        return r.upperBound
    }

    private func remove(_ c: Chunk) {
        guard !c.dropped else { return }
        c.dropped = true
        if c.reserved > 0 { budget.release(c.reserved) }
        chunks.removeAll { $0 === c }
    }

    /// Drops chunks matching `predicate`; in-flight downloads nobody awaits are cancelled.
    private func dropChunks(where predicate: (Chunk) -> Bool) {
        chunks.removeAll { c in
            guard predicate(c) else { return false }
            c.dropped = true
            if c.waiters == 0 { c.task.cancel() }
            if c.reserved > 0 { budget.release(c.reserved) }
            return true
        }
    }

    func dropAll() { dropChunks { _ in true } }

    var bufferedChunkCount: Int { chunks.count }
    var bufferedRanges: [Range<Int64>] { chunks.map(\.range) }
}
