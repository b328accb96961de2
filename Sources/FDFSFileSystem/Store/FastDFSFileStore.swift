import FastDFS
import FuseTypes
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// `FileStore` over `FastDFSClient` (the production store).
///
/// Mapping: download → `download(_:offset:length:storage:)` (hint → `storage:`), upload →
/// `upload(_:ext:group:appender:)`, append/modify/truncate/delete → the same-named calls,
/// metadata/setMetadata → `metadata(of:)` / `setMetadata(_:for:mode:)` (.merge / .overwrite),
/// fileInfo → `fileInfo(_:calculateCRC32: false)`, listGroups → `listGroups()`,
/// decode → `FastDFSClient.decode` (local), sourceStorage → `sourceStorage(of:)`.
/// Errors become `FSError` with the client's best errno and its one-line description.
public final class FastDFSFileStore: FileStore {
    public let client: FastDFSClient

    public init(client: FastDFSClient) { self.client = client }

    static func fileID(_ s: String) throws(FSError) -> FileID {
        guard let id = FileID(s) else { throw FSError.noent("malformed file id \(s)") }
        return id
    }

    /// The one place client errors become errnos. A server's status (ENOENT, ENOSPC, EINVAL, ...)
    /// passes through; a cluster that cannot be reached (refused, reset, timed out, unreachable)
    /// is EIO, as read(2)/write(2) callers expect, with the server and cause in the log line.
    static func fsError(_ e: FastDFSError) -> FSError {
        let networkErrnos: Set<Int32> = [ECONNREFUSED, ECONNRESET, ECONNABORTED, ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, EPIPE]
        let errno = e.errno == 0 || networkErrnos.contains(e.errno) ? EIO : e.errno
        return FSError(errno, e.description, quiet: errno == ENOENT)
    }

    public func download(_ fileID: String, offset: Int64, length: Int64, storage: StorageHint?) async throws(FSError) -> [UInt8] {
        let id = try Self.fileID(fileID)
        do {
            return try await client.downloadBytes(id, offset: offset, length: length, storage: storage.map { StorageAddress(host: $0.host, port: $0.port) })
        } catch { throw Self.fsError(error) }
    }

    public func upload(_ data: [UInt8], ext: String, group: String?, appender: Bool) async throws(FSError) -> String {
        do {
            return try await client.upload(ByteBuffer(bytes: data), ext: ext, group: group, appender: appender).description
        } catch { throw Self.fsError(error) }
    }

    public func uploadSlave(_ data: [UInt8], master: String, prefix: String, ext: String) async throws(FSError) -> String {
        let id = try Self.fileID(master)
        do { return try await client.uploadSlave(ByteBuffer(bytes: data), master: id, prefix: prefix, ext: ext).description }
        catch { throw Self.fsError(error) }
    }

    public func append(_ data: [UInt8], to fileID: String) async throws(FSError) {
        let id = try Self.fileID(fileID)
        do { try await client.append(ByteBuffer(bytes: data), to: id) } catch { throw Self.fsError(error) }
    }

    public func modify(_ data: [UInt8], in fileID: String, at offset: Int64) async throws(FSError) {
        let id = try Self.fileID(fileID)
        do { try await client.modify(ByteBuffer(bytes: data), in: id, at: offset) } catch { throw Self.fsError(error) }
    }

    public func truncate(_ fileID: String, to size: Int64) async throws(FSError) {
        let id = try Self.fileID(fileID)
        do { try await client.truncate(id, to: size) } catch { throw Self.fsError(error) }
    }

    public func delete(_ fileID: String) async throws(FSError) {
        let id = try Self.fileID(fileID)
        do { try await client.delete(id) } catch { throw Self.fsError(error) }
    }

    public func metadata(of fileID: String) async throws(FSError) -> [String: String] {
        let id = try Self.fileID(fileID)
        do {
            var out: [String: String] = [:]
            for (k, v) in try await client.metadata(of: id) { out[k] = v }
            return out
        } catch { throw Self.fsError(error) }
    }

    public func setMetadata(_ metadata: [String: String], for fileID: String, merge: Bool) async throws(FSError) {
        let id = try Self.fileID(fileID)
        do { try await client.setMetadata(FDFSMetadata(metadata), for: id, mode: merge ? .merge : .overwrite) }
        catch { throw Self.fsError(error) }
    }

    public func fileInfo(_ fileID: String) async throws(FSError) -> StoreFileInfo {
        let id = try Self.fileID(fileID)
        do {
            let i = try await client.fileInfo(id, calculateCRC32: false)
            return StoreFileInfo(size: i.size, modifyTime: i.modifyTime, crc32: i.crc32, sourceIP: i.sourceIP)
        } catch { throw Self.fsError(error) }
    }

    public func listGroups() async throws(FSError) -> [StoreGroup] {
        do {
            return try await client.listGroups().map {
                StoreGroup(name: $0.name, totalMB: $0.totalMB, freeMB: $0.freeMB,
                           storePathCount: Int($0.storePathCount), subdirCountPerPath: Int($0.subdirCountPerPath))
            }
        } catch { throw Self.fsError(error) }
    }

    public func decode(_ fileID: String) throws(FSError) -> DecodedFileID {
        let storageIDs = client.configuration.storageIDs
        return try DecodedFileID(decoding: fileID) { storageIDs[$0]?.host }
    }

    public func sourceStorage(of fileID: String) -> StorageHint? {
        guard let id = FileID(fileID), let a = client.sourceStorage(of: id) else { return nil }
        return StorageHint(host: a.host, port: a.port)
    }

    public func replicas(of fileID: String) async throws(FSError) -> [StorageHint] {
        let id = try Self.fileID(fileID)
        do { return try await client.readableStorages(of: id).map { StorageHint(host: $0.host, port: $0.port) } }
        catch { throw Self.fsError(error) }
    }

    public func shutdown() async { await client.shutdown() }
}

extension FastDFSFileStore {
    /// SOURCE is a client.conf path or `HOST:PORT[,HOST:PORT...]` (port defaults to 22122).
    public static func configuration(source: String, conf: String?, connectTimeout: Double) throws(FSError) -> FastDFSConfiguration {
        var config: FastDFSConfiguration
        if let path = conf ?? (source.contains("/") || source.hasSuffix(".conf") ? source : nil) {
            do { config = try FastDFSConfiguration.load(path: path) }
            catch { throw FSError(EINVAL, "cannot read \(path): \(error.description)") }
        } else {
            var trackers: [StorageAddress] = []
            for part in source.split(separator: ",") {
                let s = String(part).trimmingSpaces()
                var host = s, port = 22122
                if let colon = s.lastIndex(of: ":"), !s.hasSuffix("]") {
                    host = String(s[..<colon])
                    guard let p = Int(s[s.index(after: colon)...]), (1...65535).contains(p) else {
                        throw FSError(EINVAL, "bad tracker address \(s) in SOURCE (expected HOST:PORT)")
                    }
                    port = p
                }
                host = host.trimmingBrackets()
                guard !host.isEmpty else { throw FSError(EINVAL, "bad tracker address \(s) in SOURCE (expected HOST:PORT)") }
                trackers.append(StorageAddress(host: host, port: port))
            }
            guard !trackers.isEmpty else { throw FSError(EINVAL, "SOURCE names no tracker (expected HOST:PORT[,HOST:PORT...] or a client.conf path)") }
            config = FastDFSConfiguration(trackers: trackers)
        }
        config.connectTimeout = .milliseconds(Int64(connectTimeout * 1000))
        return config
    }
}

private extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
    func trimmingBrackets() -> String {
        hasPrefix("[") && hasSuffix("]") ? String(dropFirst().dropLast()) : self
    }
}
