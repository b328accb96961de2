import FuseTypes
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The by-id view: `/GROUP` (depth 1), `/GROUP/Mxx` (2), `/GROUP/Mxx/XX` (3), `/GROUP/Mxx/XX/YY` (4)
/// are directories; `/GROUP/Mxx/XX/YY/NAME` (5) is the file with id `GROUP/Mxx/XX/YY/NAME`.
extension FDFSFileSystem {
    /// The d_ino of a name not looked up yet: the number a lookup will give it.
    static func syntheticIno(_ path: String) -> UInt64 { InodeTable.stableByIDIno(for: path) }

    static func hex2(_ v: Int) -> String { let s = String(v, radix: 16, uppercase: true); return s.count == 1 ? "0" + s : s }

    static func parseHex2(_ s: String) -> Int? {
        guard s.utf8.count == 2, s.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 70) }) else { return nil }
        return Int(s, radix: 16)
    }

    func byIDPath(_ ino: UInt64) throws(FSError) -> String {
        guard let p = inodes.withLock({ $0.byIDPath(ino) }) else { throw FSError(ESTALE, "by-id inode \(ino) was forgotten") }
        return p
    }

    func byIDDirAttr(_ ino: UInt64) -> Attr {
        Attr(ino: ino, mode: UInt32(S_IFDIR) | (0o755 & ~options.umask), nlink: 2, uid: options.uid, gid: options.gid,
             size: 4096, atime: mountTime, mtime: mountTime, ctime: mountTime)
    }

    func byIDFileAttr(_ ino: UInt64, size: Int64, mtime: Int64) -> Attr {
        let t = Timespec(sec: mtime)
        return Attr(ino: ino, mode: UInt32(S_IFREG) | (0o444 & ~options.umask), nlink: 1, uid: options.uid, gid: options.gid,
                    size: size, atime: t, mtime: t, ctime: t)
    }

    /// Size and mtime of a file id: decoded locally for normal files, QUERY_FILE_INFO (no CRC)
    /// for appender and slave files (cached).
    func sizeAndTime(of fileID: String) async throws(FSError) -> (Int64, Int64) {
        let d = try store.decode(fileID)
        if let size = d.size { return (size, d.createTime) }
        let info = try await fileInfo(fileID)
        return (info.size, info.modifyTime)
    }

    func fileInfo(_ fileID: String) async throws(FSError) -> StoreFileInfo {
        if let i = fileInfoCache.get(fileID) { return i }
        if negativeCache.get(fileID) != nil { throw FSError.noent("\(fileID) does not exist (cached)") }
        do {
            let i = try await store.fileInfo(fileID)
            fileInfoCache.set(fileID, i)
            return i
        } catch {
            if error.errno == ENOENT || error.errno == EINVAL { negativeCache.set(fileID, true); throw FSError.noent("\(fileID): \(error.message)") }
            throw error
        }
    }

    func byIDAttr(_ ino: UInt64) async throws(FSError) -> Attr {
        let path = try byIDPath(ino)
        let depth = path.split(separator: "/").count
        if depth < 5 { return byIDDirAttr(ino) }
        if let a = await pendingSlaveAttr(ino) { return a }
        var (size, mtime) = try await sizeAndTime(of: path)
        if let w = writer(of: ino) { size = await w.size }   // an appender being written in place
        return byIDFileAttr(ino, size: size, mtime: mtime)
    }

    /// Validates one step below a by-id directory. Returns the attributes of the child.
    func byIDLookup(parent: UInt64, name: String) async throws(FSError) -> Attr {
        let path = try byIDPath(parent)
        let parts = path.split(separator: "/").map(String.init)
        guard let g = try await group(named: parts[0]) else { throw FSError.noent("group \(parts[0]) is gone") }
        let child = path + "/" + name
        switch parts.count {
        case 1:
            guard name.utf8.count == 3, name.first == "M", let i = Self.parseHex2(String(name.dropFirst())), i < max(1, g.storePathCount) else {
                throw FSError.noent("\(child): not a store path")
            }
        case 2, 3:
            guard let i = Self.parseHex2(name), i < max(1, g.subdirCountPerPath) else { throw FSError.noent("\(child): not a data subdirectory") }
        case 4:
            // A slave created here and not uploaded yet (also one recovered at start, whose
            // writer is keyed by the path's stable number before any lookup).
            let pending = inodes.withLock { $0.existingByIDIno(for: child) } ?? InodeTable.stableByIDIno(for: child)
            if let a = await pendingSlaveAttr(pending) {
                if inodes.withLock({ $0.byIDIno(for: child) }) == pending { return a }
            }
            if negativeCache.get(child) != nil { throw FSError.noent("\(child) does not exist (cached)") }
            let decoded: DecodedFileID
            do { decoded = try store.decode(child) } catch {
                negativeCache.set(child, true)
                throw FSError.noent("malformed file id \(child)")
            }
            // Unknown names are confirmed with the server once (no CRC); normal files then take
            // size and time from the id itself.
            let info = try await fileInfo(child)
            let ino = inodes.withLock { $0.byIDIno(for: child) }
            if let size = decoded.size { return byIDFileAttr(ino, size: size, mtime: decoded.createTime) }
            return byIDFileAttr(ino, size: info.size, mtime: info.modifyTime)
        default:
            throw FSError(ENOTDIR, "\(path) is a file")
        }
        let ino = inodes.withLock { $0.byIDIno(for: child) }
        return byIDDirAttr(ino)
    }

    /// Names below a by-id directory: store paths, subdirectories, or the file ids known locally.
    func byIDChildren(_ path: String) async throws(FSError) -> [(name: String, isDir: Bool)] {
        let parts = path.split(separator: "/").map(String.init)
        guard let g = try await group(named: parts[0]) else { throw FSError.noent("group \(parts[0]) is gone") }
        switch parts.count {
        case 1: return (0..<max(1, g.storePathCount)).map { ("M" + Self.hex2($0), true) }
        case 2, 3: return (0..<max(1, g.subdirCountPerPath)).map { (Self.hex2($0), true) }
        case 4:
            let prefix = path + "/"
            var names = Set(try await naming.fileIDs(withPrefix: prefix).map { String($0.dropFirst(prefix.count)) })
            for k in fileInfoCache.keys(where: { $0.hasPrefix(prefix) }) { names.insert(String(k.dropFirst(prefix.count))) }
            return names.filter { !$0.contains("/") }.sorted().map { ($0, false) }
        default: throw FSError(ENOTDIR, "\(path) is a file")
        }
    }

    func byIDReaddir(ino: UInt64, offset: Int64, plus: Bool) async throws(FSError) -> [DirEntry] {
        let path = try byIDPath(ino)
        var out: [DirEntry] = []
        if offset < 1 { out.append(DirEntry(name: ".", ino: ino, mode: UInt32(S_IFDIR), nextOffset: 1)) }
        if offset < 2 {
            let parentPath = path.split(separator: "/").dropLast().joined(separator: "/")
            let pino = parentPath.isEmpty ? InodeTable.root
                : inodes.withLock { $0.existingByIDIno(for: parentPath) } ?? Self.syntheticIno(parentPath)
            out.append(DirEntry(name: "..", ino: pino, mode: UInt32(S_IFDIR), nextOffset: 2))
        }
        let children = try await byIDChildren(path)
        let start = max(0, Int(offset) - 2)
        if start >= children.count { return out }
        for (i, c) in children[start...].prefix(1024).enumerated() {
            let childPath = path + "/" + c.name
            // Only readdirplus hands the kernel an inode; plain readdir's d_ino is informational,
            // so it does not allocate (and pin) numbers for every listed name.
            let cino = plus ? inodes.withLock { $0.byIDIno(for: childPath) }
                : inodes.withLock { $0.existingByIDIno(for: childPath) } ?? Self.syntheticIno(childPath)
            var e: Entry? = nil
            if plus {
                if c.isDir { e = entry(byIDDirAttr(cino)) }
                else if let (size, mtime) = try? await sizeAndTime(of: childPath) { e = entry(byIDFileAttr(cino, size: size, mtime: mtime)) }
                else { continue }
            }
            out.append(DirEntry(name: FileName(c.name), ino: cino, mode: c.isDir ? UInt32(S_IFDIR) : UInt32(S_IFREG),
                                nextOffset: Int64(start + i + 3), entry: e))
        }
        return out
    }

    /// unlink in the by-id view deletes the FastDFS file.
    func byIDUnlink(parent: UInt64, name: String) async throws(FSError) {
        let path = try byIDPath(parent)
        guard path.split(separator: "/").count == 4 else { throw FSError(EPERM, "only files can be removed from the by-id view") }
        let fid = path + "/" + name
        _ = try store.decode(fid)
        try await store.delete(fid)
        fileInfoCache.remove(fid)
        metadataCache.remove(fid)
        negativeCache.set(fid, true)
        logger.info("deleted \(fid) (unlink in the by-id view)")
    }
}
