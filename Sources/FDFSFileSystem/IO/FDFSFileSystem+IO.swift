import FuseTypes
#if canImport(Glibc)
import Glibc
#endif

/// open / create / read / release.
extension FDFSFileSystem {
    static func wantsWrite(_ flags: Int32) -> Bool { flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0 }

    /// The inode's writer (created on first use), with one more reference.
    func retainWriter(ino: UInt64, fileID: String?, size: Int64) -> FileWriter {
        writers.withLock { w in
            if let e = w[ino] { w[ino] = (e.writer, e.refs + 1); return e.writer }
            let nw = FileWriter(ino: Int64(ino), fileID: fileID, size: size, store: store, naming: naming, group: options.group)
            w[ino] = (nw, 1)
            return nw
        }
    }

    func releaseWriter(ino: UInt64) {
        writers.withLock { w in
            guard let e = w[ino] else { return }
            w[ino] = e.refs > 1 ? (e.writer, e.refs - 1) : nil
        }
    }

    func makeHandle(ino: UInt64, fileID: String?, size: Int64, writable: Bool, named: Bool = false) -> Opened {
        let writer = writable && named ? retainWriter(ino: ino, fileID: fileID, size: size) : nil
        let pf = fileID.map {
            Prefetcher(fileID: $0, size: size, store: store, hint: store.sourceStorage(of: $0), budget: budget, config: options.readAhead)
        }
        let h = Handle(ino: ino, fileID: fileID, size: size, prefetcher: writer == nil ? pf : nil, writable: writable, writer: writer)
        let fh = handles.withLock { $0.insert(h) }
        inodes.withLock { $0.opened(ino) }
        // keep_cache: FastDFS files never change under a normal id, so the page cache stays valid.
        return Opened(fh: fh, directIO: false, keepCache: fileID.map { (try? store.decode($0))?.kind == .normal } ?? false)
    }

    public func open(ino: UInt64, flags: Int32, ctx: RequestContext) async throws(FSError) -> Opened {
        let write = Self.wantsWrite(flags)
        if InodeTable.isByID(ino) {
            if write { throw FSError(EROFS, "by-id files are read-only") }
            let path = try byIDPath(ino)
            guard path.split(separator: "/").count == 5 else { throw FSError(EISDIR, "\(path) is a directory") }
            let (size, _) = try await sizeAndTime(of: path)
            return makeHandle(ino: ino, fileID: path, size: size, writable: false)
        }
        guard var n = try await naming.node(Int64(ino)) else { throw FSError.noent("inode \(ino) is gone") }
        if n.isDirectory { throw FSError(EISDIR, "is a directory") }
        if write { try requireWritable() }
        if write && flags & O_TRUNC != 0 && (n.size > 0 || n.fileID != nil) {
            // libfuse enables FUSE_CAP_ATOMIC_O_TRUNC: the truncation arrives with open.
            try await resize(n, to: 0)
            n = try await naming.setAttributes(n.id, mode: nil, uid: nil, gid: nil, size: 0, atime: nil, mtime: .now)
        }
        var size = n.size
        if let fid = n.fileID, let d = try? store.decode(fid), d.kind == .appender || d.kind == .slave {
            // Appender files may have grown elsewhere: ask once per open.
            fileInfoCache.remove(fid)
            if let info = try? await fileInfo(fid) { size = info.size }
        }
        return makeHandle(ino: ino, fileID: n.fileID, size: size, writable: write, named: true)
    }

    public func create(parent: UInt64, name: String, mode: UInt32, flags: Int32, ctx: RequestContext) async throws(FSError) -> (Entry, Opened) {
        try await checkCreatable(parent: parent, name: name)
        let n = try await naming.create(parent: Int64(parent), name: name, mode: UInt32(S_IFREG) | (mode & 0o7777), uid: ctx.uid, gid: ctx.gid)
        let e = counted(n.attr)
        return (e, makeHandle(ino: UInt64(n.id), fileID: nil, size: 0, writable: true, named: true))
    }

    public func read(ino: UInt64, fh: UInt64, offset: Int64, size: Int) async throws(FSError) -> [UInt8] {
        guard let h = handles.withLock({ $0.get(fh) }) else { throw FSError(EBADF, "unknown file handle \(fh)") }
        if let w = h.writer {
            // A file being written: read what is there now, from the storage that has it.
            let (fid, len) = (await w.fileID, await w.size)
            guard let fid, offset < len else { return [] }
            let n = min(Int64(size), len - offset)
            return try await store.download(fid, offset: offset, length: n, storage: store.sourceStorage(of: fid))
        }
        guard let pf = h.prefetcher else { return [] }   // a named file with no data yet
        return try await pf.read(offset: offset, length: size)
    }

    public func write(ino: UInt64, fh: UInt64, offset: Int64, data: [UInt8]) async throws(FSError) -> Int {
        guard let h = handles.withLock({ $0.get(fh) }) else { throw FSError(EBADF, "unknown file handle \(fh)") }
        guard let w = h.writer else { throw FSError(EBADF, "file handle \(fh) is not open for writing") }
        try requireWritable()
        return try await w.write(offset: offset, data: data)
    }

    public func flush(ino: UInt64, fh: UInt64) async throws(FSError) {
        guard let h = handles.withLock({ $0.get(fh) }), let w = h.writer else { return }
        try await w.persist()
    }

    public func fsync(ino: UInt64, fh: UInt64, dataOnly: Bool) async throws(FSError) {
        try await flush(ino: ino, fh: fh)
    }

    public func release(ino: UInt64, fh: UInt64) async throws(FSError) {
        guard let h = handles.withLock({ $0.remove(fh) }) else { return }
        await h.prefetcher?.dropAll()
        if let w = h.writer {
            do { try await w.persist() } catch { Log.error("inode \(h.ino): cannot record the new size: \(error)") }
            releaseWriter(ino: h.ino)
        }
        let ev = inodes.withLock { $0.closed(h.ino) }
        if case .purge(let id) = ev { await purge(Int64(id)) }
    }

    var openHandleCount: Int { handles.withLock { $0.count } }
}
