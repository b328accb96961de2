import FuseTypes
#if canImport(Glibc)
import Glibc
#endif

/// Write-through for named files (the simple form of issue 5): a new file becomes a FastDFS
/// *appender* file on its first write (UPLOAD_APPENDER with that data), later writes at EOF are
/// APPEND, writes inside the file are MODIFY, gaps are filled with zeros, shrinking is TRUNCATE.
/// Each kernel write (up to 1 MiB) is one request; nothing is staged in memory. Files uploaded
/// as normal FastDFS files are immutable: writing them is ENOTSUP, but `> file` (O_TRUNC)
/// replaces the content with a new file. One writer per inode serializes its writes.
actor FileWriter {
    let ino: Int64
    let store: any FileStore
    let naming: NamingStore
    let group: String?
    private(set) var fileID: String?
    private(set) var size: Int64
    /// The size not yet written to the naming database.
    private(set) var dirty = false
    static let maxGap: Int64 = 64 << 20

    init(ino: Int64, fileID: String?, size: Int64, store: any FileStore, naming: NamingStore, group: String?) {
        self.ino = ino; self.fileID = fileID; self.size = size; self.store = store; self.naming = naming; self.group = group
    }

    static func ext(of name: String?) -> String {
        guard let name, let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "" }
        let e = name[name.index(after: dot)...]
        guard (1...6).contains(e.utf8.count), e.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) }) else { return "" }
        return String(e)
    }

    func write(offset: Int64, data: [UInt8]) async throws(FSError) -> Int {
        if data.isEmpty { return 0 }
        guard let fid = fileID else {
            if offset > Self.maxGap { throw FSError(EFBIG, "a new file cannot start \(offset) bytes in") }
            let body = offset > 0 ? [UInt8](repeating: 0, count: Int(offset)) + data : data
            let name = try await naming.anyName(of: ino)
            let id = try await store.upload(body, ext: Self.ext(of: name), group: group, appender: true)
            fileID = id
            size = Int64(body.count)
            _ = try await naming.bind(ino, fileID: id, size: size, mtime: nil)
            Log.info("inode \(ino): created appender file \(id)")
            return data.count
        }
        guard (try? store.decode(fid))?.kind == .appender else {
            throw FSError(ENOTSUP, "\(fid) is a normal FastDFS file and cannot change; truncate it (> file) to replace its content")
        }
        let end = offset + Int64(data.count)
        if offset > size {
            if offset - size > Self.maxGap { throw FSError(EFBIG, "gap of \(offset - size) bytes after EOF is too large") }
            try await store.append([UInt8](repeating: 0, count: Int(offset - size)) + data, to: fid)
        } else if offset == size {
            try await store.append(data, to: fid)
        } else if end <= size {
            try await store.modify(data, in: fid, at: offset)
        } else {
            let inside = Int(size - offset)
            try await store.modify(Array(data[..<inside]), in: fid, at: offset)
            try await store.append(Array(data[inside...]), to: fid)
        }
        size = max(size, end)
        dirty = true
        return data.count
    }

    /// ftruncate / O_TRUNC. Returns the old file id to forget when the content was replaced.
    func resize(to newSize: Int64) async throws(FSError) {
        guard let fid = fileID else {
            if newSize == 0 { return }
            _ = try await write(offset: 0, data: [UInt8](repeating: 0, count: Int(min(newSize, Self.maxGap))))
            return
        }
        let appender = (try? store.decode(fid))?.kind == .appender
        if newSize == 0 {
            // Replace the content: forget the old file (deleted once unreferenced).
            fileID = nil
            size = 0
            dirty = false
            return
        }
        guard appender else { throw FSError(ENOTSUP, "\(fid) is a normal FastDFS file; only truncation to 0 (replacement) is supported") }
        if newSize < size {
            try await store.truncate(fid, to: newSize)
        } else if newSize > size {
            if newSize - size > Self.maxGap { throw FSError(EFBIG, "cannot extend by \(newSize - size) bytes") }
            try await store.append([UInt8](repeating: 0, count: Int(newSize - size)), to: fid)
        }
        size = newSize
        dirty = true
    }

    /// Persists the size (flush/release).
    func persist() async throws(FSError) {
        guard dirty else { return }
        dirty = false
        _ = try await naming.setAttributes(ino, mode: nil, uid: nil, gid: nil, size: size, atime: nil, mtime: .now)
    }
}
