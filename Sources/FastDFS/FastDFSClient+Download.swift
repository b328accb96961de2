// DOWNLOAD_FILE (14) routed with 102 (or to a given storage), in three shapes that share one
// core: a ByteBuffer, a local file (streamed), and FileDownloadStream (an AsyncSequence that
// reads the socket only as fast as it is iterated).
//
// Range handling is done here so every server version behaves the same (see the "Differences
// in behaviour" table of the protocol vectors): when the size is known from the file id
// (normal files) ranges are clamped to it and a read at/after EOF returns no bytes (after
// checking the file exists); when it is not (appender, slave) and the server answers EINVAL, the
// size is asked with QUERY_FILE_INFO and the request is clamped and sent again.

import FastDFSProtocol
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension FastDFSClient {
    /// Downloads into memory. `length` nil or 0 = to the end of the file. `storage` reads from
    /// that storage first instead of asking the tracker (read-your-writes, see
    /// `sourceStorage(of:)`). Storages that fail before the first byte are replaced by others
    /// that have the file (see FastDFSClient+Routing.swift); an appender file is read from its
    /// source, or from a storage matching `expecting`.
    public func download(
        _ fileID: FileID, offset: Int64 = 0, length: Int64? = nil, storage: StorageAddress? = nil,
        expecting: FileVersion? = nil
    ) async throws(FastDFSError) -> ByteBuffer {
        guard let session = try await openDownload(fileID, offset: offset, length: length, storage: storage, expecting: expecting) else {
            return ByteBuffer()
        }
        guard session.expectedLength <= Int64(Int32.max) else {
            session.finish(reusable: false)
            throw .invalidArgument(
                "\(session.expectedLength) bytes do not fit in memory here; use download(_:toFile:) or downloadStream",
                command: .storageDownloadFile)
        }
        var result = ByteBufferAllocator().buffer(capacity: Int(session.expectedLength))
        while var chunk = try await session.next() {
            result.writeBuffer(&chunk)
        }
        return result
    }

    /// Downloads into a byte array: each chunk is copied once, from the socket's buffer into the
    /// array (the filesystem's read path hands the array straight to the kernel). Same ranges,
    /// routing and errors as `download(_:offset:length:storage:expecting:)`, and more: a storage
    /// that fails or stalls part way is replaced by the next one that has the file, and the
    /// range is read again from there.
    public func downloadBytes(
        _ fileID: FileID, offset: Int64 = 0, length: Int64? = nil, storage: StorageAddress? = nil,
        expecting: FileVersion? = nil
    ) async throws(FastDFSError) -> [UInt8] {
        let command = FDFSCommand.storageDownloadFile
        try Self.validateRange(offset: offset, length: length)
        return try await withReadFailover(fileID, storage: storage, expecting: expecting, command: command) {
            (target, progress) async throws(FastDFSError) -> [UInt8] in
            guard let session = try await self.openDownload(fileID, offset: offset, length: length ?? 0, on: target, progress: progress) else {
                return []
            }
            progress.touch()
            guard session.expectedLength <= Int64(Int32.max) else {
                session.finish(reusable: false)
                throw .invalidArgument(
                    "\(session.expectedLength) bytes do not fit in memory here; use download(_:toFile:) or downloadStream",
                    command: command)
            }
            var result: [UInt8] = []
            result.reserveCapacity(Int(session.expectedLength))
            while let chunk = try await session.next() {
                chunk.withUnsafeReadableBytes { result.append(contentsOf: $0) }
                progress.add(chunk.readableBytes)
            }
            return result
        }
    }

    /// Downloads into a local file (created or truncated), streamed chunk by chunk through NIO's
    /// thread pool. Returns the number of bytes written. The file is opened only once the storage
    /// has answered, so a download that fails at once (unknown file, dead server) leaves an
    /// existing file untouched.
    public func download(
        _ fileID: FileID, toFile path: String, offset: Int64 = 0, length: Int64? = nil, storage: StorageAddress? = nil,
        expecting: FileVersion? = nil
    ) async throws(FastDFSError) -> Int64 {
        let session = try await openDownload(fileID, offset: offset, length: length, storage: storage, expecting: expecting)
        do {
            return try await fileIO.withFileHandle(
                _deprecatedPath: path, mode: .write, flags: .posix(flags: O_CREAT | O_TRUNC, mode: 0o644)
            ) { handle in
                guard let session else { return 0 }
                return try await self.copy(session, to: handle, path: path)
            }
        } catch let error as FastDFSError {
            throw error
        } catch {
            session?.finish(reusable: false)
            throw Self.localFileError(error, path: path, action: "write")
        }
    }

    /// Downloads into an open file handle (e.g. standard output), streamed. Returns the byte count.
    public func download(
        _ fileID: FileID, to handle: NIOFileHandle, path: String = "output", offset: Int64 = 0, length: Int64? = nil,
        storage: StorageAddress? = nil, expecting: FileVersion? = nil
    ) async throws(FastDFSError) -> Int64 {
        guard let session = try await openDownload(fileID, offset: offset, length: length, storage: storage, expecting: expecting) else {
            return 0
        }
        return try await copy(session, to: handle, path: path)
    }

    private func copy(_ session: DownloadSession, to handle: NIOFileHandle, path: String) async throws(FastDFSError)
        -> Int64
    {
        var written: Int64 = 0
        while let chunk = try await session.next() {
            do {
                try await fileIO.write(fileHandle: handle, buffer: chunk)
            } catch {
                session.finish(reusable: false)
                throw Self.localFileError(error, path: path, action: "write")
            }
            written += Int64(chunk.readableBytes)
        }
        return written
    }

    /// A lazily started download whose chunks are read from the socket as the sequence is
    /// iterated (at most a few chunks buffered), for files of any size. Abandoning the iteration
    /// closes the connection.
    /// `onlyFrom` reads from that storage and no other (to check what one storage holds).
    public func downloadStream(
        _ fileID: FileID, offset: Int64 = 0, length: Int64? = nil, storage: StorageAddress? = nil,
        expecting: FileVersion? = nil, onlyFrom: StorageAddress? = nil
    ) -> FileDownloadStream {
        FileDownloadStream { () async throws(FastDFSError) -> DownloadSession? in
            if let onlyFrom {
                try Self.validateRange(offset: offset, length: length)
                return try await self.openDownload(fileID, offset: offset, length: length ?? 0, on: onlyFrom)
            }
            return try await self.openDownload(fileID, offset: offset, length: length, storage: storage, expecting: expecting)
        }
    }

    // MARK: - Core

    static func validateRange(offset: Int64, length: Int64?) throws(FastDFSError) {
        let command = FDFSCommand.storageDownloadFile
        guard offset >= 0 else { throw .invalidArgument("download offset \(offset) is negative", command: command) }
        guard (length ?? 0) >= 0 else { throw .invalidArgument("download length \(length ?? 0) is negative", command: command) }
    }

    /// Sends the download request to a storage that can serve it (failing over before the first
    /// byte, see `withReadFailover`) and reads the reply header; nil when there is nothing to
    /// read (range at or after EOF of an existing file).
    func openDownload(_ fileID: FileID, offset: Int64, length: Int64?, storage: StorageAddress?, expecting: FileVersion?)
        async throws(FastDFSError) -> DownloadSession?
    {
        try Self.validateRange(offset: offset, length: length)
        let box = try await withReadFailover(fileID, storage: storage, expecting: expecting, command: .storageDownloadFile) {
            (target, progress) async throws(FastDFSError) -> SessionBox in
            let session = try await self.openDownload(fileID, offset: offset, length: length ?? 0, on: target, progress: progress)
            progress.touch()
            return SessionBox(session: session)
        }
        return box.session
    }

    /// `openDownload` on one storage (`progress` hears when the request went out).
    func openDownload(_ fileID: FileID, offset: Int64, length: Int64, on target: StorageAddress, progress: ReadProgress? = nil)
        async throws(FastDFSError) -> DownloadSession?
    {
        let knownSize = (try? FileIDInfo.decode(filename: fileID.filename))?.size

        if let size = knownSize {
            guard let range = Self.clamp(offset: offset, length: length, size: size) else {
                progress?.began()
                _ = try await queryFileInfo(fileID, on: target, calculateCRC32: false)  // exists?
                return nil
            }
            return try await startDownload(fileID, range: range, on: target, progress: progress)
        }
        do {
            return try await startDownload(fileID, range: (offset, length), on: target, progress: progress)
        } catch where error.status == .einval {
            // Old servers: range past EOF; new servers: offset ≥ size. Ask the size and clamp.
            let info = try await queryFileInfo(fileID, on: target, calculateCRC32: false)
            guard let range = Self.clamp(offset: offset, length: length, size: info.size) else { return nil }
            // Clamping changed nothing: the EINVAL was not about the range.
            if range.offset == offset && range.length == length { throw error }
            return try await startDownload(fileID, range: range, on: target, progress: progress)
        }
    }

    /// (offset, length) within a file of `size` bytes, nil when nothing is left to read.
    /// `length` 0 means "to EOF" and stays 0 (every server version accepts it for offset < size).
    static func clamp(offset: Int64, length: Int64, size: Int64) -> (offset: Int64, length: Int64)? {
        guard offset < size else { return nil }
        return (offset, length == 0 ? 0 : min(length, size - offset))
    }

    private func startDownload(
        _ fileID: FileID, range: (offset: Int64, length: Int64), on target: StorageAddress, progress: ReadProgress?
    )
        async throws(FastDFSError) -> DownloadSession
    {
        let req = DownloadRequest(fileID: fileID, offset: range.offset, length: range.length)
        return try await withConnection(to: target, command: req.command, policy: .idempotent, keepLease: true) {
            (lease) async throws(FastDFSError) -> DownloadSession in
            let conn = lease.connection
            try await conn.write(FDFSPacket.encode(req, allocator: conn.channel.allocator), command: req.command)
            conn.requestWritten()
            progress?.began(on: conn)
            let header = try await conn.readHead(command: req.command)
            if range.length > 0 && header.bodyLength > range.length {
                throw .protocolViolation(
                    "server announced \(header.bodyLength) bytes for a \(range.length)-byte range", command: req.command,
                    server: target)
            }
            return DownloadSession(client: self, lease: lease, expectedLength: header.bodyLength, progress: progress)
        }
    }
}

/// A session (or none) handed out of a failover attempt.
struct SessionBox: Sendable {
    var session: DownloadSession?
}

/// An open download: owns the leased connection until the reply has been read to its end
/// (then the connection goes back to the pool) or until it fails/is abandoned (then it is closed).
final class DownloadSession: Sendable {
    let client: FastDFSClient
    let lease: FastDFSClient.Lease
    let expectedLength: Int64
    /// The read's progress, which may close the connection on a stall until the session ends.
    let progress: ReadProgress?
    private let done = Atomic<Bool>(false)

    init(client: FastDFSClient, lease: FastDFSClient.Lease, expectedLength: Int64, progress: ReadProgress? = nil) {
        self.client = client
        self.lease = lease
        self.expectedLength = expectedLength
        self.progress = progress
    }

    /// The next chunk, nil at the end. Cancellation closes the connection.
    func next() async throws(FastDFSError) -> ByteBuffer? {
        guard !done.load(ordering: .acquiring) else { return nil }
        let conn = lease.connection
        do {
            let chunk = try await client.run(lease, command: .storageDownloadFile) {
                (conn) async throws(FastDFSError) -> ByteBuffer? in
                try await conn.readBodyChunk(command: .storageDownloadFile)
            }
            if chunk == nil { finish(reusable: true) }
            return chunk
        } catch {
            conn.markFailed()
            finish(reusable: false)
            throw error
        }
    }

    func finish(reusable: Bool) {
        guard !done.exchange(true, ordering: .acquiringAndReleasing) else { return }
        progress?.detach()
        client.release(lease, reusable: reusable)
    }

    deinit {
        if !done.load(ordering: .acquiring) {
            progress?.detach()
            lease.connection.markFailed()
            client.release(lease, reusable: false)
        }
    }
}
