// Uploads: UPLOAD_FILE (11) / UPLOAD_APPENDER_FILE (23) on the storage the tracker picks with
// 101/104, UPLOAD_SLAVE_FILE (21) on the master's storage found with 103. Upload with metadata
// is the C client's two requests on one connection: UPLOAD, then SET_METADATA 'O'; when the
// second fails the new file is deleted again.

import FastDFSProtocol
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// Writes the content that follows a request head.
typealias ContentWriter = (FDFSConnection, FDFSCommand) async throws(FastDFSError) -> Void

extension FastDFSClient {
    // MARK: - Public API

    /// Uploads bytes. `group` nil lets the tracker choose; `storage` sends straight to that
    /// storage (store path chosen by the storage) without asking a tracker.
    public func upload(
        _ bytes: ByteBuffer, ext: String = "", metadata: FDFSMetadata = [:], group: String? = nil,
        appender: Bool = false, storage: StorageAddress? = nil
    ) async throws(FastDFSError) -> FileID {
        try await performUpload(
            size: Int64(bytes.readableBytes), ext: ext, metadata: metadata, group: group, appender: appender,
            storage: storage, policy: .ifNotFullySent, inline: bytes.readableBytes <= Self.inlineLimit ? bytes : nil
        ) { (conn, command) async throws(FastDFSError) in
            try await conn.write(bytes, command: command)
        }
    }

    /// Uploads a local file, streamed from disk (never read whole into memory). `ext` nil takes
    /// the file name's extension when it is a valid FastDFS extension (≤ 6 of [A-Za-z0-9._-]).
    public func upload(
        filePath: String, ext: String? = nil, metadata: FDFSMetadata = [:], group: String? = nil,
        appender: Bool = false, storage: StorageAddress? = nil
    ) async throws(FastDFSError) -> FileID {
        let ext = ext ?? Self.fileExtension(of: filePath)
        return try await withInputFile(filePath) { (handle, size) async throws(FastDFSError) -> FileID in
            try await performUpload(
                size: size, ext: ext, metadata: metadata, group: group, appender: appender, storage: storage,
                policy: .ifNotFullySent
            ) { (conn, command) async throws(FastDFSError) in
                try await streamFile(handle, size: size, path: filePath, to: conn, command: command)
            }
        }
    }

    /// Uploads `size` bytes produced by `stream` (it must produce exactly `size` bytes).
    /// Not retried on a dead pooled connection (the stream cannot be replayed).
    public func upload<S: AsyncSequence>(
        stream: S, size: Int64, ext: String = "", metadata: FDFSMetadata = [:], group: String? = nil,
        appender: Bool = false, storage: StorageAddress? = nil
    ) async throws -> FileID where S.Element == ByteBuffer {
        guard size >= 0 else { throw FastDFSError.invalidArgument("upload size \(size) is negative") }
        return try await performUpload(
            size: size, ext: ext, metadata: metadata, group: group, appender: appender, storage: storage,
            policy: .never
        ) { (conn, command) async throws(FastDFSError) in
            try await Self.writeStream(stream, size: size, to: conn, command: command)
        }
    }

    /// Uploads a slave file of `master` (same group and storage, name = master's + prefix + ext).
    public func uploadSlave(
        _ bytes: ByteBuffer, master: FileID, prefix: String, ext: String = "", metadata: FDFSMetadata = [:]
    ) async throws(FastDFSError) -> FileID {
        try await performSlaveUpload(
            size: Int64(bytes.readableBytes), master: master, prefix: prefix, ext: ext, metadata: metadata,
            policy: .ifNotFullySent
        ) { (conn, command) async throws(FastDFSError) in
            try await conn.write(bytes, command: command)
        }
    }

    /// Uploads a local file as a slave of `master`, streamed from disk.
    public func uploadSlave(
        filePath: String, master: FileID, prefix: String, ext: String? = nil, metadata: FDFSMetadata = [:]
    ) async throws(FastDFSError) -> FileID {
        let ext = ext ?? Self.fileExtension(of: filePath)
        return try await withInputFile(filePath) { (handle, size) async throws(FastDFSError) -> FileID in
            try await performSlaveUpload(
                size: size, master: master, prefix: prefix, ext: ext, metadata: metadata, policy: .ifNotFullySent
            ) { (conn, command) async throws(FastDFSError) in
                try await streamFile(handle, size: size, path: filePath, to: conn, command: command)
            }
        }
    }

    /// Uploads `size` bytes produced by `stream` as a slave of `master` (it must produce exactly
    /// `size` bytes). Not retried on a dead pooled connection (the stream cannot be replayed).
    public func uploadSlave<S: AsyncSequence>(
        stream: S, size: Int64, master: FileID, prefix: String, ext: String = "", metadata: FDFSMetadata = [:]
    ) async throws -> FileID where S.Element == ByteBuffer {
        guard size >= 0 else { throw FastDFSError.invalidArgument("upload size \(size) is negative") }
        return try await performSlaveUpload(
            size: size, master: master, prefix: prefix, ext: ext, metadata: metadata, policy: .never
        ) { (conn, command) async throws(FastDFSError) in
            try await Self.writeStream(stream, size: size, to: conn, command: command)
        }
    }

    // MARK: - Core

    /// In-memory bodies up to this size are sent in the same write as their header.
    static let inlineLimit = 64 << 10

    enum UploadOutcome: Sendable {
        case uploaded(FileID)
        case metadataFailed(FileID, FastDFSError)
    }

    func performUpload(
        size: Int64, ext: String, metadata: FDFSMetadata, group: String?, appender: Bool,
        storage: StorageAddress?, policy: RetryPolicy, inline: ByteBuffer? = nil, content: ContentWriter
    ) async throws(FastDFSError) -> FileID {
        let command: FDFSCommand = appender ? .storageUploadAppenderFile : .storageUploadFile
        let ext = try Self.normalizeExt(ext, command: command)
        if !metadata.isEmpty { try Self.validateMetadata(metadata, command: command) }
        if let storage {
            let head = UploadRequestHead(storePathIndex: 0xFF, fileSize: size, ext: ext, appender: appender)
            return try await finishUpload(head: head, target: storage, metadata: metadata, policy: policy, inline: inline, content: content)
        }
        var (reply, reused) = try await storeAssignment(group: group)
        while true {
            let head = UploadRequestHead(storePathIndex: reply.storePathIndex, fileSize: size, ext: ext, appender: appender)
            do {
                return try await finishUpload(head: head, target: reply.server, metadata: metadata, policy: policy, inline: inline, content: content)
            } catch {
                forgetStoreAssignment(group: group)  // ask the tracker next time
                // A reused answer naming a storage that went away: nothing was sent, ask again now.
                guard reused, error.code == .connectFailed else { throw error }
                (reply, reused) = try await storeAssignment(group: group)
            }
        }
    }

    /// The tracker's store answer (QUERY_STORE, 101/104), reused for `storeAssignmentReuseTime`
    /// per group so a burst of small uploads does not ask the tracker before every file. Any
    /// failed upload drops it.
    /// `reused`: the answer came from the cache, not from the tracker just now.
    func storeAssignment(group: String?) async throws(FastDFSError) -> (reply: QueryStoreResponse, reused: Bool) {
        let reuse = configuration.storeAssignmentReuseTime
        let key = group ?? ""
        let now = ContinuousClock.now
        if reuse > .zero, let (at, reply) = storeAssignments.withLock({ $0[key] }), at.duration(to: now) < reuse {
            return (reply, true)
        }
        let reply = try await queryStore(group: group)
        if reuse > .zero { storeAssignments.withLock { $0[key] = (now, reply) } }
        return (reply, false)
    }

    func forgetStoreAssignment(group: String?) {
        storeAssignments.withLock { _ = $0.removeValue(forKey: group ?? "") }
    }

    func performSlaveUpload(
        size: Int64, master: FileID, prefix: String, ext: String, metadata: FDFSMetadata, policy: RetryPolicy,
        content: ContentWriter
    ) async throws(FastDFSError) -> FileID {
        let command = FDFSCommand.storageUploadSlaveFile
        let ext = try Self.normalizeExt(ext, command: command)
        guard FDFSFilename.isValidPrefix(prefix) else {
            throw .invalidArgument("slave prefix \"\(prefix)\" must be 1–16 characters of [A-Za-z0-9._-]", command: command)
        }
        if !metadata.isEmpty { try Self.validateMetadata(metadata, command: command) }
        let target = try await queryUpdate(master)
        let head = UploadSlaveRequestHead(masterFilename: master.filename, fileSize: size, prefix: prefix, ext: ext)
        return try await finishUpload(head: head, target: target, metadata: metadata, policy: policy, content: content)
    }

    private func finishUpload<Head: FDFSRequest>(
        head: Head, target: StorageAddress, metadata: FDFSMetadata, policy: RetryPolicy, inline: ByteBuffer? = nil,
        content: ContentWriter
    ) async throws(FastDFSError) -> FileID {
        let command = head.command
        let outcome = try await withConnection(to: target, command: command, policy: policy) {
            (lease) async throws(FastDFSError) -> UploadOutcome in
            let conn = lease.connection
            let body = try await request(head, on: conn, limit: 4096, inline: inline, content: content)
            let fileID = try decode(body, command: command, server: target) { (b) throws(FDFSProtocolError) in
                try UploadResponse.decode(body: &b).fileID
            }
            guard !metadata.isEmpty else { return .uploaded(fileID) }
            do throws(FastDFSError) {
                conn.beginFollowUpRequest()
                try await setMetadataExchange(fileID, metadata: metadata, mode: .overwrite, on: conn)
                return .uploaded(fileID)
            } catch {
                conn.markFailed()
                return .metadataFailed(fileID, error)
            }
        }
        switch outcome {
        case .uploaded(let fileID):
            rememberSource(target, for: fileID)
            return fileID
        case .metadataFailed(let fileID, let error):
            // As the C client: don't leave a file without the metadata the caller asked for.
            try? await deleteFile(fileID, on: target)
            throw error
        }
    }

    // MARK: - Content

    /// Opens a local file for reading on NIO's thread pool and passes its handle and size.
    func withInputFile<T>(
        _ path: String, _ body: (NIOFileHandle, Int64) async throws(FastDFSError) -> T
    ) async throws(FastDFSError) -> T {
        do {
            return try await fileIO.withFileHandle(_deprecatedPath: path, mode: .read) { handle in
                // fstat on an open descriptor does not block on I/O.
                let isRegular = try handle.withUnsafeFileDescriptor { fd -> Bool in
                    var st = stat()
                    guard fstat(fd, &st) == 0 else { return true }
                    return (st.st_mode & S_IFMT) == S_IFREG
                }
                guard isRegular else {
                    throw FastDFSError.io("cannot send \(path): not a regular file", underlying: nil, errno: LinuxErrno.EISDIR)
                }
                let size = try await fileIO.readFileSize(fileHandle: handle)
                return try await body(handle, size)
            }
        } catch let error as FastDFSError {
            throw error
        } catch {
            throw Self.localFileError(error, path: path, action: "open")
        }
    }

    /// Streams `size` bytes of a local file to the connection in 256 KiB chunks, reading the
    /// next chunk only after the previous one was accepted by the socket (bounded memory).
    func streamFile(
        _ handle: NIOFileHandle, size: Int64, path: String, to conn: FDFSConnection, command: FDFSCommand
    ) async throws(FastDFSError) {
        let chunkSize = 256 * 1024
        var offset: Int64 = 0
        while offset < size {
            let count = Int(min(Int64(chunkSize), size - offset))
            let chunk: ByteBuffer
            do {
                chunk = try await fileIO.read(
                    fileHandle: handle, fromOffset: offset, byteCount: count, allocator: conn.channel.allocator)
            } catch {
                conn.markFailed()
                throw Self.localFileError(error, path: path, action: "read")
            }
            guard chunk.readableBytes > 0 else {
                conn.markFailed()
                throw FastDFSError.io(
                    "\(path) shrank while it was being sent (\(offset) of \(size) bytes read)", underlying: nil,
                    errno: LinuxErrno.EIO)
            }
            try await conn.write(chunk, command: command)
            offset += Int64(chunk.readableBytes)
        }
    }

    static func writeStream<S: AsyncSequence>(
        _ stream: S, size: Int64, to conn: FDFSConnection, command: FDFSCommand
    ) async throws(FastDFSError) where S.Element == ByteBuffer {
        var written: Int64 = 0
        do {
            for try await chunk in stream {
                written += Int64(chunk.readableBytes)
                guard written <= size else {
                    throw FastDFSError.invalidArgument(
                        "the upload stream produced more than the announced \(size) bytes", command: command)
                }
                try await conn.write(chunk, command: command)
            }
        } catch let error as FastDFSError {
            conn.markFailed()
            throw error
        } catch {
            conn.markFailed()
            throw FastDFSError.io("reading the upload stream failed: \(error)", underlying: error)
        }
        guard written == size else {
            conn.markFailed()
            throw .invalidArgument("the upload stream ended after \(written) of the announced \(size) bytes", command: command)
        }
    }

    static func localFileError(_ error: any Error, path: String, action: String) -> FastDFSError {
        if let e = error as? IOError {
            // The errno text, not e.description (which names NIO's syscall wrapper).
            return FastDFSError.io(
                "cannot \(action) \(path): \(Errno(rawValue: e.errnoCode).description)", underlying: e, errno: e.errnoCode)
        }
        return FastDFSError.io("cannot \(action) \(path): \(error)", underlying: error)
    }

    // MARK: - Validation

    /// The extension without a leading dot, checked against the server's rules.
    static func normalizeExt(_ ext: String, command: FDFSCommand) throws(FastDFSError) -> String {
        let e = ext.hasPrefix(".") ? String(ext.dropFirst()) : ext
        guard FDFSFilename.isValidExt(e) else {
            throw .invalidArgument("extension \"\(ext)\" must be at most 6 characters of [A-Za-z0-9._-]", command: command)
        }
        return e
    }

    /// The extension of a local path's file name, or "" when it is not a valid FastDFS extension.
    public static func fileExtension(of path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "" }
        let ext = String(name[name.index(after: dot)...])
        return !ext.isEmpty && FDFSFilename.isValidExt(ext) ? ext : ""
    }

    static func validateMetadata(_ metadata: FDFSMetadata, command: FDFSCommand) throws(FastDFSError) {
        for (key, value) in metadata.entries {
            guard !key.isEmpty else { throw .invalidArgument("metadata key is empty", command: command) }
            guard key.utf8.count <= FDFSMetadata.maxKeyLength else {
                throw .invalidArgument("metadata key \"\(key)\" is longer than \(FDFSMetadata.maxKeyLength) bytes", command: command)
            }
            guard value.utf8.count <= FDFSMetadata.maxValueLength else {
                throw .invalidArgument(
                    "metadata value of \"\(key)\" is longer than \(FDFSMetadata.maxValueLength) bytes", command: command)
            }
            let bad: (UInt8) -> Bool = { $0 == 0 || $0 == 1 || $0 == 2 }
            guard !key.utf8.contains(where: bad), !value.utf8.contains(where: bad) else {
                throw .invalidArgument("metadata \"\(key)\" contains a NUL, 0x01 or 0x02 byte", command: command)
            }
        }
    }
}
