import FuseTypes
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Namespace operations of the named tree (metadata only, one transaction each).
extension FDFSFileSystem {
    func requireWritable() throws(FSError) {
        if options.readOnly { throw FSError(EROFS, "mounted read-only") }
    }

    /// Rejects creating `name` in `parent` where it would shadow a group or land in the by-id view.
    func checkCreatable(parent: UInt64, name: FileName) async throws(FSError) {
        try requireWritable()
        try checkName(name)
        if InodeTable.isByID(parent) { throw FSError(EPERM, "the by-id view is managed by FastDFS; create files in the named tree") }
        if try await isGroup(name, in: parent) { throw FSError(EEXIST, "\(name) is a FastDFS group name (reserved at the root)") }
    }

    public func readdir(ino: UInt64, fh: UInt64, offset: Int64, plus: Bool) async throws(FSError) -> [DirEntry] {
        if InodeTable.isByID(ino) { return try await byIDReaddir(ino: ino, offset: offset, plus: plus) }
        guard let dir = try await naming.node(Int64(ino)) else { throw FSError.noent("directory \(ino) is gone") }
        guard dir.isDirectory else { throw FSError(ENOTDIR, "inode \(ino) is not a directory") }
        var out: [DirEntry] = []
        if offset < 1 { out.append(DirEntry(name: ".", ino: ino, mode: UInt32(S_IFDIR), nextOffset: 1)) }
        if offset < 2 {
            let p = ino == InodeTable.root ? InodeTable.root : UInt64(try await naming.parentOf(directory: Int64(ino)))
            out.append(DirEntry(name: "..", ino: p, mode: UInt32(S_IFDIR), nextOffset: 2))
        }
        if ino == InodeTable.root && offset < Self.namedOffsetBase {
            let gs = try await groups()
            let start = max(0, Int(offset) - 2)
            if start < gs.count {
                for (i, g) in gs[start...].enumerated() {
                    let gino = plus ? inodes.withLock { $0.byIDIno(for: g.name) }
                        : inodes.withLock { $0.existingByIDIno(for: g.name) } ?? Self.syntheticIno(g.name)
                    out.append(DirEntry(name: FileName(g.name), ino: gino, mode: UInt32(S_IFDIR), nextOffset: Int64(start + i + 3),
                                        entry: plus ? entry(byIDDirAttr(gino)) : nil))
                }
            }
        }
        let after = max(0, offset - Self.namedOffsetBase)
        // A named entry older than a group of the same name is shadowed by the group.
        let shadowed = ino == InodeTable.root ? Set(try await groups().map { FileName($0.name) }) : []
        for (eid, name, n) in try await naming.list(parent: Int64(ino), afterEntry: after, limit: 1024) where !shadowed.contains(name) {
            out.append(DirEntry(name: name, ino: UInt64(n.id), mode: n.mode & UInt32(S_IFMT), nextOffset: Self.namedOffsetBase + eid,
                                entry: plus ? entry(await liveAttr(n)) : nil))
        }
        return out
    }

    public func opendir(ino: UInt64, flags: Int32) async throws(FSError) -> Opened {
        let a = try await attr(of: ino)
        guard a.isDirectory else { throw FSError(ENOTDIR, "inode \(ino) is not a directory") }
        return Opened(fh: 0)
    }

    public func mkdir(parent: UInt64, name: FileName, mode: UInt32, ctx: RequestContext) async throws(FSError) -> Entry {
        try await checkCreatable(parent: parent, name: name)
        let n = try await naming.create(parent: Int64(parent), name: name, mode: UInt32(S_IFDIR) | (mode & 0o7777), uid: ctx.uid, gid: ctx.gid)
        return counted(n.attr)
    }

    /// Regular files, and special files (FIFOs, sockets, character and block devices: `mkfifo`,
    /// `bind()` of a unix socket, `mknod`) as metadata-only nodes with their type, mode and rdev.
    /// The kernel serves their data (a pipe, a socket, a device driver) once lookup and getattr
    /// give it the type and rdev; nothing reaches FastDFS. EPERM in the by-id view.
    public func mknod(parent: UInt64, name: FileName, mode: UInt32, rdev: UInt64, ctx: RequestContext) async throws(FSError) -> Entry {
        let type = mode & UInt32(S_IFMT)
        let kind: UInt32
        switch type {
        case 0, UInt32(S_IFREG): kind = UInt32(S_IFREG)
        case UInt32(S_IFIFO), UInt32(S_IFSOCK), UInt32(S_IFCHR), UInt32(S_IFBLK): kind = type
        default: throw FSError(EINVAL, "mknod of file type \(String(type, radix: 8))")   // mknod(2): EINVAL
        }
        try await checkCreatable(parent: parent, name: name)
        let device = kind == UInt32(S_IFCHR) || kind == UInt32(S_IFBLK)
        let n = try await naming.create(parent: Int64(parent), name: name, mode: kind | (mode & 0o7777), uid: ctx.uid, gid: ctx.gid,
                                        rdev: device ? rdev : 0)
        return counted(n.attr)
    }

    public func symlink(target: FileName, parent: UInt64, name: FileName, ctx: RequestContext) async throws(FSError) -> Entry {
        try await checkCreatable(parent: parent, name: name)
        if target.count > 4095 { throw FSError(ENAMETOOLONG, "symlink target too long") }
        let n = try await naming.create(parent: Int64(parent), name: name, mode: UInt32(S_IFLNK) | 0o777, uid: ctx.uid, gid: ctx.gid, target: target)
        return counted(n.attr)
    }

    public func readlink(ino: UInt64) async throws(FSError) -> FileName {
        guard !InodeTable.isByID(ino), let n = try await naming.node(Int64(ino)) else { throw FSError.noent("inode \(ino) is gone") }
        guard n.isSymlink, let t = n.targetName else { throw FSError(EINVAL, "not a symlink") }
        return t
    }

    public func link(ino: UInt64, newParent: UInt64, newName: FileName, ctx: RequestContext) async throws(FSError) -> Entry {
        try await checkCreatable(parent: newParent, name: newName)
        if InodeTable.isByID(ino) { throw FSError(EXDEV, "cannot hard-link from the by-id view; use setfattr -n user.fdfs.file_id to adopt a file") }
        let n = try await naming.link(node: Int64(ino), parent: Int64(newParent), name: newName)
        return counted(await liveAttr(n))
    }

    public func unlink(parent: UInt64, name: FileName, ctx: RequestContext) async throws(FSError) {
        try requireWritable()
        if InodeTable.isByID(parent) {
            guard let s = name.string else { throw FSError.noent("\(name): not a FastDFS path") }
            return try await byIDUnlink(parent: parent, name: s)
        }
        if try await isGroup(name, in: parent) { throw FSError(EISDIR, "\(name) is a group directory") }
        let n = try await naming.remove(parent: Int64(parent), name: name, directory: false)
        await unlinked(n)
    }

    public func rmdir(parent: UInt64, name: FileName, ctx: RequestContext) async throws(FSError) {
        try requireWritable()
        if InodeTable.isByID(parent) { throw FSError(EPERM, "the by-id view's directories cannot be removed") }
        if try await isGroup(name, in: parent) { throw FSError(EPERM, "\(name) is a FastDFS group") }
        let n = try await naming.remove(parent: Int64(parent), name: name, directory: true)
        await unlinked(n)
    }

    public func rename(parent: UInt64, name: FileName, newParent: UInt64, newName: FileName, flags: UInt32, ctx: RequestContext) async throws(FSError) {
        try requireWritable()
        try checkName(newName)
        let a = InodeTable.isByID(parent), b = InodeTable.isByID(newParent)
        if a != b { throw FSError(EXDEV, "cannot rename between the by-id view and the named tree") }
        if a { throw FSError(EPERM, "by-id names are FastDFS file ids and cannot be renamed") }
        if try await isGroup(name, in: parent) { throw FSError(EPERM, "\(name) is a FastDFS group") }
        if try await isGroup(newName, in: newParent) { throw FSError(EPERM, "\(newName) is a FastDFS group name (reserved)") }
        // A file being written takes its upload extension from its name: after a rename, from the new one.
        let moved = try? await naming.lookup(parent: Int64(parent), name: name)
        let dead = try await naming.rename(parent: Int64(parent), name: name, newParent: Int64(newParent), newName: newName, flags: flags)
        if let moved, let w = writer(of: UInt64(moved.id)) { await w.forgetExtHint() }
        for n in dead { await unlinked(n) }
    }

    public func setattr(ino: UInt64, changes c: SetAttr, ctx: RequestContext) async throws(FSError) -> (Attr, Double) {
        if InodeTable.isByID(ino) {
            if c.mode == nil && c.uid == nil && c.gid == nil && c.size == nil && c.mtime == nil && c.atime != nil {
                return (try await byIDAttr(ino), options.attrTimeout)   // atime updates are ignored
            }
            if let size = c.size, c.mode == nil, c.uid == nil, c.gid == nil {
                // truncate of an appender file by id: in place, like its writes (times ignored).
                try requireWritable()
                let path = try byIDPath(ino)
                guard path.split(separator: "/").count == 5, (try? store.decode(path))?.kind == .appender else {
                    logger.warning("refused to truncate \(path): only appender files change in place; write it through a name in the named tree")
                    throw FSError(EPERM, "\(path) is an immutable FastDFS file")
                }
                fileInfoCache.remove(path)
                try await resizeNow(ino: ino, fileID: path, size: try await fileInfo(path).size, named: false, to: size)
                fileInfoCache.remove(path)
                return (try await byIDAttr(ino), options.attrTimeout)
            }
            throw FSError(EROFS, "by-id files are read-only (attributes come from FastDFS)")
        }
        try requireWritable()
        guard let n = try await naming.node(Int64(ino)) else { throw FSError.noent("inode \(ino) is gone") }
        var newSize: Int64? = nil
        let currentSize = try await attr(of: ino).size   // includes unsaved writes
        if let size = c.size, size != currentSize || (size == 0 && n.fileID != nil) {
            guard n.isRegular else { throw FSError(EISDIR, "cannot truncate a non-regular file") }
            try await resize(n, to: size)
            newSize = size
        }
        let updated = try await naming.setAttributes(Int64(ino), mode: c.mode, uid: c.uid, gid: c.gid, size: newSize, atime: c.atime, mtime: c.mtime)
        // An open writer's close would stamp its own time over this one (`cp -p`: times set
        // before the close).
        if let m = c.mtime, let w = writer(of: ino) { w.timesSet(mtime: m) }
        return (await liveAttr(updated), options.attrTimeout)
    }

    /// Size changes of a named file, through the inode's writer (see `FileWriter`): staged,
    /// then made durable at once (truncate(2) has no close to report errors at).
    func resize(_ n: Node, to size: Int64) async throws(FSError) {
        try await resizeNow(ino: UInt64(n.id), fileID: n.fileID, size: n.size, named: true, to: size)
    }

    /// Staged through the inode's writer, then synced before returning.
    func resizeNow(ino: UInt64, fileID: String?, size current: Int64, named: Bool, to size: Int64) async throws(FSError) {
        try Self.checkFileSize(size)
        let w = try retainWriter(ino: ino, fileID: fileID, size: current, named: named)
        do {
            try await w.resize(to: size)
            invalidateReaders(ino)
            try await syncWriter(w, ino: ino)
        } catch {
            await releaseWriter(ino: ino)
            throw error
        }
        await releaseWriter(ino: ino)
    }
}
