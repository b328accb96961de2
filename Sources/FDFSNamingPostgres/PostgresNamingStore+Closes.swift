import FDFSFileSystem
import FuseTypes
import PostgresNIO
import Synchronization

/// Closes are group-committed: the handles closed within `closeWindow` of each other go to the
/// database in one statement (`fdfs_close_many`), each caller still getting its own answer (the
/// delete its close queued). A release is not waited for by the process that closed the file
/// (the kernel sends it in the background), so the short wait costs nobody time, and a mount
/// creating many small files pays one round trip per file (its create) instead of two.
extension PostgresNamingStore {
    static let closeWindow: Duration = .milliseconds(10)

    struct WaitingClose: Sendable {
        var id: Int64
        var done: CheckedContinuation<Result<QueuedDelete?, FSError>, Never>
    }

    struct CloseQueue: Sendable {
        var waiting: [WaitingClose] = []
        var scheduled = false
    }

    public func closed(_ id: Int64) async throws(FSError) -> QueuedDelete? {
        openCounts.withLock { m in
            if let c = m[id] { m[id] = c > 1 ? c - 1 : nil }
        }
        let result = await withCheckedContinuation { (done: CheckedContinuation<Result<QueuedDelete?, FSError>, Never>) in
            let schedule = closeQueue.withLock { q -> Bool in
                q.waiting.append(WaitingClose(id: id, done: done))
                if q.scheduled { return false }
                q.scheduled = true
                return true
            }
            if schedule {
                Task {
                    try? await Task.sleep(for: Self.closeWindow)
                    await self.flushCloses()
                }
            }
        }
        return try result.get()
    }

    /// Sends the closes waiting now in one statement and answers each.
    func flushCloses() async {
        let batch = closeQueue.withLock { q -> [WaitingClose] in
            defer { q.waiting = []; q.scheduled = false }
            return q.waiting
        }
        guard !batch.isEmpty else { return }
        let ids = batch.map(\.id)
        do throws(FSError) {
            let rows = try await rows("close", """
                SELECT ord, del_id, del_file_id FROM \(unescaped: s).fdfs_close_many(\(sid), \(ids))
                """) { row -> (Int, QueuedDelete?) in
                let (ord, did, fid) = try row.decode((Int64, Int64?, String?).self)
                return (Int(ord) - 1, did.flatMap { d in fid.map { (d, $0) } })
            }
            var queued: [Int: QueuedDelete] = [:]
            for (i, q) in rows { if let q { queued[i] = q } }
            for (i, w) in batch.enumerated() { w.done.resume(returning: .success(queued[i])) }
        } catch {
            for w in batch { w.done.resume(returning: .failure(error)) }
        }
    }
}
