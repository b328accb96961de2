// Per-file storage operations: delete, metadata (get/set, both routed with 103 so they hit the
// source storage), QUERY_FILE_INFO (routed with 102; appender files: their source only), and the
// appender operations (append, modify, truncate, regenerate: 103, accepted only when the tracker
// names the file's source storage — see FastDFSClient+Routing.swift).

import FastDFSProtocol
import NIOCore

extension FastDFSClient {
    // MARK: - Delete

    public func delete(_ fileID: FileID) async throws(FastDFSError) {
        let target = try await queryUpdate(fileID)
        try await deleteFile(fileID, on: target)
        forgetSource(of: fileID)
    }

    func deleteFile(_ fileID: FileID, on target: StorageAddress) async throws(FastDFSError) {
        let req = DeleteRequest(fileID: fileID)
        try await withConnection(to: target, command: req.command, policy: .ifNotFullySent) {
            (lease) async throws(FastDFSError) in
            try await expectEmpty(request(req, on: lease.connection), command: req.command, server: target)
        }
    }

    // MARK: - Metadata

    /// The file's metadata; empty when the file exists but has none (the server says ENOENT for
    /// both, so an ENOENT is checked with QUERY_FILE_INFO).
    public func metadata(of fileID: FileID) async throws(FastDFSError) -> FDFSMetadata {
        let target = try await queryUpdate(fileID)
        let req = GetMetadataRequest(fileID: fileID)
        do {
            return try await withConnection(to: target, command: req.command, policy: .idempotent) {
                (lease) async throws(FastDFSError) -> FDFSMetadata in
                let body = try await request(req, on: lease.connection, limit: 1 << 20)
                return FDFSMetadata.unpack(body.readableBytesView)
            }
        } catch where error.status == .enoent {
            // Does the file exist? (ENOENT from QUERY_FILE_INFO propagates as "no such file".)
            _ = try await queryFileInfo(fileID, on: target, calculateCRC32: false)
            return [:]
        }
    }

    /// SET_METADATA: `.overwrite` replaces everything (an empty list deletes all metadata),
    /// `.merge` adds or replaces the given keys.
    public func setMetadata(_ metadata: FDFSMetadata, for fileID: FileID, mode: MetadataMode = .overwrite)
        async throws(FastDFSError)
    {
        try Self.validateMetadata(metadata, command: .storageSetMetadata)
        let target = try await queryUpdate(fileID)
        try await withConnection(to: target, command: .storageSetMetadata, policy: .idempotent) {
            (lease) async throws(FastDFSError) in
            try await setMetadataExchange(fileID, metadata: metadata, mode: mode, on: lease.connection)
        }
    }

    func setMetadataExchange(_ fileID: FileID, metadata: FDFSMetadata, mode: MetadataMode, on conn: FDFSConnection)
        async throws(FastDFSError)
    {
        let req = SetMetadataRequest(fileID: fileID, mode: mode, metadata: metadata)
        try await expectEmpty(request(req, on: conn), command: req.command, server: conn.address)
    }

    // MARK: - File info

    /// QUERY_FILE_INFO on a storage that has the file (102, failing over to the others), or on
    /// `storage` exactly. An appender file is
    /// asked on its source storage only (a replica's size may lag): `.sourceUnavailable` when the
    /// tracker offers another one. With `calculateCRC32: false` servers ≥ 6.15.1 skip computing
    /// the CRC of appender and slave files (then 0); normal files always report the CRC from their
    /// name. Older servers compute it anyway, which takes a while for large files.
    public func fileInfo(_ fileID: FileID, calculateCRC32: Bool = false, storage: StorageAddress? = nil)
        async throws(FastDFSError) -> FileInfo
    {
        if let storage { return try await queryFileInfo(fileID, on: storage, calculateCRC32: calculateCRC32) }
        let command = FDFSCommand.storageQueryFileInfo
        return try await withReadFailover(fileID, storage: nil, expecting: nil, command: command) {
            (target, progress) async throws(FastDFSError) -> FileInfo in
            progress.began()
            let info = try await self.queryFileInfo(fileID, on: target, calculateCRC32: calculateCRC32)
            progress.touch()
            return info
        }
    }

    func queryFileInfo(_ fileID: FileID, on target: StorageAddress, calculateCRC32: Bool) async throws(FastDFSError)
        -> FileInfo
    {
        let req = QueryFileInfoRequest(fileID: fileID, flags: calculateCRC32 ? [.keepSilent] : [.noCRC32, .keepSilent])
        return try await withConnection(to: target, command: req.command, policy: .idempotent) {
            (lease) async throws(FastDFSError) -> FileInfo in
            let body = try await request(req, on: lease.connection, limit: 4096)
            let reply = try decode(body, command: req.command, server: target) { (b) throws(FDFSProtocolError) in
                try QueryFileInfoResponse.decode(body: &b)
            }
            return FileInfo(size: reply.size, modifyTime: reply.modifyTime, crc32: reply.crc32, sourceIP: reply.sourceIP)
        }
    }

    // MARK: - Appender files

    public func append(_ bytes: ByteBuffer, to fileID: FileID) async throws(FastDFSError) {
        try await performAppend(fileID, size: Int64(bytes.readableBytes), policy: .ifNotFullySent) {
            (conn, command) async throws(FastDFSError) in
            try await conn.write(bytes, command: command)
        }
    }

    /// Appends a local file, streamed from disk.
    public func append(filePath: String, to fileID: FileID) async throws(FastDFSError) {
        try await withInputFile(filePath) { (handle, size) async throws(FastDFSError) in
            try await performAppend(fileID, size: size, policy: .ifNotFullySent) {
                (conn, command) async throws(FastDFSError) in
                try await streamFile(handle, size: size, path: filePath, to: conn, command: command)
            }
        }
    }

    /// Appends `size` bytes produced by `stream`.
    public func append<S: AsyncSequence>(stream: S, size: Int64, to fileID: FileID) async throws
    where S.Element == ByteBuffer {
        try await performAppend(fileID, size: size, policy: .never) { (conn, command) async throws(FastDFSError) in
            try await Self.writeStream(stream, size: size, to: conn, command: command)
        }
    }

    /// Overwrites bytes at `offset` (offset ≤ current size; writing past the end extends the file).
    public func modify(_ bytes: ByteBuffer, in fileID: FileID, at offset: Int64) async throws(FastDFSError) {
        try await performModify(fileID, offset: offset, size: Int64(bytes.readableBytes), policy: .idempotent) {
            (conn, command) async throws(FastDFSError) in
            try await conn.write(bytes, command: command)
        }
    }

    /// Overwrites bytes at `offset` with a local file, streamed from disk.
    public func modify(filePath: String, in fileID: FileID, at offset: Int64) async throws(FastDFSError) {
        try await withInputFile(filePath) { (handle, size) async throws(FastDFSError) in
            try await performModify(fileID, offset: offset, size: size, policy: .idempotent) {
                (conn, command) async throws(FastDFSError) in
                try await streamFile(handle, size: size, path: filePath, to: conn, command: command)
            }
        }
    }

    /// Overwrites `size` bytes at `offset` with what `stream` produces (exactly `size` bytes).
    /// Not retried on a dead pooled connection (the stream cannot be replayed).
    public func modify<S: AsyncSequence>(stream: S, size: Int64, in fileID: FileID, at offset: Int64) async throws
    where S.Element == ByteBuffer {
        try await performModify(fileID, offset: offset, size: size, policy: .never) {
            (conn, command) async throws(FastDFSError) in
            try await Self.writeStream(stream, size: size, to: conn, command: command)
        }
    }

    /// Sets the size (a larger size extends the file with zeros).
    public func truncate(_ fileID: FileID, to size: Int64) async throws(FastDFSError) {
        guard size >= 0 else { throw .invalidArgument("truncate size \(size) is negative", command: .storageTruncateFile) }
        try Self.requireAppender(fileID, command: .storageTruncateFile)
        let target = try await changeTarget(for: fileID, command: .storageTruncateFile)
        let req = TruncateRequest(filename: fileID.filename, newSize: size)
        try await withConnection(to: target, command: req.command, policy: .idempotent) {
            (lease) async throws(FastDFSError) in
            try await expectEmpty(request(req, on: lease.connection), command: req.command, server: target)
        }
        rememberSource(target, for: fileID)
    }

    /// Turns an appender file into a normal file with a new name (servers ≥ 6.02). The old
    /// name stops existing; its metadata is not carried over by the server.
    public func regenerateAppenderFilename(_ fileID: FileID) async throws(FastDFSError) -> FileID {
        let command = FDFSCommand.storageRegenerateAppenderFilename
        try Self.requireAppender(fileID, command: command)
        let target = try await changeTarget(for: fileID, command: command)
        let req = RegenerateAppenderRequest(filename: fileID.filename)
        let newID: FileID
        do {
            newID = try await withConnection(to: target, command: command, policy: .ifNotFullySent) {
                (lease) async throws(FastDFSError) -> FileID in
                let body = try await request(req, on: lease.connection, limit: 4096)
                return try decode(body, command: command, server: target) { (b) throws(FDFSProtocolError) in
                    try UploadResponse.decode(body: &b).fileID
                }
            }
        } catch where error.status == .einval {
            var e = error
            e.message = "servers older than 6.02 do not support this command"
            throw e
        }
        forgetSource(of: fileID)
        rememberSource(target, for: newID)
        return newID
    }

    private func performAppend(_ fileID: FileID, size: Int64, policy: RetryPolicy, content: ContentWriter)
        async throws(FastDFSError)
    {
        let command = FDFSCommand.storageAppendFile
        try Self.requireAppender(fileID, command: command)
        let target = try await changeTarget(for: fileID, command: command)
        let head = AppendRequestHead(filename: fileID.filename, length: size)
        try await sendWithContent(head, to: target, policy: policy, content: content)
        rememberSource(target, for: fileID)
    }

    private func performModify(
        _ fileID: FileID, offset: Int64, size: Int64, policy: RetryPolicy, content: ContentWriter
    ) async throws(FastDFSError) {
        let command = FDFSCommand.storageModifyFile
        guard offset >= 0 else { throw .invalidArgument("modify offset \(offset) is negative", command: command) }
        try Self.requireAppender(fileID, command: command)
        let target = try await changeTarget(for: fileID, command: command)
        let head = ModifyRequestHead(filename: fileID.filename, offset: offset, length: size)
        try await sendWithContent(head, to: target, policy: policy, content: content)
        rememberSource(target, for: fileID)
    }

    private func sendWithContent<Head: FDFSRequest>(
        _ head: Head, to target: StorageAddress, policy: RetryPolicy, content: ContentWriter
    ) async throws(FastDFSError) {
        let command = head.command
        try await withConnection(to: target, command: command, policy: policy) { (lease) async throws(FastDFSError) in
            let body = try await request(head, on: lease.connection, limit: 4096, content: content)
            try expectEmpty(body, command: command, server: target)
        }
    }

    /// Append/modify/truncate/regenerate need an appender file; say so before the server's bare EINVAL.
    static func requireAppender(_ fileID: FileID, command: FDFSCommand) throws(FastDFSError) {
        guard let info = try? FileIDInfo.decode(filename: fileID.filename) else { return }  // let the server judge
        guard info.kind == .appender else {
            throw FastDFSError(
                code: .invalidArgument, command: command, status: .einval,
                message: "\(fileID) is not an appender file (only appender files can be appended to, modified, truncated or regenerated)",
                errno: LinuxErrno.EINVAL)
        }
    }

    func expectEmpty(_ body: ByteBuffer, command: FDFSCommand, server: StorageAddress) throws(FastDFSError) {
        guard body.readableBytes == 0 else {
            throw .protocolViolation(
                "expected an empty reply body, got \(body.readableBytes) bytes", command: command, server: server)
        }
    }
}
