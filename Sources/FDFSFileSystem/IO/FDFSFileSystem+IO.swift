import FuseTypes
#if canImport(Glibc)
import Glibc
#endif

/// open / create / read / release.
extension FDFSFileSystem {
    static func wantsWrite(_ flags: Int32) -> Bool { flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0 }

    func makeHandle(ino: UInt64, fileID: String?, size: Int64, writable: Bool) -> Opened {
        let pf = fileID.map {
            Prefetcher(fileID: $0, size: size, store: store, hint: store.sourceStorage(of: $0), budget: budget, config: options.readAhead)
        }
        let h = Handle(ino: ino, fileID: fileID, size: size, prefetcher: pf, writable: writable)
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
        guard let n = try await naming.node(Int64(ino)) else { throw FSError.noent("inode \(ino) is gone") }
        if n.isDirectory { throw FSError(EISDIR, "is a directory") }
        if write { try requireWritable() }
        var size = n.size
        if let fid = n.fileID, let d = try? store.decode(fid), d.kind == .appender || d.kind == .slave {
            // Appender files may have grown elsewhere: ask once per open.
            fileInfoCache.remove(fid)
            if let info = try? await fileInfo(fid) { size = info.size }
        }
        return makeHandle(ino: ino, fileID: n.fileID, size: size, writable: write)
    }

    public func create(parent: UInt64, name: String, mode: UInt32, flags: Int32, ctx: RequestContext) async throws(FSError) -> (Entry, Opened) {
        try await checkCreatable(parent: parent, name: name)
        let n = try await naming.create(parent: Int64(parent), name: name, mode: UInt32(S_IFREG) | (mode & 0o7777), uid: ctx.uid, gid: ctx.gid)
        let e = counted(n.attr)
        return (e, makeHandle(ino: UInt64(n.id), fileID: nil, size: 0, writable: true))
    }

    public func read(ino: UInt64, fh: UInt64, offset: Int64, size: Int) async throws(FSError) -> [UInt8] {
        guard let h = handles.withLock({ $0.get(fh) }) else { throw FSError(EBADF, "unknown file handle \(fh)") }
        guard let pf = h.prefetcher else { return [] }   // a named file with no data yet
        return try await pf.read(offset: offset, length: size)
    }

    public func write(ino: UInt64, fh: UInt64, offset: Int64, data: [UInt8]) async throws(FSError) -> Int {
        Log.warning("write to inode \(ino) refused: writing file data through the mount is not supported yet (issue 5); use `fdfs upload` and `setfattr -n user.fdfs.file_id`")
        throw FSError(ENOTSUP, "writes are not supported yet", quiet: true)
    }

    public func release(ino: UInt64, fh: UInt64) async throws(FSError) {
        guard let h = handles.withLock({ $0.remove(fh) }) else { return }
        await h.prefetcher?.dropAll()
        let ev = inodes.withLock { $0.closed(h.ino) }
        if case .purge(let id) = ev { await purge(Int64(id)) }
    }

    var openHandleCount: Int { handles.withLock { $0.count } }
}
