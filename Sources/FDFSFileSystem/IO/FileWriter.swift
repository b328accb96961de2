import FuseTypes
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Write-back for one file (issue 5). Writes land in the file's staging file in `state_dir`
/// and in a dirty-range map (`WriteState`, recorded in the `staged_files` table), not on the
/// server one syscall at a time. Bytes go to the cluster in `chunk`-sized requests:
/// - while writing, whole chunks of the content past the server's end and staged ranges inside
///   the server's file, once `chunk` bytes are staged, sent by a streaming task one request at a
///   time while the writes go on (staging and sending overlap; writes wait only once two
///   chunks are staged); shipped ranges are punched out of the staging file, so a 1 GiB cp keeps
///   a few chunks locally;
/// - at `sync()` (fsync, close), everything, then the naming layer records file id and size.
/// A failed ship keeps the bytes staged (retried later, and at the next mount); the error
/// (EIO, ENOSPC) is what fsync/close return. Immutable normal files are copied on write: the
/// new appender is built from the old file's bytes plus the staged ones, and the old id is
/// deleted once the name points to the new one. The decisions are `FileWriterStateMachine`'s;
/// this actor does the I/O. A short lock serialises the local steps (staging, records, reads);
/// no lock is held while a streaming request is on the network.
/// A slave file being created in the by-id view: uploaded whole at sync (slaves are immutable).
/// Recorded with the write state, so a restart can still complete the upload.
public struct SlaveTarget: Sendable, Hashable, Codable {
    public var master: String
    public var prefix: String
    public var ext: String
    /// The id the upload must produce (the name the user created).
    public var fileID: String
}

actor FileWriter {
    let ino: Int64
    let store: any FileStore
    let naming: any NamingEngine
    let group: String?
    /// False for by-id appender files: nothing to record in the naming layer.
    let named: Bool
    /// A shared tree: the committed appender is changed in place only past its committed size;
    /// a change below it makes the file a copy (another mount's writer may be reading the
    /// committed file as its base; see `WriteState.copyInsteadOfChanging`).
    let guardsCommitted: Bool
    /// Carries the inode as metadata.
    let logger: Logger
    /// Staged bytes are counted in `metrics.stagedBytes` while this writer holds them.
    let metrics: FileSystemMetrics?
    let staging: StagingFile
    let chunk: Int64
    /// Staged bytes above which writes fail with the last ship error instead of staging more.
    let maxStaged: Int64
    /// Set for a new slave file: bytes stay staged until sync, then go up in one UPLOAD_SLAVE.
    /// Part of the recorded state (`staged_files`), so a restart completes the upload.
    let slave: SlaveTarget?
    /// The write-back decisions and the write state (`FileWriterStateMachine`).
    private var machine: FileWriterStateMachine
    private(set) var state: WriteState {
        get { machine.state }
        set {
            let sizeChanged = newValue.size != machine.state.size
            if let metrics, newValue.dirty != machine.state.dirty {
                metrics.stagedBytes.increment(by: Double(newValue.dirty.byteCount - machine.state.dirty.byteCount))
            }
            machine.state = newValue
            if sizeChanged { liveSize.store(newValue.size, ordering: .relaxed) }
        }
    }
    /// `state.size`, readable without awaiting the actor (answers from memory, issue 12).
    nonisolated let liveSize = Atomic<Int64>(0)
    /// The last ship error (nil after a successful ship).
    var lastError: FSError? { machine.lastError }
    private var recorded = false
    /// The task sending staged bytes while the file is written (nil when none runs).
    private var streamer: Task<Void, Never>?
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    /// Monotonic seconds (injected in tests): the back-off after a failed ship.
    let clock: Clock
    /// The global cap on requests sending bytes (nil: none, tests).
    let slots: UploadSlots?
    /// Bytes sent to the cluster by this writer (tests, bench).
    private(set) var bytesSent: Int64 = 0

    // Small new files (issue 12): what saves a trip to the database or the staging queue.
    /// The upload extension, from the name given at create (nil: ask the naming layer).
    private var extHint: String?
    /// The whole content of a new file written sequentially from 0, while it stays small: the
    /// upload is built from it instead of read back from the staging file (which still holds the
    /// bytes for crash safety). nil once anything else happens.
    private var image: [UInt8]?
    static let imageLimit = 256 << 10
    /// False for a file created by this writer's mount with no user.* metadata set before its
    /// data: the commit then needs no look at the pending metadata.
    private var mayHavePendingMetadata = true
    /// A new, empty file: its first bytes, while it stays small and is written sequentially, are
    /// kept in memory and journaled (`WriteJournal`), with no staging file and no record; the
    /// close uploads them from memory. Taken over by the staged path for anything else.
    nonisolated let small: SmallFile?

    init(ino: Int64, state: WriteState, stagingPath: String, store: any FileStore, naming: any NamingEngine, group: String?,
         named: Bool, chunk: Int64 = 4 << 20, maxStaged: Int64 = 256 << 20, slots: UploadSlots? = nil,
         recorded: Bool = false, slave: SlaveTarget? = nil, guardsCommitted: Bool = false, journal: WriteJournal? = nil,
         created: Bool = false, createdName: String? = nil,
         clock: @escaping Clock = monotonicSeconds, logger: Logger = .silent, metrics: FileSystemMetrics? = nil) throws(FSError) {
        var logger = logger
        logger[metadataKey: "inode"] = "\(ino)"
        self.logger = logger
        self.metrics = metrics
        metrics?.stagedBytes.increment(by: Double(state.dirty.byteCount))
        self.guardsCommitted = guardsCommitted
        self.clock = clock
        self.slots = slots
        let theSlave = slave ?? state.slave
        self.slave = theSlave
        var initial = state
        initial.slave = theSlave
        initial.stagingFile = stagingPath
        self.ino = ino; self.store = store; self.naming = naming; self.group = group
        self.named = named; self.chunk = chunk; self.maxStaged = maxStaged; self.recorded = recorded
        staging = StagingFile(path: stagingPath, existing: recorded)
        if recorded {
            // Recovered after a restart or crash: a request may have been cut off mid-way.
            if initial.fileID != nil { initial.remoteUncertain = true }
        }
        let fresh = !recorded && theSlave == nil && initial.fileID == nil && initial.baseID == nil && initial.size == 0
        small = fresh ? journal.map { SmallFile(ino: ino, journal: $0, chunk: chunk) } : nil
        var m = FileWriterStateMachine(state: initial, chunk: chunk)
        m.mustVerify = recorded
        machine = m
        liveSize.store(initial.size, ordering: .relaxed)
        // A named file this mount has just created (`created`): what `markCreated` records, set
        // before the writer is shared.
        if created && theSlave == nil {
            if let createdName { extHint = Self.ext(of: createdName) }
            if fresh { image = [] }
            mayHavePendingMetadata = false
        }
    }

    var size: Int64 { small?.openSize ?? state.size }
    var isClean: Bool { state.isClean && !(small?.holdsBytes ?? false) }

    /// A write that extends a small new file (see `small`), answered without the actor: nil when
    /// it is not one (the caller goes through `write`).
    nonisolated func appendSmall(offset: Int64, data: [UInt8]) -> Result<Int, FSError>? {
        changed()
        let done = small?.append(offset: offset, data: data) { liveSize.store($0, ordering: .relaxed) }
        if case .success? = done { dataChanged() }
        return done
    }

    /// A modification time set explicitly (utimensat, `cp -p`, `touch -d`) while the file is open
    /// for writing, after its last data change: the commit at close keeps it instead of stamping
    /// the close's time. A later write or truncate clears it.
    nonisolated let explicitMtime = Mutex<Int64?>(nil)
    nonisolated func timesSet(mtime: TimeSet) {
        explicitMtime.withLock { if case .time(let t) = mtime { $0 = t.nanoseconds } else { $0 = nil } }
    }
    nonisolated func dataChanged() {
        changed()
        explicitMtime.withLock { $0 = nil }
    }

    /// Counts writes, truncates and file requirements (each one before it touches anything).
    private nonisolated let changes = Atomic<UInt64>(0)
    /// The count at the last durability point that left nothing to send or record (max: none).
    private nonisolated let settledAt = Atomic<UInt64>(.max)
    private nonisolated func changed() { changes.add(1, ordering: .acquiringAndReleasing) }
    /// True while the last durability point (`sync`) left nothing to send or record and nothing
    /// changed after it began: the last close can drop the writer without asking the actor
    /// (`FDFSFileSystem.immediateRelease`).
    nonisolated var settled: Bool { settledAt.load(ordering: .acquiring) == changes.load(ordering: .acquiring) }
    /// After a successful durability point that began at change count `seen`.
    private func noteSettled(_ seen: UInt64) {
        guard state.isClean, !(small?.holdsBytes ?? false), !recorded, changes.load(ordering: .acquiring) == seen else { return }
        settledAt.store(seen, ordering: .releasing)
    }

    /// Moves a small file's bytes to the staged path (before anything but an append; the lock is
    /// held). The journal's copy is kept until the staging file and its record hold them.
    private func absorbSmall() async throws(FSError) {
        guard let small, let bytes = small.take() else { return }
        guard !bytes.isEmpty else { return }
        adoptSmallBytes(bytes)
        try await staging.write(bytes, at: 0, generation: state.logGeneration ?? 0)
        try await record(status: .pending)
        small.finished()
    }

    /// The small file's bytes become the staged content (in memory only: `image` serves the
    /// upload; the staging file gets them only if they must wait).
    private func adoptSmallBytes(_ bytes: [UInt8]) {
        image = bytes
        machine.bytesStaged(offset: 0, count: Int64(bytes.count))
        liveSize.store(state.size, ordering: .relaxed)
    }
    /// The id readers should use for xattrs and the like (the committed one while a copy is built).
    var fileID: String? { state.committedID ?? state.fileID }

    static func ext(of name: String?) -> String {
        guard let name, let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "" }
        let e = name[name.index(after: dot)...]
        guard (1...6).contains(e.utf8.count), e.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) }) else { return "" }
        return String(e)
    }

    private func lock() async {
        if !busy { busy = true; return }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func unlock() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
    }

    /// The lock, with no streaming request in flight (durability points and resizes wait for
    /// it, without holding the lock meanwhile).
    private func lockQuiescent() async {
        while true {
            if let t = streamer {
                await t.value
                continue
            }
            await lock()
            if streamer == nil && machine.inFlight == nil { return }
            unlock()
        }
    }

    // MARK: - Writes

    /// Makes the file a copy before a change below the committed size (`guardsCommitted`).
    private func copyBeforeChanging(at offset: Int64) async {
        guard guardsCommitted, state.changesCommittedBytes(at: offset) else { return }
        await lockQuiescent()
        defer { unlock() }
        guard state.changesCommittedBytes(at: offset) else { return }
        state.copyInsteadOfChanging()
        image = nil
    }

    func write(offset: Int64, data: [UInt8]) async throws(FSError) -> Int {
        if data.isEmpty { return 0 }
        if let done = appendSmall(offset: offset, data: data) { return try done.get() }
        dataChanged()
        await copyBeforeChanging(at: offset)
        // Back-pressure: two chunks staged and one on its way: wait for it.
        while machine.shouldThrottle, let t = streamer { await t.value }
        await lock()
        defer { unlock() }
        try await absorbSmall()
        if state.dirty.byteCount >= maxStaged, let e = machine.lastError { throw e }
        try await staging.write(data, at: offset, generation: state.logGeneration ?? 0)
        if let current = image {
            if offset == Int64(current.count) && current.count + data.count <= Self.imageLimit { image!.append(contentsOf: data) } else { image = nil }
        }
        let before = state.size
        machine.bytesStaged(offset: offset, count: Int64(data.count))
        if state.size != before { liveSize.store(state.size, ordering: .relaxed) }
        loggedSinceRecord += 1
        // The log is emptied at each record: small rewrites that never fill a chunk (no ship)
        // would otherwise grow it without end.
        if !recorded || loggedSinceRecord >= Self.maxLogEntries { try await record(status: .pending) }
        startStreamingIfReady()
        return data.count
    }

    /// Starts the streaming task when a whole chunk is staged and none runs.
    private func startStreamingIfReady() {
        guard streamer == nil, slave == nil, state.dirty.byteCount >= chunk, !machine.backingOff(now: clock()) else { return }
        streamer = Task { await self.stream() }
    }

    /// Sends staged chunks one request at a time while the file is written. The request goes
    /// out without the lock (writes and reads go on); its result is applied under the lock.
    private func stream() async {
        defer { streamer = nil }
        while true {
            await lock()
            let prepared: Prepared
            do throws(FSError) {
                try await settleRemote()
                guard let step = machine.nextStreamingStep(now: clock()) else {
                    unlock()
                    return
                }
                do throws(FSError) { prepared = try await prepare(step) } catch {
                    machine.stepFailed(error, now: clock())
                    throw error
                }
            } catch {
                if machine.lastError == nil { logger.warning("sending staged data failed, keeping it staged: \(error)") }
                machine.requestFailed(error, now: clock())
                unlock()
                return
            }
            unlock()
            let result = await send(prepared)   // on the network: no lock held
            await lock()
            switch result {
            case .success(let id):
                let punch = machine.stepSucceeded(uploadedID: id)
                bytesSent += prepared.bytes
                do throws(FSError) {
                    try await record(status: .pending)
                    for r in punch { await staging.punch(r.lo, r.hi) }
                } catch {
                    machine.requestFailed(error, now: clock())
                }
            case .failure(let error):
                // Kept staged; fsync/close report it, and writes fail once maxStaged is reached.
                if machine.lastError == nil { logger.warning("sending staged data failed, keeping it staged: \(error)") }
                machine.stepFailed(error, now: clock())
                unlock()
                return
            }
            unlock()
        }
    }

    /// After a crash: adds what the write log and the staging file hold beyond the recorded map
    /// (see `WriteState.adoptUnrecorded`).
    func adoptUnrecordedExtents() async {
        let logged = await staging.loggedWrites(generation: state.logGeneration ?? 0)
        let (extents, fileSize) = await staging.dataExtents()
        let added = state.adoptUnrecorded(logged: logged, extents: extents, stagingSize: fileSize)
        if added > 0 {
            logger.warning("\(added) staged bytes written after the last record found in \(staging.path)")
            try? await record(status: .pending)
        }
    }

    /// A file made by create(). A file that stays empty gets no FastDFS file at close (a create
    /// costs the naming layer only; `requireFile` makes one when its id is asked for). A new
    /// slave file is uploaded at its last close even when empty.
    /// `name`: its name, for the upload's extension.
    func markCreated(name: String? = nil) {
        if slave != nil { state.wantsFile = true }   // a new slave is uploaded even when empty
        if let name { extHint = Self.ext(of: name) }
        if state.fileID == nil && state.baseID == nil && state.size == 0 { image = [] }
        mayHavePendingMetadata = false
    }

    /// An empty file with no FastDFS file yet gets an (empty) appender file at the next sync, so
    /// it has an id to show. False when it holds bytes or has a file already.
    func requireFile() -> Bool {
        guard state.fileID == nil, state.baseID == nil, state.size == 0, (small?.openSize ?? 0) == 0, slave == nil else { return false }
        changed()
        state.wantsFile = true
        return true
    }

    /// The file was renamed: its extension comes from its name again.
    func forgetExtHint() { extHint = nil }

    /// user.* metadata was set on the file before its data (kept in the naming layer).
    func notePendingMetadata() { mayHavePendingMetadata = true }

    /// truncate / ftruncate / O_TRUNC, staged like a write (sent at the next ship).
    func resize(to newSize: Int64) async throws(FSError) {
        dataChanged()
        await copyBeforeChanging(at: newSize)
        await lockQuiescent()
        defer { unlock() }
        try await absorbSmall()
        if newSize < state.size { try await staging.truncate(newSize) }
        if newSize != Int64(image?.count ?? -1) { image = nil }
        state.resize(newSize)
        try await record(status: .pending)
    }

    private var uploadEmptySlave = false
    /// The last handle of a new slave closed: upload it even if empty.
    func syncLastClose() async throws(FSError) {
        uploadEmptySlave = true
        try await sync()
    }

    /// The durability point (fsync, close): everything on a storage server and recorded.
    func sync() async throws(FSError) {
        let seen = changes.load(ordering: .acquiring)
        await lockQuiescent()
        defer { unlock() }
        // A small new file goes up from memory in one request (no staging file was made).
        let fromSmall = small?.take()
        if let fromSmall, !fromSmall.isEmpty { adoptSmallBytes(fromSmall) }
        if state.isClean {
            if recorded { try await commit() }
            noteSettled(seen)
            return
        }
        do {
            if let slave { try await shipSlave(slave) } else { try await shipFinal() }
            try await verifyOnSource()
            try await commit(shipped: true)
            small?.finished()
            noteSettled(seen)
        } catch {
            machine.requestFailed(error, now: clock())
            // The bytes of a small file wait in a staging file like any other (their journal
            // records stay until that is recorded).
            var kept = true
            if let fromSmall, !fromSmall.isEmpty {
                do throws(FSError) { try await staging.write(fromSmall, at: 0, generation: state.logGeneration ?? 0) } catch {
                    logger.error("cannot stage the bytes of a small file (they stay in the write journal): \(error)")
                    kept = false
                }
            }
            // Survive a crash: the staged bytes and their map reach the disk before we answer.
            try? await staging.sync()
            do throws(FSError) { try await record(status: .failed, error: error.description) } catch { kept = false }
            if kept, fromSmall != nil { small?.finished() }
            throw error
        }
    }

    // MARK: - Reads (read your writes)

    func read(offset: Int64, length: Int) async throws(FSError) -> [UInt8] {
        await lock()
        defer { unlock() }
        if let b = small?.read(offset: offset, length: length) { return b }
        let end = min(state.size, offset + Int64(length))
        guard end > offset else { return [] }
        var buf = [UInt8](repeating: 0, count: Int(end - offset))
        let remote = state.effectiveRemote
        if let fid = state.fileID, remote > offset {
            let got = try await store.download(fid, offset: offset, length: min(end, remote) - offset, storage: store.sourceStorage(of: fid))
            buf.replaceSubrange(0..<got.count, with: got)
        }
        if let base = state.baseID {
            let lo = max(offset, remote), hi = min(end, state.baseSize)
            if hi > lo {
                let got = try await store.download(base, offset: lo, length: hi - lo, storage: nil)
                buf.replaceSubrange(Int(lo - offset)..<Int(lo - offset) + got.count, with: got)
            }
        }
        for r in state.dirty.intersection(offset, end) {
            let got = try await staging.read(r.lo, Int(r.count))
            buf.replaceSubrange(Int(r.lo - offset)..<Int(r.hi - offset), with: got)
        }
        return buf
    }

    // MARK: - Shipping

    /// Writes logged since the last record; at `maxLogEntries` (1.5 MiB of log) a record is made.
    private var loggedSinceRecord = 0
    static let maxLogEntries = 65_536

    /// Saves the state (a new log generation) in `staged_files`, then empties the write log.
    private func record(status: StagedStatus, error: String? = nil) async throws(FSError) {
        var s = state
        s.logGeneration = (state.logGeneration ?? 0) &+ 1
        try await naming.saveStaged(ino: ino, state: s, status: status, error: error, durable: status == .failed)
        state.logGeneration = s.logGeneration
        recorded = true
        loggedSinceRecord = 0
        await staging.clearLog()
    }

    /// The bytes of `[lo, hi)` for an upload or append: the copy-on-write source's, overlaid
    /// with the staged ones (zeros elsewhere).
    private func content(_ lo: Int64, _ hi: Int64) async throws(FSError) -> [UInt8] {
        if let image, state.baseID == nil, hi <= Int64(image.count) { return Array(image[Int(lo)..<Int(hi)]) }
        let staged = state.dirty.intersection(lo, hi)
        if state.baseID == nil || lo >= state.baseSize, staged.count == 1, staged[0].lo == lo, staged[0].hi == hi {
            return try await staging.read(lo, Int(hi - lo))   // all staged (a sequential write): one buffer
        }
        var buf = [UInt8](repeating: 0, count: Int(hi - lo))
        if let base = state.baseID, lo < state.baseSize {
            let got = try await store.download(base, offset: lo, length: min(hi, state.baseSize) - lo, storage: nil)
            buf.replaceSubrange(0..<got.count, with: got)
        }
        for r in staged {
            let got = try await staging.read(r.lo, Int(r.count))
            buf.replaceSubrange(Int(r.lo - lo)..<Int(r.hi - lo), with: got)
        }
        return buf
    }

    /// After a failed request, or a restart, the server may hold part of a step: cut it back to
    /// the recorded size (asked of the file's source storage, the only one changed).
    private func settleRemote() async throws(FSError) {
        guard state.remoteUncertain else { return }
        if let fid = state.fileID {
            let info = try await store.fileInfo(fid)
            if info.size > state.remoteSize {
                try await store.truncate(fid, to: state.remoteSize)
            } else if info.size < state.remoteSize {
                logger.error("\(fid) holds \(info.size) bytes on its source storage, \(state.remoteSize) were acknowledged")
                throw FSError(EIO, "\(fid) holds \(info.size) bytes on the server, \(state.remoteSize) were acknowledged; the file is damaged")
            }
        }
        state.remoteUncertain = false
    }

    /// A slave goes up whole, once; afterwards the server refuses any change.
    private func shipSlave(_ t: SlaveTarget) async throws(FSError) {
        guard state.fileID == nil else {
            throw FSError(EPERM, "\(t.fileID) is a slave file already uploaded; FastDFS cannot modify it")
        }
        // Shells close a dup'ed descriptor (flush) before writing: an empty slave waits for the
        // last close (`syncLastClose`), so its one upload carries the bytes.
        if state.size == 0 && !uploadEmptySlave { return }
        let data = try await content(0, state.size)
        let id: String
        do { id = try await sending { () async throws(FSError) -> String in try await store.uploadSlave(data, master: t.master, prefix: t.prefix, ext: t.ext) } }
        catch where error.errno == EEXIST {
            // Uploaded before a crash that came before its record: the server has the slave.
            // The same bytes mean it is this one; anything else is a real conflict.
            guard let held = try? await store.download(t.fileID, offset: 0, length: state.size, storage: nil), held == data,
                  (try? await store.fileInfo(t.fileID))?.size == state.size else {
                throw FSError(EEXIST, "a different slave file \(t.fileID) already exists")
            }
            logger.info("slave file \(t.fileID) was already uploaded (before a restart)")
            id = t.fileID
        }
        guard id == t.fileID else {
            logger.error("slave upload of \(t.master) (prefix \(t.prefix), ext \(t.ext)) produced \(id), expected \(t.fileID)")
            throw FSError(EIO, "slave upload produced \(id) instead of \(t.fileID)")
        }
        bytesSent += state.size
        state.fileID = id
        state.remoteSize = state.size
        state.truncateTo = nil
        state.dirty.remove(0, state.size)
        logger.info("uploaded slave file \(id) of \(t.master) (\(state.size) bytes)")
    }

    /// Runs a request that sends bytes under the global cap.
    private func sending<T>(_ body: () async throws(FSError) -> T) async throws(FSError) -> T {
        guard let slots else { return try await body() }
        await slots.acquire()
        do {
            let r = try await body()
            slots.release()
            return r
        } catch {
            slots.release()
            throw error
        }
    }

    /// A step with what it sends, read under the lock before the request goes out.
    enum Prepared: Sendable {
        case none
        case truncate(fileID: String, size: Int64)
        case modify(fileID: String, offset: Int64, data: [UInt8])
        case upload(ext: String, data: [UInt8])

        var bytes: Int64 {
            switch self {
            case .none, .truncate: 0
            case .modify(_, _, let d), .upload(_, let d): Int64(d.count)
            }
        }
    }

    private func prepare(_ step: WriteState.Step) async throws(FSError) -> Prepared {
        switch step {
        case .truncate(let t):
            guard let fid = state.fileID else { return .none }
            return .truncate(fileID: fid, size: t)
        case .modify(let a, let b):
            guard let fid = state.fileID else { return .none }
            return .modify(fileID: fid, offset: a, data: try await content(a, b))
        case .upload(let b):
            let ext: String
            if let extHint { ext = extHint } else { ext = Self.ext(of: named ? try await naming.anyName(of: ino)?.description : nil) }
            return .upload(ext: ext, data: try await content(0, b))
        }
    }

    /// Sends one prepared step (uploads under the global cap). Returns the new id of an upload.
    private func send(_ p: Prepared) async -> Result<String?, FSError> {
        do throws(FSError) {
            switch p {
            case .none:
                return .success(nil)
            case .truncate(let fid, let size):
                try await store.truncate(fid, to: size)
                return .success(nil)
            case .modify(let fid, let offset, let data):
                try await sending { () async throws(FSError) in try await store.modify(data, in: fid, at: offset) }
                return .success(nil)
            case .upload(let ext, let data):
                let id = try await sending { () async throws(FSError) -> String in
                    try await store.upload(data, ext: ext, group: group, appender: true)
                }
                logger.debug("created appender file \(id)")
                return .success(id)
            }
        } catch {
            return .failure(error)
        }
    }

    /// Sends everything still staged, one step at a time (the lock is held: this is a durability
    /// point). After each step, what the server now holds is recorded before the staged copy of
    /// those bytes is dropped, so a crash at any point leaves a record that is safe to replay:
    /// every step says where its bytes go (MODIFY at an offset, TRUNCATE to a size), so sending
    /// it again has the same effect, and an UPLOAD made again only leaves an orphan. A step that
    /// may have reached the server only in part makes the server's size uncertain;
    /// `settleRemote` cuts the file back to the recorded size before going on.
    private func shipFinal() async throws(FSError) {
        try await settleRemote()
        while let (step, isLast) = machine.nextFinalStep() {
            let prepared: Prepared
            do throws(FSError) { prepared = try await prepare(step) } catch {
                machine.stepFailed(error, now: clock())
                throw error
            }
            switch await send(prepared) {
            case .failure(let error):
                machine.stepFailed(error, now: clock())
                throw error
            case .success(let id):
                let punch = machine.stepSucceeded(uploadedID: id)
                bytesSent += prepared.bytes
                // The last step of a durability point is recorded by the commit that follows. If
                // the process dies in between, the previous record and the unpunched staged bytes
                // replay the step (MODIFY and TRUNCATE are idempotent, an UPLOAD only leaves an orphan).
                if isLast { return }
                try await record(status: .pending)
                for r in punch { await staging.punch(r.lo, r.hi) }
            }
        }
    }

    /// After a failure (or a restart) the durability point checks the source storage's copy:
    /// its size must be the one recorded, or the file is not declared durable.
    private func verifyOnSource() async throws(FSError) {
        guard machine.mustVerify, slave == nil, let fid = state.fileID else { return }
        let info = try await store.fileInfo(fid)
        guard info.size == state.size else {
            logger.error("\(fid) holds \(info.size) bytes on its source storage after shipping, \(state.size) expected; not recording it as durable")
            state.remoteUncertain = true
            throw FSError(EIO, "\(fid) holds \(info.size) bytes on its source storage, \(state.size) expected")
        }
        machine.mustVerify = false
    }

    /// `shipped`: bytes went out at this durability point. The name is then recorded even when
    /// its id and size are unchanged (mtime; and in a shared tree, a writer that changed its file
    /// in place while another mount's writer replaced it makes it the name's again: last close wins).
    private func commit(shipped: Bool = false) async throws(FSError) {
        // Unchanged copy-on-write source: the name keeps it.
        let newID = state.fileID ?? state.baseID
        if named, let newID, newID != state.committedID {
            // The name's user.* metadata follows it to the new file: the old file's (copy on
            // write, replacement) and what was set before there was any data.
            var meta = state.committedID == nil ? [:] : ((try? await store.metadata(of: state.committedID!)) ?? [:])
            let pending = mayHavePendingMetadata ? try await naming.pendingMetadata(ino) : [:]
            meta.merge(pending) { _, new in new }
            if !meta.isEmpty { try await store.setMetadata(meta, for: newID, merge: false) }
            if !pending.isEmpty { try await naming.clearPendingMetadata(ino) }
        }
        var stagedDropped = false
        if named, shipped || newID != state.committedID || state.size != state.committedSize {
            // One transaction: the name's new id and size, and the end of its staged record.
            if let (row, old) = try await naming.commitWrite(ino, fileID: newID, size: state.size, dropStaged: recorded) {
                logger.info("\(old) replaced by \(newID ?? "no data"); deleting the old file")
                pendingDelete = (row, old)
            }
            stagedDropped = recorded
            // The commit stamps the close's time; a time set after the last write wins.
            if let t = explicitMtime.withLock({ $0 }) {
                _ = try await naming.setAttributes(ino, mode: nil, uid: nil, gid: nil, size: nil, atime: nil,
                                                   mtime: .time(Timespec(nanoseconds: t)))
            }
        }
        state.committedID = newID
        state.committedSize = state.size
        machine.committed()
        if recorded {
            if !stagedDropped { try await naming.removeStaged(ino: ino) }
            recorded = false
        }
        await staging.reset()
    }

    /// The delete of a replaced file, queued by the last commit (the file system runs it).
    var pendingDelete: (row: Int64, fileID: String)?
    func takePendingDelete() -> (row: Int64, fileID: String)? { defer { pendingDelete = nil }; return pendingDelete }

    /// Removes the staging file (the writer is clean and no longer used).
    nonisolated func discard() {
        staging.remove()
        small?.finished()
    }

    deinit {
        metrics?.stagedBytes.decrement(by: Double(machine.state.dirty.byteCount))
    }
}
