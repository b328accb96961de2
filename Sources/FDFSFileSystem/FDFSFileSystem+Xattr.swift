import FastDFSProtocol
import FuseTypes
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// FastDFS metadata as extended attributes.
///
/// - `user.KEY` ↔ metadata KEY of the file's FastDFS id.
/// - Limits (FastDFS keeps keys ≤ 64 and values ≤ 256 bytes and would silently truncate): a longer
///   key is refused with ERANGE (what setxattr(2) returns for an overlong name), a longer value
///   with E2BIG (setxattr(2): "size of name or value exceeds a filesystem-specific limit").
///   Bytes 0x01/0x02 (the wire separators) and non-UTF-8 values are refused with EINVAL.
/// - Virtual, read-only: user.fdfs.file_id, .group, .source, .crc32, .create_time, .appender.
///   Writing them is EPERM, except setting user.fdfs.file_id on an empty named file (no data, or
///   an empty appender file), which adopts an existing FastDFS file (verified with QUERY_FILE_INFO first; root or the
///   mounting user only, since the name then owns the file and its last unlink deletes it).
/// - An empty file created through the mount has no FastDFS file (creating one costs the naming
///   layer only); reading its user.fdfs.* attributes uploads an empty appender file first, so
///   every named regular file shows an id when asked.
/// - Other namespaces: ENOTSUP, but getxattr of security.* / system.* / trusted.* answers ENODATA
///   so ls and cp stay quiet.
extension FDFSFileSystem {
    static let maxKeyLength = 64
    static let maxValueLength = 256
    static let virtualNames = ["user.fdfs.file_id", "user.fdfs.group", "user.fdfs.source", "user.fdfs.crc32",
                               "user.fdfs.create_time", "user.fdfs.appender"]

    /// The file id behind an inode, nil for named nodes without data. Directories/symlinks throw.
    func fileIDForXattr(_ ino: UInt64) async throws(FSError) -> (fileID: String?, node: Node?) {
        if InodeTable.isByID(ino) {
            let path = try byIDPath(ino)
            guard path.split(separator: "/").count == 5 else { return (nil, nil) }
            return (path, nil)
        }
        guard let n = try await naming.node(Int64(ino)) else { throw FSError.noent("inode \(ino) is gone") }
        return (n.fileID, n)
    }

    func metadata(_ fid: String) async throws(FSError) -> [String: String] {
        if let m = metadataCache.get(fid) { return m }
        let m = try await store.metadata(of: fid)
        metadataCache.set(fid, m)
        return m
    }

    static func userKey(_ name: String) throws(FSError) -> String {
        let key = String(name.dropFirst("user.".count))
        if key.isEmpty { throw FSError(EINVAL, "empty xattr key") }
        if key.utf8.count > maxKeyLength { throw FSError(ERANGE, "FastDFS metadata keys are limited to \(maxKeyLength) bytes") }
        if key.utf8.contains(where: { $0 == 1 || $0 == 2 }) { throw FSError(EINVAL, "xattr key contains a FastDFS separator byte") }
        return key
    }

    func virtualValue(_ name: String, fileID fid: String) async throws(FSError) -> String? {
        guard let group = FileID(fid)?.group else { return nil }
        let d = try store.decode(fid)
        switch name {
        case "user.fdfs.file_id": return fid
        case "user.fdfs.group": return group
        case "user.fdfs.source": return d.source
        case "user.fdfs.crc32": return String(d.crc32, radix: 16)
        case "user.fdfs.create_time": return String(d.createTime)
        case "user.fdfs.appender": return d.kind == .appender ? "1" : "0"
        default: return nil
        }
    }

    public func getxattr(ino: UInt64, name: String) async throws(FSError) -> [UInt8] {
        guard name.hasPrefix("user.") else {
            if name.hasPrefix("security.") || name.hasPrefix("system.") || name.hasPrefix("trusted.") {
                throw FSError(ENODATA, "", quiet: true)
            }
            throw FSError(ENOTSUP, "only user.* attributes are supported", quiet: true)
        }
        var (fid, node) = try await fileIDForXattr(ino)
        // A new file being written has no recorded id yet; user.fdfs.* describe the appender file
        // its bytes are streamed to (user.* metadata stays pending until the close).
        if fid == nil, name.hasPrefix("user.fdfs."), let w = writer(of: ino) { fid = await w.fileID }
        // An empty file created through the mount has no FastDFS file until it is asked for one.
        if fid == nil, name.hasPrefix("user.fdfs."), let node, node.isRegular, node.size == 0 {
            fid = try await materializeEmptyFile(ino)
        }
        guard let fid else {
            guard let node, node.isRegular, !name.hasPrefix("user.fdfs.") else { throw FSError(ENODATA, "no FastDFS file behind this name", quiet: true) }
            guard let v = try await naming.pendingMetadata(node.id)[try Self.userKey(name)] else { throw FSError(ENODATA, "", quiet: true) }
            return Array(v.utf8)
        }
        if name.hasPrefix("user.fdfs.") {
            guard let v = try await virtualValue(name, fileID: fid) else { throw FSError(ENODATA, "", quiet: true) }
            return Array(v.utf8)
        }
        let key = try Self.userKey(name)
        guard let v = try await metadata(fid)[key] else { throw FSError(ENODATA, "no metadata \(key)", quiet: true) }
        return Array(v.utf8)
    }

    /// Uploads an empty appender file for an empty named file that has none (create no longer
    /// uploads one), records it, and returns its id; nil on a read-only mount or when the file
    /// got bytes meanwhile.
    func materializeEmptyFile(_ ino: UInt64) async throws(FSError) -> String? {
        guard (try? requireWritable()) != nil else { return nil }
        let w = try retainWriter(ino: ino, fileID: nil, size: 0, named: true)
        do {
            if await w.requireFile() { try await syncWriter(w, ino: ino) }
        } catch {
            await releaseWriter(ino: ino)
            throw error
        }
        let fid = await w.fileID
        await releaseWriter(ino: ino)
        return fid
    }

    public func listxattr(ino: UInt64) async throws(FSError) -> [String] {
        let (fid, node) = try await fileIDForXattr(ino)
        guard let fid else {
            guard let node, node.isRegular else { return [] }
            return try await naming.pendingMetadata(node.id).keys.sorted().map { "user." + $0 }
        }
        let m = try await metadata(fid)
        return Self.virtualNames + m.keys.sorted().map { "user." + $0 }
    }

    public func setxattr(ino: UInt64, name: String, value: [UInt8], flags: XattrFlags, ctx: RequestContext) async throws(FSError) {
        guard name.hasPrefix("user.") else { throw FSError(ENOTSUP, "only user.* attributes are supported (\(name))") }
        if name == "user.fdfs.file_id" {
            // Adoption makes a name own (and, on its last unlink, delete) any file of the cluster:
            // only root and the user who mounted may do it.
            guard ctx.uid == 0 || ctx.uid == UInt32(getuid()) else {
                throw FSError(EPERM, "only root or the mounting user can adopt FastDFS file ids")
            }
            return try await adopt(ino: ino, value: value, flags: flags)
        }
        if name.hasPrefix("user.fdfs.") { throw FSError(EPERM, "\(name) is read-only") }
        try requireWritable()
        let key = try Self.userKey(name)
        if value.count > Self.maxValueLength { throw FSError(E2BIG, "FastDFS metadata values are limited to \(Self.maxValueLength) bytes") }
        guard let v = String(validating: value, as: UTF8.self), !value.contains(1), !value.contains(2) else {
            throw FSError(EINVAL, "xattr value must be UTF-8 without bytes 0x01/0x02")
        }
        let (fid, node) = try await fileIDForXattr(ino)
        guard let fid else {
            // No data yet: kept in the naming database and sent with the upload.
            guard let node, node.isRegular else { throw FSError(ENOTSUP, "user.* attributes live on files") }
            let current = try await naming.pendingMetadata(node.id)
            if flags.contains(.create), current[key] != nil { throw FSError(EEXIST, "\(name) exists", quiet: true) }
            if flags.contains(.replace), current[key] == nil { throw FSError(ENODATA, "\(name) does not exist", quiet: true) }
            try await naming.setPendingMetadata(node.id, key: key, value: v)
            await writer(of: UInt64(node.id))?.notePendingMetadata()
            return
        }
        metadataCache.remove(fid)
        let current = try await metadata(fid)
        if flags.contains(.create), current[key] != nil { throw FSError(EEXIST, "\(name) exists", quiet: true) }
        if flags.contains(.replace), current[key] == nil { throw FSError(ENODATA, "\(name) does not exist", quiet: true) }
        try await store.setMetadata([key: v], for: fid, merge: true)
        metadataCache.remove(fid)
    }

    public func removexattr(ino: UInt64, name: String) async throws(FSError) {
        guard name.hasPrefix("user.") else { throw FSError(ENOTSUP, "only user.* attributes are supported (\(name))") }
        if name.hasPrefix("user.fdfs.") { throw FSError(EPERM, "\(name) is read-only") }
        try requireWritable()
        let key = try Self.userKey(name)
        let (fid, node) = try await fileIDForXattr(ino)
        guard let fid else {
            guard let node, try await naming.pendingMetadata(node.id)[key] != nil else { throw FSError(ENODATA, "", quiet: true) }
            try await naming.setPendingMetadata(node.id, key: key, value: nil)
            return
        }
        metadataCache.remove(fid)
        var current = try await metadata(fid)
        guard current.removeValue(forKey: key) != nil else { throw FSError(ENODATA, "\(name) does not exist", quiet: true) }
        try await store.setMetadata(current, for: fid, merge: false)
        metadataCache.remove(fid)
    }

    /// `setfattr -n user.fdfs.file_id -v GROUP/M00/... path`: binds an empty named file to an
    /// existing FastDFS file without copying.
    func adopt(ino: UInt64, value: [UInt8], flags: XattrFlags) async throws(FSError) {
        try requireWritable()
        if InodeTable.isByID(ino) { throw FSError(EPERM, "user.fdfs.file_id is read-only in the by-id view") }
        guard let n = try await naming.node(Int64(ino)) else { throw FSError.noent("inode \(ino) is gone") }
        guard n.isRegular else { throw FSError(EPERM, "only regular files can adopt a FastDFS file id") }
        guard let raw = String(validating: value, as: UTF8.self) else { throw FSError(EINVAL, "file id must be UTF-8") }
        let fid = raw.trimmingCharacters(in: " \n\t/")
        // `touch name` gives the name an empty appender file; adopting replaces that one.
        var emptyAppender: String? = nil
        if let old = n.fileID {
            if old == fid { return }
            guard n.size == 0, (try? store.decode(old))?.kind == .appender, writer(of: ino) == nil else {
                throw FSError(EPERM, "user.fdfs.file_id is read-only once set (this file is \(old))")
            }
            emptyAppender = old
        }
        if flags.contains(.replace) { throw FSError(ENODATA, "no file id to replace") }
        guard n.size == 0 else { throw FSError(EPERM, "only an empty file can adopt a FastDFS file id") }
        do { _ = try store.decode(fid) } catch { throw FSError(EINVAL, "\(fid) is not a valid FastDFS file id") }
        guard try await group(named: FileID(fid)?.group ?? "") != nil else { throw FSError(EINVAL, "\(fid): unknown group") }
        negativeCache.remove(fid)
        fileInfoCache.remove(fid)
        let info: StoreFileInfo
        do { info = try await fileInfo(fid) } catch {
            negativeCache.remove(fid)
            if error.errno == ENOENT { throw FSError(ENOENT, "\(fid) does not exist in the cluster") }
            throw error
        }
        let d = try store.decode(fid)
        if emptyAppender != nil, let (row, old) = try await naming.unbind(Int64(ino)) { await deleteRemote(row: row, fileID: old) }
        _ = try await naming.bind(Int64(ino), fileID: fid, size: d.size ?? info.size, mtime: info.modifyTime)
        let pending = try await naming.pendingMetadata(Int64(ino))
        if !pending.isEmpty {
            try await store.setMetadata(pending, for: fid, merge: true)
            try await naming.clearPendingMetadata(Int64(ino))
            metadataCache.remove(fid)
        }
        logger.info("inode \(ino) adopted \(fid)")
    }
}

private extension String {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
