import FastDFSProtocol
import FuseTypes
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An in-memory `FileStore`: the fake used by unit tests and by `fdfsfs --memory-store`.
/// Ids are real-shaped FastDFS ids (source 127.0.0.1), so the by-id view behaves as with a cluster.
public final class MemoryFileStore: FileStore {
    struct StoredFile { var data: [UInt8]; var metadata: [String: String]; var mtime: Int64; var appender: Bool }
    struct State {
        var files: [String: StoredFile] = [:]
        var rng = SystemRandomNumberGenerator()
        var counter = 0
        /// Calls per operation, so tests can check that no request was made.
        var calls: [String: Int] = [:]
        /// Downloads per storage host ("" = no storage given).
        var downloadsByStorage: [String: Int] = [:]
    }
    private let state = Mutex(State())
    /// The source field of every id this store makes: 127.0.0.1.
    static let source = FDFSFilename.sourceField(ipv4: "127.0.0.1")!
    public let groups: [StoreGroup]
    /// What `replicas(of:)` answers (empty: no QUERY_FETCH_ALL support).
    public let replicaHosts: [String]
    /// Whether `sourceStorage(of:)` answers (read-your-writes hint).
    public let remembersSources: Bool

    public init(groups: [StoreGroup] = [StoreGroup(name: "group1", totalMB: 10240, freeMB: 8192, storePathCount: 1, subdirCountPerPath: 256)],
                replicaHosts: [String] = [], remembersSources: Bool = true) {
        self.groups = groups
        self.replicaHosts = replicaHosts
        self.remembersSources = remembersSources
    }

    public func downloads(from host: String) -> Int { state.withLock { $0.downloadsByStorage[host, default: 0] } }

    public func replicas(of fileID: String) async throws(FSError) -> [StorageHint] {
        count("replicas")
        _ = try existing(fileID)
        return replicaHosts.map { StorageHint(host: $0, port: 23000) }
    }

    public func callCount(_ op: String) -> Int { state.withLock { $0.calls[op, default: 0] } }
    private func count(_ op: String) { state.withLock { $0.calls[op, default: 0] += 1 } }

    private func existing(_ id: String) throws(FSError) -> StoredFile {
        guard let f = state.withLock({ $0.files[id] }) else { throw FSError.noent("no such file \(id)") }
        return f
    }

    public func download(_ fileID: String, offset: Int64, length: Int64, storage: StorageHint?) async throws(FSError) -> [UInt8] {
        count("download")
        state.withLock { $0.downloadsByStorage[storage?.host ?? "", default: 0] += 1 }
        let f = try existing(fileID)
        guard offset >= 0, offset <= Int64(f.data.count) else { throw FSError(EINVAL, "offset \(offset) past EOF of \(fileID)") }
        let end = length <= 0 ? f.data.count : min(f.data.count, Int(offset + length))
        return Array(f.data[Int(offset)..<end])
    }

    public func upload(_ data: [UInt8], ext: String, group: String?, appender: Bool) async throws(FSError) -> String {
        count("upload")
        let g = group ?? groups[0].name
        guard groups.contains(where: { $0.name == g }) else { throw FSError(ENOENT, "no group \(g)") }
        return state.withLock { s in
            s.counter += 1
            let ext7 = FDFSFilename.formatExt(ext, randomDigits: &s.rng)
            let name = FDFSFilename.generate(
                source: Self.source, timestamp: UInt32(truncatingIfNeeded: time(nil)), size: Int64(data.count),
                appender: appender, crc32: CRC32.checksum(data), storePathIndex: 0,
                sub1: s.counter % 256, sub2: (s.counter / 256) % 256, ext7: ext7, using: &s.rng)
            let id = "\(g)/\(name)"
            s.files[id] = StoredFile(data: data, metadata: [:], mtime: Int64(time(nil)), appender: appender)
            return id
        }
    }

    public func uploadSlave(_ data: [UInt8], master: String, prefix: String, ext: String) async throws(FSError) -> String {
        count("uploadSlave")
        _ = try existing(master)
        guard let masterID = FileID(master) else { throw FSError(EINVAL, "malformed master id \(master)") }
        let slave: String
        do { slave = try FDFSFilename.slaveFilename(master: masterID.filename, prefix: prefix, ext: ext) }
        catch { throw FSError(EINVAL, "\(error)") }
        let id = "\(masterID.group)/\(slave)"
        let err: FSError? = state.withLock { s in
            if s.files[id] != nil { return FSError(EEXIST, "slave file \(id) already exists") }
            s.files[id] = StoredFile(data: data, metadata: [:], mtime: Int64(time(nil)), appender: false)
            return nil
        }
        if let err { throw err }
        return id
    }

    private func mutateAppender(_ id: String, _ body: (inout StoredFile) -> FSError?) throws(FSError) {
        let err: FSError? = state.withLock { s in
            guard var f = s.files[id] else { return FSError.noent("no such file \(id)") }
            guard f.appender else { return FSError(EINVAL, "\(id) is not an appender file") }
            if let e = body(&f) { return e }
            f.mtime = Int64(time(nil))
            s.files[id] = f
            return nil
        }
        if let err { throw err }
    }

    public func append(_ data: [UInt8], to fileID: String) async throws(FSError) {
        count("append")
        try mutateAppender(fileID) { $0.data += data; return nil }
    }

    public func modify(_ data: [UInt8], in fileID: String, at offset: Int64) async throws(FSError) {
        count("modify")
        try mutateAppender(fileID) { f in
            guard offset >= 0, offset <= Int64(f.data.count) else { return FSError(EINVAL, "modify offset past EOF") }
            let o = Int(offset)
            if o + data.count > f.data.count { f.data += [UInt8](repeating: 0, count: o + data.count - f.data.count) }
            f.data.replaceSubrange(o..<(o + data.count), with: data)
            return nil
        }
    }

    static let maxGrowSize: Int64 = 1 << 30

    public func truncate(_ fileID: String, to size: Int64) async throws(FSError) {
        count("truncate")
        try mutateAppender(fileID) { f in
            guard size >= 0 else { return FSError(EINVAL, "negative size") }
            // Like the real storage, a larger size extends the file with zeros (held in memory
            // here, so the memory store caps it).
            guard size <= Self.maxGrowSize else { return FSError(ENOSPC, "the memory store holds at most \(Self.maxGrowSize) bytes per file") }
            if size <= Int64(f.data.count) { f.data.removeLast(f.data.count - Int(size)) }
            else { f.data += [UInt8](repeating: 0, count: Int(size) - f.data.count) }
            return nil
        }
    }

    public func delete(_ fileID: String) async throws(FSError) {
        count("delete")
        let removed = state.withLock { $0.files.removeValue(forKey: fileID) != nil }
        if !removed { throw FSError.noent("no such file \(fileID)") }
    }

    public func metadata(of fileID: String) async throws(FSError) -> [String: String] {
        count("metadata")
        return try existing(fileID).metadata
    }

    public func setMetadata(_ metadata: [String: String], for fileID: String, merge: Bool) async throws(FSError) {
        count("setMetadata")
        let ok = state.withLock { s -> Bool in
            guard var f = s.files[fileID] else { return false }
            if merge { f.metadata.merge(metadata) { _, new in new } } else { f.metadata = metadata }
            s.files[fileID] = f
            return true
        }
        if !ok { throw FSError.noent("no such file \(fileID)") }
    }

    public func fileInfo(_ fileID: String) async throws(FSError) -> StoreFileInfo {
        count("fileInfo")
        let f = try existing(fileID)
        return StoreFileInfo(size: Int64(f.data.count), modifyTime: f.mtime, crc32: CRC32.checksum(f.data), sourceIP: "127.0.0.1")
    }

    public func listGroups() async throws(FSError) -> [StoreGroup] {
        count("listGroups")
        return groups
    }

    public func decode(_ fileID: String) throws(FSError) -> DecodedFileID { try DecodedFileID(decoding: fileID) }

    public func sourceStorage(of fileID: String) -> StorageHint? {
        remembersSources && state.withLock({ $0.files[fileID] }) != nil ? StorageHint(host: "127.0.0.1", port: 23000) : nil
    }
}
