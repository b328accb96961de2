import FuseTypes
#if canImport(Glibc)
import Glibc
#endif

/// Per-open-file read path: EOF answered locally, ranged downloads clamped to the size, and
/// concurrent read-ahead driven by `ReadAheadPlanner` under a per-file and a global memory cap.
actor Prefetcher {
    struct Chunk {
        let range: Range<Int64>
        let task: Task<[UInt8], any Error>
        /// Bytes reserved from the global budget (0 for unbudgeted direct fetches).
        let reserved: Int64
    }

    let fileID: String
    let size: Int64
    let store: any FileStore
    let hint: StorageHint?
    let budget: MemoryBudget
    private var planner: ReadAheadPlanner
    private var chunks: [Chunk] = []

    init(fileID: String, size: Int64, store: any FileStore, hint: StorageHint?, budget: MemoryBudget, config: ReadAheadConfig) {
        self.fileID = fileID; self.size = size; self.store = store; self.hint = hint; self.budget = budget
        planner = ReadAheadPlanner(config: config, fileSize: size)
    }

    /// Storages to spread chunks over (nil until looked up; empty: let the client ask the tracker).
    private var replicas: [StorageHint]?
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
        return Task {
            do { return try await store.download(id, offset: r.lowerBound, length: r.upperBound - r.lowerBound, storage: target) }
            catch {
                // A replica that fails (not synced yet, down): retry through the tracker once.
                guard target != nil else { throw error }
                return try await store.download(id, offset: r.lowerBound, length: r.upperBound - r.lowerBound, storage: nil)
            }
        }
    }

    func read(offset: Int64, length: Int) async throws(FSError) -> [UInt8] {
        if offset >= size || length == 0 { return [] }   // EOF locally: the server answers EINVAL there
        let end = min(size, offset + Int64(length))
        let plan = planner.read(offset: offset, length: end - offset)
        if replicas == nil && hint == nil && plan.fetch.count > 1 {
            // Streaming has started: learn the replicas once (QUERY_FETCH_ALL).
            replicas = (try? await store.replicas(of: fileID)) ?? []
        }
        if plan.reset { dropAll() } else { drop(before: plan.keepFrom) }
        for r in plan.fetch {
            let n = r.upperBound - r.lowerBound
            let covering = r.lowerBound < end
            if budget.reserve(n) {
                chunks.append(Chunk(range: r, task: fetchTask(r), reserved: n))
            } else if covering {
                // Over the global budget: fetch what the reader needs, without read-ahead.
                chunks.append(Chunk(range: r, task: fetchTask(r), reserved: 0))
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(Int(end - offset))
        var pos = offset
        while pos < end {
            let chunk = chunks.first { $0.range.contains(pos) }
            let data: [UInt8]
            let base: Int64
            if let chunk {
                do { data = try await chunk.task.value }
                catch let e as FSError { dropAll(); throw e }
                catch { dropAll(); throw FSError(EIO, "download of \(fileID) failed: \(error)") }
                base = chunk.range.lowerBound
                if Int64(data.count) < chunk.range.count {
                    // Short answer: the file shrank or the server stopped early.
                    if base + Int64(data.count) <= pos { break }
                }
            } else {
                do { data = try await store.download(fileID, offset: pos, length: end - pos, storage: hint) }
                catch { throw error }
                base = pos
                if data.isEmpty { break }
            }
            let from = Int(pos - base)
            let to = min(data.count, Int(end - base))
            if from >= to { break }
            out.append(contentsOf: data[from..<to])
            pos += Int64(to - from)
        }
        return out
    }

    private func drop(before offset: Int64) {
        chunks.removeAll { c in
            guard c.range.upperBound <= offset else { return false }
            c.task.cancel()
            if c.reserved > 0 { budget.release(c.reserved) }
            return true
        }
    }

    func dropAll() {
        for c in chunks {
            c.task.cancel()
            if c.reserved > 0 { budget.release(c.reserved) }
        }
        chunks.removeAll()
    }

    var bufferedChunkCount: Int { chunks.count }
}
