import FuseTypes
#if canImport(Glibc)
import Glibc
#endif

/// Where a file's bytes live, as seen by the filesystem. The production implementation wraps
/// `FastDFSClient` (FastDFSFileStore in the fdfsfs executable); `MemoryFileStore` is the fake used
/// by tests and by `fdfsfs --memory-store`. File ids are `GROUP/Mxx/xx/yy/NAME` strings.
/// Errors are `FSError` carrying the errno the kernel should see (ENOENT for a missing file).
public protocol FileStore: Sendable {
    /// Ranged download of `length` bytes at `offset` (never past EOF: callers clamp).
    /// `storage` reads from that storage server (read-your-writes), when known.
    func download(_ fileID: String, offset: Int64, length: Int64, storage: StorageHint?) async throws(FSError) -> [UInt8]
    /// Uploads a new (optionally appender) file; returns its id.
    func upload(_ data: [UInt8], ext: String, group: String?, appender: Bool) async throws(FSError) -> String
    func append(_ data: [UInt8], to fileID: String) async throws(FSError)
    func modify(_ data: [UInt8], in fileID: String, at offset: Int64) async throws(FSError)
    func truncate(_ fileID: String, to size: Int64) async throws(FSError)
    func delete(_ fileID: String) async throws(FSError)
    /// The file's metadata; empty when the file exists without metadata.
    func metadata(of fileID: String) async throws(FSError) -> [String: String]
    /// `merge` true: server merge semantics; false: overwrite the whole list.
    func setMetadata(_ metadata: [String: String], for fileID: String, merge: Bool) async throws(FSError)
    /// QUERY_FILE_INFO without asking the server to CRC the file.
    func fileInfo(_ fileID: String) async throws(FSError) -> StoreFileInfo
    func listGroups() async throws(FSError) -> [StoreGroup]
    /// Decodes the id locally (no request); throws ENOENT-quiet for malformed ids.
    func decode(_ fileID: String) throws(FSError) -> DecodedFileID
    /// The storage the last upload of `fileID` went to, if this process uploaded it.
    func sourceStorage(of fileID: String) -> StorageHint?
    /// Every storage that can serve `fileID` (QUERY_FETCH_ALL), so read-ahead can spread ranged
    /// downloads over the replicas and skip the tracker query per request. Empty: ask per request.
    func replicas(of fileID: String) async throws(FSError) -> [StorageHint]
    /// Uploads `data` as a slave file of `master` (same group and storage); returns its id
    /// (the master's name up to its extension + `prefix` + `.ext`).
    func uploadSlave(_ data: [UInt8], master: String, prefix: String, ext: String) async throws(FSError) -> String
}

extension FileStore {
    public func uploadSlave(_ data: [UInt8], master: String, prefix: String, ext: String) async throws(FSError) -> String {
        throw FSError(EPERM, "this store cannot upload slave files")
    }
    public func replicas(of fileID: String) async throws(FSError) -> [StorageHint] { [] }
}

/// An opaque storage address for read-your-writes.
public struct StorageHint: Sendable, Hashable {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) { self.host = host; self.port = port }
}

public struct StoreFileInfo: Sendable, Hashable {
    public var size: Int64
    public var modifyTime: Int64
    public var crc32: UInt32
    public var sourceIP: String
    public init(size: Int64, modifyTime: Int64, crc32: UInt32, sourceIP: String) {
        self.size = size; self.modifyTime = modifyTime; self.crc32 = crc32; self.sourceIP = sourceIP
    }
}

public struct StoreGroup: Sendable, Hashable {
    public var name: String
    public var totalMB: Int64
    public var freeMB: Int64
    public var storePathCount: Int
    public var subdirCountPerPath: Int
    public init(name: String, totalMB: Int64, freeMB: Int64, storePathCount: Int, subdirCountPerPath: Int) {
        self.name = name; self.totalMB = totalMB; self.freeMB = freeMB
        self.storePathCount = storePathCount; self.subdirCountPerPath = subdirCountPerPath
    }
}
