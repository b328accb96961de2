import FuseTypes
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The inode → `FileWriter` table, durability points, and staged writes left by a previous run
/// (recovered at `start`, retried every maintenance round, listed by `fdfsfs status`).
extension FDFSFileSystem {
    static func makeStagingDir(_ configured: String?) -> String {
        if let configured {
            Glibc.mkdir(configured, 0o700)
            return configured
        }
        // No state directory (tests): a fresh directory for each filesystem, as a state directory
        // would be (its start sweeps files no staged write claims).
        let dir = "/tmp/fdfsfs-staging-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        Glibc.mkdir(dir, 0o700)
        return dir
    }

    /// A fresh staging file name for a writer of `ino`.
    /// (A random number per process and a counter: no getrandom(2) per file created.)
    func stagingPath(_ ino: UInt64) -> String {
        stagingDir + "/\(ino)-\(Self.stagingPrefix)\(Self.stagingCounter.add(1, ordering: .relaxed).newValue)"
    }
    static let stagingPrefix = String(UInt64.random(in: 0...UInt64.max), radix: 36) + "-"
    static let stagingCounter = Atomic<UInt64>(0)

    func writer(of ino: UInt64) -> FileWriter? { writers.withLock { $0[ino]?.writer } }

    /// The inode's writer (created on first use), with one more reference. `copyOnWrite`: even an
    /// appender file is not changed in place (a new writer builds a new file from it).
    func retainWriter(ino: UInt64, fileID: String?, size: Int64, named: Bool, slave: SlaveTarget? = nil,
                      copyOnWrite: Bool = false) throws(FSError) -> FileWriter {
        try retainWriterMade(ino: ino, fileID: fileID, size: size, named: named, slave: slave, copyOnWrite: copyOnWrite).writer
    }

    /// `retainWriter`, and whether the writer is new (`created`, `createdName`: a file this mount
    /// has just created, see FileWriter.init; they apply to a new writer only).
    func retainWriterMade(ino: UInt64, fileID: String?, size: Int64, named: Bool, slave: SlaveTarget? = nil,
                          copyOnWrite: Bool = false, created: Bool = false, createdName: String? = nil)
        throws(FSError) -> (writer: FileWriter, made: Bool)
    {
        if let w = writers.withLock({ w -> FileWriter? in
            guard let e = w[ino] else { return nil }
            w[ino] = (e.writer, e.refs + 1)
            return e.writer
        }) { return (w, false) }
        let appender = !copyOnWrite && (fileID.map { (try? store.decode($0))?.kind == .appender } ?? false)
        let nw = try FileWriter(ino: Int64(ino), state: WriteState(fileID: fileID, size: size, appender: appender),
                                stagingPath: stagingPath(ino), store: store, naming: naming, group: options.group,
                                named: named, chunk: options.writeChunk, maxStaged: options.maxStaged, slots: uploadSlots, slave: slave,
                                guardsCommitted: named && naming.sharesTree, journal: journal, created: created, createdName: createdName,
                                logger: logger, metrics: metrics)
        let (winner, lost) = writers.withLock { w -> (FileWriter, Bool) in
            if let e = w[ino] { w[ino] = (e.writer, e.refs + 1); return (e.writer, true) }
            w[ino] = (nw, 1)
            return (nw, false)
        }
        if lost { nw.discard() }   // another request made the writer first: its staging file goes
        return (winner, !lost)
    }

    /// One reference less; a clean writer with no references goes away, one with staged bytes
    /// stays (background retries; reads keep seeing its bytes).
    func releaseWriter(ino: UInt64) async {
        guard let w = dropWriterReference(ino: ino) else { return }
        if w.slave != nil, await w.fileID == nil {
            // A new slave still empty at its flushes: uploaded (empty) at the last close.
            do { try await syncWriter(w, ino: ino, lastClose: true) } catch { logger.error("inode \(ino): uploading slave file \(w.slave?.fileID ?? "") at its last close failed: \(error)") }
        }
        await dropIfIdle(ino: ino, w)
    }

    func dropIfIdle(ino: UInt64, _ w: FileWriter) async {
        guard await w.isClean else { return }
        forgetIdleWriter(ino: ino, w)
    }

    /// One reference to the inode's writer less; the writer, when that was its last reference.
    func dropWriterReference(ino: UInt64) -> FileWriter? {
        writers.withLock { t in
            guard let e = t[ino] else { return nil }
            t[ino] = (e.writer, e.refs - 1)
            return e.refs - 1 <= 0 ? e.writer : nil
        }
    }

    /// Drops a writer the caller found clean, if it is still the inode's and unreferenced (an
    /// open that came in meanwhile keeps it).
    func forgetIdleWriter(ino: UInt64, _ w: FileWriter) {
        let dropped = writers.withLock { t -> Bool in
            guard let e = t[ino], e.writer === w, e.refs <= 0 else { return false }
            t[ino] = nil
            return true
        }
        if dropped { w.discard() }
    }

    /// The durability point: ships and records, or returns the error with the bytes kept staged.
    func syncWriter(_ w: FileWriter, ino: UInt64, lastClose: Bool = false) async throws(FSError) {
        let before = await w.fileID
        defer { if let before { fileInfoCache.remove(before) } }
        do {
            if lastClose { try await w.syncLastClose() } else { try await w.sync() }
        } catch {
            logger.error("inode \(ino): \(error); the data stays staged in \(stagingDir) and is retried")
            throw error
        }
        if let fid = await w.fileID { fileInfoCache.remove(fid); metadataCache.remove(fid); negativeCache.remove(fid) }
        if let (row, old) = await w.takePendingDelete() {
            fileInfoCache.remove(old); metadataCache.remove(old)
            await deleteRemote(row: row, fileID: old)
        }
    }

    /// At start: staged files of a previous run come back as writers (reads see their bytes)
    /// and are completed in the background; each is logged.
    func recoverStagedWrites() async {
        guard let records = try? await naming.stagedFiles(), !records.isEmpty else { return }
        logger.warning("\(records.count) file(s) with staged writes from a previous run; completing them (see `fdfsfs status`)")
        for r in records {
            let ino = UInt64(r.ino)
            let named = !InodeTable.isByID(ino)
            if named, (try? await naming.node(r.ino))?.map({ $0.nlink > 0 }) != true {
                logger.warning("staged writes of inode \(r.ino) dropped: the file was deleted")
                try? await naming.removeStaged(ino: r.ino)
                if let f = r.state.stagingFile { Glibc.unlink(f) }
                continue
            }
            let file = r.state.stagingFile ?? stagingPath(ino)
            if !r.state.dirty.isEmpty && Glibc.access(file, F_OK) != 0 {
                logger.error("staged writes of \(r.path) (inode \(r.ino)) are lost: \(file) is missing; the file keeps its last recorded content")
                try? await naming.saveStaged(ino: r.ino, state: r.state, status: .failed, error: "staging file missing")
                continue
            }
            logger.warning("staged: \(r.path) (inode \(r.ino)), \(r.state.size) bytes, \(r.state.dirty.byteCount) staged, \(r.status)\(r.lastError.map { ": " + $0 } ?? "")")
            guard let w = try? FileWriter(ino: r.ino, state: r.state, stagingPath: file, store: store, naming: naming,
                                          group: options.group, named: named, chunk: options.writeChunk, maxStaged: options.maxStaged, slots: uploadSlots, recorded: true,
                                          logger: logger, metrics: metrics) else { continue }
            await w.adoptUnrecordedExtents()
            if named {
                writers.withLock { $0[ino] = (w, 0) }
            } else {
                // By-id files (appenders written in place, new slaves): complete now; otherwise
                // keep the writer (its number is the path's stable hash, so a lookup finds it and
                // reads see the staged bytes) and retry with the others.
                do { try await w.sync(); try? await naming.removeStaged(ino: r.ino); w.discard() }
                catch {
                    logger.error("staged writes of \(r.path) not completed yet, retried every \(Int(Self.retryInterval)) s: \(error)")
                    writers.withLock { $0[ino] = (w, 0) }
                }
            }
        }
    }

    /// At start: small files of a previous run whose bytes are only in the write journal (killed
    /// before their close) become staged writes, completed like any other (`recoverStagedWrites`
    /// runs next). A writer's bytes are taken only while its file is still new: named, without a
    /// file id and without a staged record of its own (a file committed, or staged, after its last
    /// journal record has newer content elsewhere). The journal files are removed once the
    /// staging files and records hold what they had.
    func recoverJournal() async {
        let (files, unfinished) = WriteJournal.recover(dir: stagingDir)
        guard !files.isEmpty else { return }
        let staged = Set(((try? await naming.stagedFiles()) ?? []).map(\.ino))
        var keep = false
        for u in unfinished where !staged.contains(u.ino) {
            guard !InodeTable.isByID(UInt64(u.ino)), let n = try? await naming.node(u.ino), n.nlink > 0, n.isRegular, n.fileID == nil else { continue }
            do throws(FSError) {
                let w = try FileWriter(ino: u.ino, state: WriteState(fileID: nil, size: 0, appender: false), stagingPath: stagingPath(UInt64(u.ino)),
                                       store: store, naming: naming, group: options.group, named: true, chunk: options.writeChunk,
                                       maxStaged: options.maxStaged, slots: uploadSlots, logger: logger, metrics: metrics)
                _ = try await w.write(offset: 0, data: u.bytes)   // staged and recorded (pending)
                logger.warning("\(u.bytes.count) bytes of inode \(u.ino) written before a restart recovered from the write journal")
            } catch {
                logger.error("cannot stage the journaled bytes of inode \(u.ino): \(error); the journal is kept for the next start")
                keep = true
            }
        }
        if !keep { for f in files { Glibc.unlink(f) } }
    }

    /// Removes staging files (and write logs) that no writer owns: left by a crash between a
    /// staging file's creation and its first record, or by an older version. Runs at start,
    /// after recovery has claimed every file a record names.
    func sweepStagingDirectory() {
        let owned = Set(writers.withLock { $0.values.map { $0.writer.staging.path } })
        var removed = 0
        for name in StagingFile.entries(of: stagingDir) where !WriteJournal.isJournal(name) {
            let path = stagingDir + "/" + name
            let base = name.hasSuffix(".log") ? String(path.dropLast(4)) : path
            if owned.contains(base) { continue }
            if Glibc.unlink(path) == 0 { removed += 1 }
        }
        if removed > 0 { logger.info("removed \(removed) staging file(s) no staged write refers to in \(stagingDir)") }
    }

    /// Writers left with staged bytes and no handle: try again.
    public func retryStagedWrites() async {
        let idle = writers.withLock { $0.filter { $0.value.refs <= 0 }.map { ($0.key, $0.value.writer) } }
        for (ino, w) in idle {
            do {
                try await syncWriter(w, ino: ino)
                logger.info("inode \(ino): staged writes completed")
            } catch { continue }
            await dropIfIdle(ino: ino, w)
        }
    }

    /// A purged node's writer goes away with its staged bytes (and an uncommitted new file).
    /// (Its pending metadata goes with the node, in the engine's purge.)
    func dropWriter(ofPurged id: Int64) async {
        let ino = UInt64(id)
        guard let w = writers.withLock({ t -> FileWriter? in
            guard let e = t[ino], e.refs <= 0 else { return nil }
            t[ino] = nil
            return e.writer
        }) else { return }
        let s = await w.state
        if let fid = s.fileID, fid != s.committedID { try? await store.delete(fid) }
        try? await naming.removeStaged(ino: id)
        w.discard()
    }
}
