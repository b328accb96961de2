import FuseTypes
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// open / create / read / write / flush / fsync / release. Writes go through the inode's
/// `FileWriter` (write-back, see there); reads of a file with a writer go through it too
/// (read your writes), others through the handle's prefetcher.
extension FDFSFileSystem {
    static func wantsWrite(_ flags: Int32) -> Bool { flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0 }

    /// `writer`: the inode's writer, retained for this handle (write handles only; read-only
    /// handles find a writer through `writer(of:)` at each read).
    /// `unchanged`: false when the file's data changed since this mount last saw it (another
    /// mount of a shared tree wrote it): the kernel drops its page cache of the file.
    func makeHandle(ino: UInt64, fileID: String?, size: Int64, writer: FileWriter?, unchanged: Bool = true) -> Opened {
        let pf = fileID.map {
            Prefetcher(fileID: $0, size: size, store: store, hint: store.sourceStorage(of: $0), budget: budget, config: options.readAhead,
                       logger: logger, metrics: metrics)
        }
        let h = Handle(ino: ino, fileID: fileID, size: size, prefetcher: writer == nil ? pf : nil, writable: writer != nil, writer: writer)
        // A reader opened while another handle writes reads through the writer; once that is
        // done its prefetcher's size and bytes may be old: read what is recorded then.
        if writer == nil, self.writer(of: ino) != nil { h.stale.store(true, ordering: .relaxed) }
        let fh = handles.withLock { $0.insert(h) }
        inodes.withLock { $0.opened(ino) }
        // keep_cache: FastDFS files never change under a normal id, so the page cache stays valid
        // (writes through this mount go through the kernel's cache too).
        let keep = unchanged && writer == nil && (fileID.map { (try? store.decode($0))?.kind == .normal } ?? false)
        return Opened(fh: fh, directIO: false, keepCache: keep)
    }

    public func open(ino: UInt64, flags: Int32, ctx: RequestContext) async throws(FSError) -> Opened {
        let write = Self.wantsWrite(flags)
        if InodeTable.isByID(ino) {
            let path = try byIDPath(ino)
            guard path.split(separator: "/").count == 5 else { throw FSError(EISDIR, "\(path) is a directory") }
            let (size, _) = try await sizeAndTime(of: path)
            guard write else { return makeHandle(ino: ino, fileID: path, size: size, writer: nil) }
            try requireWritable()
            let kind = try store.decode(path).kind
            guard kind == .appender else {
                logger.warning("refused to write \(path): a \(kind.rawValue) FastDFS file is immutable; write it through a name in the named tree (copy on write)")
                throw FSError(EPERM, "\(path) is an immutable \(kind.rawValue) FastDFS file")
            }
            fileInfoCache.remove(path)
            let info = try await fileInfo(path)
            let w = try retainWriter(ino: ino, fileID: path, size: info.size, named: false)
            if flags & O_TRUNC != 0 { try await resizeOpen(w, ino: ino, to: 0) }
            return makeHandle(ino: ino, fileID: path, size: info.size, writer: w)
        }
        if let n = naming.cachedNode(Int64(ino)), n.isDirectory { throw FSError(EISDIR, "is a directory") }
        if write { try requireWritable() }
        // Close-to-open: the node as committed now (a shared engine reads it afresh and counts the
        // handle, so a delete elsewhere waits for its close), and whether its data is what this
        // mount saw before (the kernel keeps its page cache only then). The size the name records
        // (every change through a mount is committed there): an open costs no FastDFS request.
        // Changes made to the FastDFS file behind the name by other clients show through its
        // by-id path, not through the name.
        guard let (n, unchanged, elsewhere) = try await naming.opened(Int64(ino), forWriting: write) else { throw FSError.noent("inode \(ino) is gone") }
        if n.isDirectory {
            _ = try? await naming.closed(n.id)
            throw FSError(EISDIR, "is a directory")
        }
        let size = n.size
        guard write else {
            let o = makeHandle(ino: ino, fileID: n.fileID, size: size, writer: nil, unchanged: unchanged)
            if size <= Prefetcher.primeLimit, let pf = handles.withLock({ $0.get(o.fh) })?.prefetcher { await pf.prime() }
            return o
        }
        let w: FileWriter
        // Another mount has the file open: this one writes a copy of its own (an appender is not
        // changed in place under the other's feet); the last close then wins whole.
        do { w = try retainWriter(ino: ino, fileID: n.fileID, size: size, named: true, copyOnWrite: elsewhere) } catch {
            _ = try? await naming.closed(n.id)
            throw error
        }
        if flags & O_TRUNC != 0 {
            // libfuse enables FUSE_CAP_ATOMIC_O_TRUNC: the truncation arrives with open.
            do { try await resizeOpen(w, ino: ino, to: 0) } catch {
                await releaseWriter(ino: ino)
                _ = try? await naming.closed(n.id)
                throw error
            }
        }
        return makeHandle(ino: ino, fileID: n.fileID, size: size, writer: w)
    }

    /// O_TRUNC: staged, made durable at close like the writes that follow.
    func resizeOpen(_ w: FileWriter, ino: UInt64, to size: Int64) async throws(FSError) {
        try await w.resize(to: size)
        invalidateReaders(ino)
    }

    public func create(parent: UInt64, name: FileName, mode: UInt32, flags: Int32, ctx: RequestContext) async throws(FSError) -> (Entry, Opened) {
        if InodeTable.isByID(parent) {
            guard let s = name.string else { throw FSError(EINVAL, "\(name) is not a slave file name") }
            return try await byIDCreateSlave(parent: parent, name: s)
        }
        try await checkCreatable(parent: parent, name: name)
        let n: Node
        do {
            n = try await naming.createOpened(parent: Int64(parent), name: name, mode: UInt32(S_IFREG) | (mode & 0o7777), uid: ctx.uid, gid: ctx.gid)
        } catch where error.errno == EEXIST && flags & O_EXCL == 0 {
            // Another mount of a shared tree created the name since the kernel looked it up:
            // open(O_CREAT) without O_EXCL opens the file that is there (with O_TRUNC if asked).
            guard let existing = try await naming.lookup(parent: Int64(parent), name: name) else { throw error }
            if existing.isDirectory { throw FSError(EISDIR, "\(name) is a directory") }
            let opened = try await open(ino: UInt64(existing.id), flags: flags, ctx: ctx)
            return (counted(await liveAttr(existing)), opened)
        }
        let e = counted(n.attr)
        let w: FileWriter
        do { w = try retainWriter(ino: UInt64(n.id), fileID: nil, size: 0, named: true) } catch {
            _ = try? await naming.closed(n.id)
            throw error
        }
        await w.markCreated(name: name.string)
        return (e, makeHandle(ino: UInt64(n.id), fileID: nil, size: 0, writer: w))
    }

    public func read(ino: UInt64, fh: UInt64, offset: Int64, size: Int) async throws(FSError) -> [UInt8] {
        let data = try await readBytes(ino: ino, fh: fh, offset: offset, size: size)
        metrics.bytesRead.increment(by: Int64(data.count))
        return data
    }

    private func readBytes(ino: UInt64, fh: UInt64, offset: Int64, size: Int) async throws(FSError) -> [UInt8] {
        guard let h = handles.withLock({ $0.get(fh) }) else { throw FSError(EBADF, "unknown file handle \(fh)") }
        if let w = h.writer ?? writer(of: ino) { return try await w.read(offset: offset, length: size) }
        if h.stale.load(ordering: .relaxed) {
            // Written since this handle opened: its read-ahead is gone, read what is recorded now.
            guard let n = try await naming.node(Int64(ino)), let fid = n.fileID, offset < n.size else { return [] }
            return try await store.download(fid, offset: offset, length: min(Int64(size), n.size - offset), storage: store.sourceStorage(of: fid))
        }
        guard let pf = h.prefetcher else { return [] }   // a named file with no data yet
        return try await pf.read(offset: offset, length: size)
    }

    public func write(ino: UInt64, fh: UInt64, offset: Int64, data: [UInt8]) async throws(FSError) -> Int {
        guard let h = handles.withLock({ $0.get(fh) }) else { throw FSError(EBADF, "unknown file handle \(fh)") }
        guard let w = h.writer else { throw FSError(EBADF, "file handle \(fh) is not open for writing") }
        try requireWritable()
        try Self.checkFileSize(offset + Int64(data.count))
        let n = try await w.write(offset: offset, data: data)
        metrics.bytesWritten.increment(by: Int64(n))
        invalidateReaders(ino)
        return n
    }

    /// The largest file fdfsfs writes: 16 TiB, what ext4 (the usual storage filesystem) can hold.
    /// Larger sizes are refused at once with EFBIG, before anything is staged or sent.
    public static let maxFileSize: Int64 = 1 << 44

    static func checkFileSize(_ size: Int64) throws(FSError) {
        guard size <= maxFileSize else {
            throw FSError(EFBIG, "\(size) bytes is more than the largest file fdfsfs writes (\(maxFileSize) bytes, 16 TiB)")
        }
    }

    /// Read-only handles of `ino` drop their read-ahead: the file changed.
    func invalidateReaders(_ ino: UInt64) {
        let pfs = handles.withLock { $0.all(ino: ino) }
        for h in pfs where h.prefetcher != nil && !h.stale.load(ordering: .relaxed) {
            h.stale.store(true, ordering: .relaxed)
            let pf = h.prefetcher
            Task { await pf?.dropAll() }
        }
    }

    /// close(2) and fsync(2): the durability points.
    public func flush(ino: UInt64, fh: UInt64) async throws(FSError) {
        guard let h = handles.withLock({ $0.get(fh) }), let w = h.writer else { return }
        try await syncWriter(w, ino: ino)
    }

    /// Like close, and the naming database reaches the disk: the name's record survives a power
    /// loss too (close's survives a killed process; see NamingStore).
    public func fsync(ino: UInt64, fh: UInt64, dataOnly: Bool) async throws(FSError) {
        try await flush(ino: ino, fh: fh)
        try await naming.syncToDisk()
    }

    public func release(ino: UInt64, fh: UInt64) async throws(FSError) {
        guard let h = handles.withLock({ $0.remove(fh) }) else { return }
        await h.prefetcher?.dropAll()
        if h.writer != nil { await releaseWriter(ino: h.ino) }
        if !InodeTable.isByID(h.ino) {
            // A shared engine: this mount's handle count; the last close of a node unlinked
            // elsewhere deletes it.
            do throws(FSError) {
                if let (row, fid) = try await naming.closed(Int64(h.ino)) { await deleteRemote(row: row, fileID: fid) }
            } catch {
                logger.warning("close of inode \(h.ino): \(error) (the shared tree's session cleanup will finish it)")
            }
        }
        let ev = inodes.withLock { $0.closed(h.ino) }
        if case .purge(let id) = ev { await purge(Int64(id)) }
    }

    var openHandleCount: Int { handles.withLock { $0.count } }
}
