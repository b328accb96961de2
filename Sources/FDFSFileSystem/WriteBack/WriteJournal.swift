import Dispatch
import FastDFSProtocol
import FuseTypes
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The small-file journal (issue 12): one append-only file per mount (`STAGING/journal-RUN-GEN`)
/// that holds the bytes of new small files until their close, instead of a staging file and a
/// database record per file. A new file written sequentially from 0 keeps its bytes in memory
/// (`SmallFile`) and each write appends one record here before it is acknowledged, so a killed
/// daemon loses no acknowledged write (the page cache keeps the journal, as it keeps staging files);
/// its close uploads from memory. No file is created or removed per file.
///
/// Record (little endian): magic "FJ01", kind (1 data, 2 done), writer id, inode, offset,
/// length, CRC-32 of the 36 header bytes before it and the payload; then the payload. A torn last
/// record (killed mid-write) fails its CRC and was never acknowledged. A failed append is cut off
/// again, so records always follow each other.
///
/// "done" records (the file was committed, moved to a staging file, or dropped) are not written
/// where they happen (that is Swift's cooperative pool): they wait in memory and go out with the
/// next data record (the next small file's first write, on libfuse's thread), or on the journal's
/// own queue when something waits for them. Recovery only takes the bytes of a writer with no
/// "done" whose file is still new (no file id, not deleted), so a missing "done" costs nothing;
/// before a node is purged (its number could be given to a new file) `settled()` writes them.
/// Past `rotateBytes` a new journal file starts; an old one is removed once every writer in it is
/// done. That bookkeeping is `WriteJournalStateMachine` (pure); this type does its file I/O.
final class WriteJournal: Sendable {
    let dir: String
    /// Bytes of small files held in memory over all writers; past `memoryLimit` new bytes go
    /// the staged way.
    let memoryHeld = Atomic<Int>(0)
    let memoryLimit: Int
    let rotateBytes: Int64
    private let run = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    private let queue = DispatchQueue(label: "fdfsfs.journal", qos: .utility)

    /// The bookkeeping (pure, see WriteJournalStateMachine) and the open journal file.
    private struct State {
        var machine: WriteJournalStateMachine
        var fd: FileDescriptor?
    }
    private let state: Mutex<State>

    static let magic: UInt32 = 0x3130_4A46   // "FJ01"
    static let headerSize = 40
    enum Kind: UInt32 { case data = 1, done = 2 }

    init(dir: String, memoryLimit: Int = 64 << 20, rotateBytes: Int64 = 64 << 20) {
        self.dir = dir
        self.memoryLimit = memoryLimit
        self.rotateBytes = rotateBytes
        state = Mutex(State(machine: WriteJournalStateMachine(rotateBytes: rotateBytes)))
    }

    deinit {
        if let fd = state.withLock({ $0.fd }) { try? fd.close() }
    }

    private func path(_ generation: Int) -> String { dir + "/journal-\(run)-\(generation)" }
    static func isJournal(_ name: String) -> Bool { name.hasPrefix("journal-") }

    static func record(_ kind: Kind, writer: UInt64, ino: Int64, offset: Int64, payload: [UInt8]) -> [UInt8] {
        var r = [UInt8]()
        r.reserveCapacity(headerSize + payload.count)
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { r.append(contentsOf: $0) } }
        put(magic); put(kind.rawValue); put(writer); put(ino); put(offset); put(UInt32(payload.count))
        var crc = CRC32()
        crc.update(bytes: r)
        crc.update(bytes: payload)
        put(crc.value)
        r.append(contentsOf: payload)
        return r
    }

    /// Appends one data record (on the caller's thread: libfuse's, or a staging step; a page-cache
    /// write). ENOSPC or EIO when the local disk refuses it; nothing is left half-written.
    func appendData(writer: UInt64, ino: Int64, offset: Int64, data: [UInt8]) throws(FSError) {
        try append(Self.record(.data, writer: writer, ino: ino, offset: offset, payload: data), writer: writer)
    }

    private func append(_ record: [UInt8], writer: UInt64?) throws(FSError) {
        let result: Result<Void, FSError> = state.withLock { s in
            let plan = s.machine.appendRequested()
            if plan.closeCurrent, let old = s.fd {
                try? old.close()
                s.fd = nil
            }
            remove(plan.remove)
            if plan.openFile {
                do {
                    s.fd = try FileDescriptor.open(FilePath(path(plan.generation)), .writeOnly, options: [.closeOnExec, .create, .truncate],
                                                   permissions: [.ownerReadWrite])
                    s.machine.fileOpened()
                } catch {
                    s.fd = nil
                    s.machine.fileOpenFailed()
                    return .failure(StagingFile.failure(error, "cannot open the write journal \(path(plan.generation))"))
                }
            }
            guard let fd = s.fd else { return .failure(FSError(EIO, "the write journal is not open")) }
            // The waiting "done" records go first, in the same write.
            let bytes = plan.done.isEmpty ? record : Self.doneRecords(plan.done) + record
            do {
                let n = try fd.writeAll(toAbsoluteOffset: plan.offset, bytes)
                remove(s.machine.appendSucceeded(bytes: Int64(n), writer: writer, done: plan.done))
            } catch {
                _ = try? fd.resize(to: plan.offset)   // no torn record before the next one
                return .failure(StagingFile.failure(error, "cannot write to the write journal \(path(plan.generation))"))
            }
            return .success(())
        }
        try result.get()
    }

    static func doneRecords(_ done: [WriteJournalStateMachine.Done]) -> [UInt8] {
        done.flatMap { record(.done, writer: $0.writer, ino: $0.ino, offset: 0, payload: []) }
    }

    /// The writer's records are no longer needed (committed, staged elsewhere, or dropped):
    /// a "done" record waits for the next write (or `settled()`).
    func done(writer: UInt64, ino: Int64) {
        state.withLock { $0.machine.writerFinished(writer: writer, ino: ino) }
    }

    /// Writes the waiting "done" records (on the journal's queue).
    private func writeDone() {
        state.withLock { s in
            guard let (offset, done) = s.machine.doneWriteRequested(), let fd = s.fd else { return }
            do {
                let n = try fd.writeAll(toAbsoluteOffset: offset, Self.doneRecords(done))
                remove(s.machine.doneWritten(bytes: Int64(n), done: done))
            } catch {
                _ = try? fd.resize(to: offset)   // kept waiting: recovery checks the file anyway
            }
        }
    }

    /// Removes older journal files (every writer in them is done).
    private func remove(_ generations: [Int]) {
        for g in generations { unlink(path(g)) }
    }

    /// Writes the waiting "done" records, off the cooperative pool (before a node number can be
    /// reused).
    func settled() async {
        guard state.withLock({ !$0.machine.pendingDone.isEmpty }) else { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            queue.async { [self] in
                writeDone()
                c.resume()
            }
        }
    }

    /// At unmount: removes this run's journal files when every writer in them is done (its
    /// bytes committed, or in a staging file and its record); otherwise they stay for the next
    /// start. Returns whether they were removed.
    @discardableResult
    func removeIfAllDone() -> Bool {
        queue.sync {
            state.withLock { s in
                guard let all = s.machine.unmountRequested() else { return false }
                if let fd = s.fd { try? fd.close() }
                s.fd = nil
                remove(all)
                return true
            }
        }
    }

    // MARK: - Recovery

    /// A writer of a previous run whose bytes may not have reached a storage server.
    struct Unfinished: Equatable {
        var writer: UInt64
        var ino: Int64
        var bytes: [UInt8]
    }

    /// The journal files left in `dir` by earlier runs, and for each node the bytes of its latest
    /// writer with no "done" record (nodes with none left out). Blocking: called at start, before
    /// any request, and by `fdfsfs status`.
    static func recover(dir: String) -> (files: [String], unfinished: [Unfinished]) {
        var names = StagingFile.entries(of: dir).filter(isJournal)
        // Each run's files in generation order (runs do not overlap: a run recovers and removes
        // the files of the one before).
        func key(_ n: String) -> (String, Int) {
            let parts = n.split(separator: "-")
            return (parts.count >= 3 ? String(parts[1]) : n, parts.last.flatMap { Int($0) } ?? 0)
        }
        names.sort { key($0) < key($1) }
        var order: [UInt64] = []
        var found: [UInt64: Unfinished] = [:]
        for n in names {
            guard let fd = try? FileDescriptor.open(FilePath(dir + "/" + n), .readOnly, options: .closeOnExec) else { continue }
            let buf = StagingFile.readAll(fd)
            try? fd.close()
            parse(buf) { kind, writer, ino, offset, payload in
                switch kind {
                case .data:
                    var u = found[writer] ?? Unfinished(writer: writer, ino: ino, bytes: [])
                    if found[writer] == nil { order.append(writer) }
                    // Only a sequential stream from 0 is journaled; anything else ends it.
                    if offset == Int64(u.bytes.count) { u.bytes.append(contentsOf: payload) }
                    found[writer] = u
                case .done:
                    found[writer] = nil
                }
            }
        }
        // A node number is used by one file at a time: its latest writer is the one that counts.
        var latest: [Int64: Unfinished] = [:]
        for u in order.compactMap({ found[$0] }) { latest[u.ino] = u }
        return (names.map { dir + "/" + $0 }, latest.values.filter { !$0.bytes.isEmpty }.sorted { $0.ino < $1.ino })
    }

    /// Calls `body` for each whole, intact record; stops at the first torn or damaged one.
    static func parse(_ buf: [UInt8], _ body: (Kind, UInt64, Int64, Int64, ArraySlice<UInt8>) -> Void) {
        func word<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            var v: T = 0
            for i in 0..<MemoryLayout<T>.size { v |= T(buf[at + i]) << (8 * i) }
            return v
        }
        var at = 0
        while at + headerSize <= buf.count {
            guard word(at, UInt32.self) == magic, let kind = Kind(rawValue: word(at + 4, UInt32.self)) else { return }
            let length = Int(word(at + 32, UInt32.self))
            guard at + headerSize + length <= buf.count else { return }
            var crc = CRC32()
            crc.update(bytes: buf[at..<at + 36])
            crc.update(bytes: buf[at + headerSize..<at + headerSize + length])
            guard crc.value == word(at + 36, UInt32.self) else { return }
            body(kind, word(at + 8, UInt64.self), Int64(bitPattern: word(at + 16, UInt64.self)), Int64(bitPattern: word(at + 24, UInt64.self)),
                 buf[at + headerSize..<at + headerSize + length])
            at += headerSize + length
        }
    }
}

/// The bytes of a new file while it is small and written only sequentially from 0 (see
/// `WriteJournal`). Appends come from libfuse's threads (`FDFSFileSystem.immediateWrite`) or from
/// the writer; the writer takes the bytes over (`take`) for anything else: the close's upload,
/// a write elsewhere, a truncate, a read of its id.
final class SmallFile: Sendable {
    let writer = UInt64.random(in: 1...UInt64.max)
    let ino: Int64
    let journal: WriteJournal
    /// The most bytes a small file holds (below one write chunk: a file that fills one is
    /// streamed as large files are).
    let limit: Int
    static let maxLimit = 256 << 10

    private struct State {
        var bytes: [UInt8] = []
        /// False once taken over: appends go to the writer's staged path.
        var open = true
        var journaled = false
    }
    private let state = Mutex(State())

    init(ino: Int64, journal: WriteJournal, chunk: Int64) {
        self.ino = ino
        self.journal = journal
        limit = Int(min(Int64(Self.maxLimit), chunk - 1))
    }

    deinit {
        let s = state.withLock { $0 }
        if s.open { journal.memoryHeld.subtract(s.bytes.count, ordering: .relaxed) }
        if s.journaled { journal.done(writer: writer, ino: ino) }
    }

    /// Appends `data` at `offset` when that is the end and the file stays small (journaled
    /// first). nil: not taken (the caller goes the staged way); an error: the journal refused it.
    func append(offset: Int64, data: [UInt8], sized: (Int64) -> Void) -> Result<Int, FSError>? {
        state.withLock { s -> Result<Int, FSError>? in
            guard s.open, offset == Int64(s.bytes.count), s.bytes.count + data.count <= limit else { return nil }
            let held = journal.memoryHeld.add(data.count, ordering: .relaxed).newValue
            guard held <= journal.memoryLimit else {
                journal.memoryHeld.subtract(data.count, ordering: .relaxed)
                return nil
            }
            do throws(FSError) {
                try journal.appendData(writer: writer, ino: ino, offset: offset, data: data)
            } catch {
                journal.memoryHeld.subtract(data.count, ordering: .relaxed)
                return .failure(error)
            }
            s.journaled = true
            s.bytes.append(contentsOf: data)
            sized(Int64(s.bytes.count))
            return .success(data.count)
        }
    }

    /// The size while appends are taken here (nil once taken over).
    var openSize: Int64? { state.withLock { $0.open ? Int64($0.bytes.count) : nil } }
    var holdsBytes: Bool { state.withLock { $0.open && !$0.bytes.isEmpty } }

    /// `[offset, offset + length)` of the bytes (while open).
    func read(offset: Int64, length: Int) -> [UInt8]? {
        state.withLock { s in
            guard s.open else { return nil }
            let lo = Int(min(offset, Int64(s.bytes.count))), hi = min(s.bytes.count, lo + length)
            return Array(s.bytes[lo..<hi])
        }
    }

    /// Ends the appends here and hands the bytes over (nil when already taken).
    func take() -> [UInt8]? {
        state.withLock { s in
            guard s.open else { return nil }
            s.open = false
            journal.memoryHeld.subtract(s.bytes.count, ordering: .relaxed)
            defer { s.bytes = [] }
            return s.bytes
        }
    }

    /// The bytes are safe elsewhere now (on a storage server and recorded, or in a staging file
    /// and its record): the journal's records of this file are done.
    func finished() {
        let was = state.withLock { s in
            defer { s.journaled = false }
            return s.journaled
        }
        if was { journal.done(writer: writer, ino: ino) }
    }
}
