/// The write journal's bookkeeping, pure (no I/O, no clock): which journal file records go to and
/// at what offset, when a new file starts (rotation), which writers still have records in each
/// file, the "done" records waiting to be written, and which files can be removed. `WriteJournal`
/// drives it: it asks for a plan, does the I/O the plan names, and reports what happened.
///
/// Events in (past tense: what the driver did or saw), plans and removals out. Files are named
/// by generation (0, 1, …); the current one is appended to, older ones are only removed, once
/// every writer with records in them is done.
struct WriteJournalStateMachine: Sendable {
    /// A writer whose records are no longer needed, and its node (recovery ignores such writers).
    struct Done: Hashable, Sendable {
        var writer: UInt64
        var ino: Int64
    }

    /// How to append one record.
    struct AppendPlan: Hashable, Sendable {
        /// The file to write to.
        var generation: Int
        /// Close the current file first (rotation).
        var closeCurrent: Bool
        /// Create (or truncate) `generation`'s file first.
        var openFile: Bool
        /// Older files to remove (every writer in them is done).
        var remove: [Int]
        /// Where the record goes.
        var offset: Int64
        /// "done" records written just before the record, in the same write.
        var done: [Done]
    }

    /// Past this size the next append starts a new file.
    let rotateBytes: Int64
    private(set) var generation = 0
    /// Bytes written to the current file.
    private(set) var size: Int64 = 0
    /// Whether the current file is open.
    private(set) var isOpen = false
    /// Writers with records in each file and no "done" written yet.
    private(set) var live: [Int: Set<UInt64>] = [:]
    /// "done" records not written yet.
    private(set) var pendingDone: [Done] = []

    init(rotateBytes: Int64) { self.rotateBytes = rotateBytes }

    /// A record is about to be appended: where, and what to do first.
    mutating func appendRequested() -> AppendPlan {
        var remove: [Int] = []
        var closeCurrent = false
        if isOpen && size >= rotateBytes {
            closeCurrent = true
            if isRemovable(generation) { remove.append(generation); live[generation] = nil }
            generation += 1
            isOpen = false
        }
        let openFile = !isOpen
        if openFile { size = 0 }
        return AppendPlan(generation: generation, closeCurrent: closeCurrent, openFile: openFile, remove: remove, offset: size, done: pendingDone)
    }

    /// The plan's file could not be created: the next append tries again.
    mutating func fileOpenFailed() { isOpen = false }

    /// The plan's file was created (empty).
    mutating func fileOpened() {
        isOpen = true
        size = 0
    }

    /// `bytes` (the plan's "done" records, then the record of `writer`, if any) were written.
    /// Returns the older files that can be removed now.
    mutating func appendSucceeded(bytes: Int64, writer: UInt64?, done: [Done]) -> [Int] {
        size += bytes
        let removable = markDone(done)
        if let writer { live[generation, default: []].insert(writer) }
        return removable
    }

    /// A writer's records are no longer needed (its bytes committed, staged elsewhere, or
    /// dropped): its "done" record waits for the next write. A writer with no record is ignored.
    mutating func writerFinished(writer: UInt64, ino: Int64) {
        guard live.values.contains(where: { $0.contains(writer) }) else { return }
        pendingDone.append(Done(writer: writer, ino: ino))
    }

    /// The waiting "done" records and where they go, if there are any and a file is open.
    func doneWriteRequested() -> (offset: Int64, done: [Done])? {
        guard !pendingDone.isEmpty, isOpen else { return nil }
        return (size, pendingDone)
    }

    /// `bytes` of "done" records (`done`) were written. Returns the older files to remove now.
    mutating func doneWritten(bytes: Int64, done: [Done]) -> [Int] {
        size += bytes
        return markDone(done)
    }

    /// At unmount: the files to remove when every writer is done (counting the "done" records
    /// still waiting), or nil: they stay for the next start's recovery.
    mutating func unmountRequested() -> [Int]? {
        let waiting = Set(pendingDone.map(\.writer))
        guard live.values.allSatisfy({ $0.isSubset(of: waiting) }) else { return nil }
        let all = Set(live.keys).union([generation]).sorted()
        live = [:]
        pendingDone = []
        isOpen = false
        return all
    }

    private func isRemovable(_ g: Int) -> Bool { live[g]?.isEmpty ?? true }

    /// Drops `done` from the waiting list and their writers from every file; returns the older
    /// files left with no live writer.
    private mutating func markDone(_ done: [Done]) -> [Int] {
        guard !done.isEmpty else { return [] }
        let writers = Set(done.map(\.writer))
        pendingDone.removeAll { writers.contains($0.writer) }
        var removable: [Int] = []
        for g in live.keys.sorted() {
            live[g]?.subtract(writers)
            if g != generation, isRemovable(g) {
                live[g] = nil
                removable.append(g)
            }
        }
        return removable
    }
}
