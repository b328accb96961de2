// One storage server's request logic for the commands whose body fits in memory (reference §7):
// delete, set/get metadata, query file info, truncate, regenerate, active test, quit, and the
// download *plan* (the bytes are streamed by the connection layer). Uploads, appends and modifies
// stream their content and live in StorageTransfers.swift.
//
// Every method blocks on the disk; the connection layer runs them on the thread pool and unit tests
// call them directly. Replies follow the emulated release (`CompatProfile`); every EINVAL reply
// asks the connection layer to close, like the real storage.

import FastDFSProtocol
import NIOCore

struct StorageHandler: Sendable {
    let node: StorageNode
    let cluster: ClusterState
    let log: ReplicationLog

    var profile: CompatProfile { cluster.profile }
    var disk: DiskStore { node.disk }
    var group: String { node.id.group }

    static let invalid = Reply.error(.einval, close: true)

    func handle(command: UInt8, status: UInt8, body: ByteBuffer) -> HandlerResult {
        switch command {
        case FDFSCommand.quit.rawValue: return .quit
        case FDFSCommand.activeTest.rawValue: return .reply(body.readableBytes == 0 ? .ok() : Self.invalid)
        case FDFSCommand.storageDeleteFile.rawValue: return .reply(delete(body))
        case FDFSCommand.storageSetMetadata.rawValue: return .reply(setMetadata(body))
        case FDFSCommand.storageGetMetadata.rawValue: return .reply(getMetadata(body))
        case FDFSCommand.storageQueryFileInfo.rawValue: return .reply(queryFileInfo(body, flags: status))
        case FDFSCommand.storageTruncateFile.rawValue: return .reply(truncate(body))
        case FDFSCommand.storageRegenerateAppenderFilename.rawValue where profile.supportsRegenerate:
            return .reply(regenerate(body))
        default: return .reply(Self.invalid)
        }
    }

    // MARK: helpers

    /// Decodes a body with the codec; nil (EINVAL) when the codec refuses it.
    func decode<T>(_ body: ByteBuffer, _ decoder: (inout ByteBuffer) throws(FDFSProtocolError) -> T) -> T? {
        var body = body
        return try? decoder(&body)
    }

    /// The stored file a request names: nil (EINVAL) for a foreign group or a malformed name.
    func stored(_ fileID: FileID) -> StoredFilename? {
        guard fileID.group == group else { return nil }
        return StoredFilename.validate(fileID.filename)
    }

    /// The group name + remote filename reply of uploads, slave uploads and regenerate.
    func fileIDReply(_ name: String) -> Reply {
        var out = ByteBuffer()
        UploadResponse(fileID: FileID(group: group, filename: name)).encode(into: &out)
        return .ok(out)
    }

    /// Existence check shared by most commands: ENOENT when missing, `notRegular` otherwise.
    func existing(_ name: StoredFilename, notRegular: FDFSErrno = .einval) -> Result<FileStatus, ReplyError> {
        guard let st = disk.status(of: name) else { return .failure(ReplyError(Reply.error(.enoent))) }
        guard st.isRegular else { return .failure(ReplyError(.error(notRegular, close: notRegular == .einval))) }
        return .success(st)
    }

    /// Appends a client's operation to this storage's binlog (upper case).
    func record(_ op: SyncOperation) {
        log.append(op)
        node.setCounter(.lastSourceUpdate, WallClock.seconds())
    }

    /// The `-m` file of a stored file as a stored name of its own (it replicates like a file).
    func metadataName(_ name: StoredFilename) -> String { name.remote + "-m" }

    // MARK: commands

    private func delete(_ body: ByteBuffer) -> Reply {
        guard let request = decode(body, DeleteRequest.decode(body:)), let name = stored(request.fileID) else {
            node.count(total: .totalDelete, success: .successDelete, ok: false)
            return Self.invalid
        }
        if case .failure(let e) = existing(name) {
            node.count(total: .totalDelete, success: .successDelete, ok: false)
            return e.reply
        }
        let hadMetadata = disk.readMetadata(name) != nil
        do {
            try disk.removeFile(name)
        } catch {
            node.count(total: .totalDelete, success: .successDelete, ok: false)
            return .error(error.status)
        }
        // A trunk file's slot goes back to the trunk server's free space.
        if let trunk = TrunkLocation(name) { cluster.group(named: group)?.trunk?.release(trunk) }
        // storage_server_delete_file: the data file, then its metadata file.
        record(.delete(name.remote))
        if hadMetadata { record(.delete(metadataName(name))) }
        node.count(total: .totalDelete, success: .successDelete, ok: true)
        return .ok()
    }

    private func setMetadata(_ body: ByteBuffer) -> Reply {
        guard let request = decode(body, SetMetadataRequest.decodePacked(body:)), let name = stored(request.fileID) else {
            node.count(total: .totalSetMeta, success: .successSetMeta, ok: false)
            return Self.invalid
        }
        let meta = request.metadata
        if case .failure(let e) = existing(name) {
            node.count(total: .totalSetMeta, success: .successSetMeta, ok: false)
            return e.reply
        }
        let incoming = MetadataRecords.sorted(MetadataRecords.unpack(meta))
        let old = disk.readMetadata(name)
        let newContent: [UInt8]?
        if request.mode == .overwrite {
            newContent = incoming.isEmpty ? nil : MetadataRecords.pack(incoming)
        } else {
            guard !incoming.isEmpty else {
                node.count(total: .totalSetMeta, success: .successSetMeta, ok: true)
                return .ok()
            }
            if let old {
                newContent = MetadataRecords.pack(
                    MetadataRecords.merge(old: MetadataRecords.unpack(old), new: incoming))
            } else {
                newContent = MetadataRecords.pack(incoming)
            }
        }
        do {
            try disk.writeMetadata(name, newContent)
        } catch {
            node.count(total: .totalSetMeta, success: .successSetMeta, ok: false)
            return .error(error.status)
        }
        // The `-m` file replicates as a file: created, replaced or deleted.
        switch (old, newContent) {
        case (nil, nil): break
        case (_?, nil): record(.delete(metadataName(name)))
        case (nil, _?): record(.create(metadataName(name)))
        case (_?, _?): record(.update(metadataName(name)))
        }
        node.count(total: .totalSetMeta, success: .successSetMeta, ok: true)
        return .ok()
    }

    private func getMetadata(_ body: ByteBuffer) -> Reply {
        guard let request = decode(body, GetMetadataRequest.decode(body:)), let name = stored(request.fileID) else {
            node.count(total: .totalGetMeta, success: .successGetMeta, ok: false)
            return Self.invalid
        }
        if case .failure(let e) = existing(name, notRegular: .eisdir) {
            node.count(total: .totalGetMeta, success: .successGetMeta, ok: false)
            return e.reply
        }
        guard let meta = disk.readMetadata(name) else {
            node.count(total: .totalGetMeta, success: .successGetMeta, ok: false)
            return .error(.enoent)
        }
        node.count(total: .totalGetMeta, success: .successGetMeta, ok: true)
        var out = ByteBuffer()
        out.writeBytes(meta)
        return .ok(out)
    }

    private func queryFileInfo(_ body: ByteBuffer, flags: UInt8) -> Reply {
        guard let request = decode(body, { (b) throws(FDFSProtocolError) in try QueryFileInfoRequest.decode(body: &b, headerStatus: flags) }),
            let name = stored(request.fileID)
        else { return Self.invalid }
        let st: FileStatus
        switch existing(name) {
        case .failure(let e): return e.reply
        case .success(let s): st = s
        }
        guard name.remote.utf8.count >= 37 else { return Self.invalid }
        let info = name.info
        let computes =
            (info?.kind == .appender && profile.computesAppenderCRC)
            || (info?.kind == .slave && profile.computesSlaveCRC)
        var crc: UInt32 = info?.crc32 ?? 0
        if computes {
            if profile.honoursNoCRCFlag && request.flags.contains(.noCRC32) {
                crc = 0
            } else {
                do { crc = try disk.crc32(of: name) } catch { return .error(error.status) }
            }
        }
        // The source's IP; a storage id is mapped through the id table (empty when unknown).
        var sourceIP = ""
        switch info?.source {
        case .ipv4(let ip)?: sourceIP = ip
        case .storageID(let id)?: sourceIP = cluster.ip(ofServerID: String(id)) ?? ""
        case nil: break
        }
        var out = ByteBuffer()
        QueryFileInfoResponse(size: st.size, modifyTime: st.mtime, crc32: crc, sourceIP: sourceIP)
            .encode(into: &out, ipFieldWidth: profile.fileInfoIPWidth)
        return .ok(out)
    }

    /// Checks shared by APPEND/MODIFY/TRUNCATE/REGENERATE: name valid, appender flag, exists.
    func appenderTarget(_ nameText: String) -> Result<(StoredFilename, FileStatus), ReplyError> {
        let length = nameText.utf8.count
        guard length >= 44, length < 128, let name = StoredFilename.validate(nameText), name.isAppender else {
            return .failure(ReplyError(Self.invalid))
        }
        return existing(name).map { (name, $0) }
    }

    private func truncate(_ body: ByteBuffer) -> Reply {
        guard let request = decode(body, TruncateRequest.decode(body:)) else {
            node.count(total: .totalTruncate, success: .successTruncate, ok: false)
            return Self.invalid
        }
        let (nameText, newSize) = (request.filename, request.newSize)
        let name: StoredFilename
        let st: FileStatus
        switch appenderTarget(nameText) {
        case .failure(let e):
            node.count(total: .totalTruncate, success: .successTruncate, ok: false)
            return e.reply
        case .success(let (n, s)): (name, st) = (n, s)
        }
        // storage_do_truncate_file: the same size is a no-op (nothing logged); growing is allowed.
        if newSize == st.size {
            node.count(total: .totalTruncate, success: .successTruncate, ok: true)
            return .ok()
        }
        do { try disk.truncateFile(name, to: newSize) } catch {
            node.count(total: .totalTruncate, success: .successTruncate, ok: false)
            return .error(error.status)
        }
        record(.truncate(name.remote, oldSize: st.size, newSize: newSize))
        node.count(total: .totalTruncate, success: .successTruncate, ok: true)
        return .ok()
    }

    private func regenerate(_ body: ByteBuffer) -> Reply {
        guard let nameText = decode(body, RegenerateAppenderRequest.decode(body:))?.filename else { return Self.invalid }
        let old: StoredFilename
        let st: FileStatus
        switch appenderTarget(nameText) {
        case .failure(let e): return e.reply
        case .success(let (n, s)): (old, st) = (n, s)
        }
        let crc: UInt32
        do { crc = try disk.crc32(of: old) } catch { return .error(error.status) }
        let ext7 = String(old.basename.suffix(7))
        let parts = old.directory.split(separator: "/")
        for _ in 0..<10 {
            let remote = FileNaming.makeName(
                source: node.sourceField, timestamp: WallClock.seconds(), size: st.size,
                appender: false, crc32: crc, storePathIndex: old.storePathIndex,
                sub1: Int(parts[0], radix: 16) ?? 0, sub2: Int(parts[1], radix: 16) ?? 0, ext7: ext7)
            guard let new = StoredFilename.validate(remote) else { return .error(.eio) }
            if disk.status(of: new) != nil { continue }
            do { try disk.renameFile(old, to: new) } catch { return .error(error.status) }
            record(.rename(new: new.remote, old: old.remote))
            return fileIDReply(new.remote)
        }
        return .error(.ebusy)
    }

    // MARK: download

    /// What to stream for a DOWNLOAD_FILE request: an open descriptor and a byte range.
    struct DownloadPlan: Sendable {
        var fd: Int32
        /// Where to start in `fd` (a trunk file's content starts inside its trunk file).
        var offset: Int64
        var length: Int64
    }

    /// Validates a download (reference §7.6, semantics per profile) and opens the file.
    func prepareDownload(_ body: ByteBuffer) -> Result<DownloadPlan, ReplyError> {
        guard let request = decode(body, DownloadRequest.decode(body:)), let name = stored(request.fileID) else {
            node.count(total: .totalDownload, success: .successDownload, ok: false)
            return .failure(ReplyError(Self.invalid))
        }
        let (offset, count) = (request.offset, request.length)
        let st: FileStatus
        switch existing(name, notRegular: .eisdir) {
        case .failure(let e):
            node.count(total: .totalDownload, success: .successDownload, ok: false)
            return .failure(e)
        case .success(let s): st = s
        }
        let length: Int64
        if profile.httpRangeDownloads {
            guard offset < st.size else {
                node.count(total: .totalDownload, success: .successDownload, ok: false)
                return .failure(ReplyError(Self.invalid))
            }
            length = count == 0 ? st.size - offset : min(count, st.size - offset)
        } else if count == 0 {
            guard offset <= st.size else { return .failure(ReplyError(Self.invalid)) }
            length = st.size - offset
        } else {
            guard count <= st.size - offset else {
                node.count(total: .totalDownload, success: .successDownload, ok: false)
                return .failure(ReplyError(Self.invalid))
            }
            length = count
        }
        do {
            let (fd, base) = try disk.openContent(name)
            return .success(DownloadPlan(fd: fd, offset: base + offset, length: length))
        } catch {
            return .failure(ReplyError(.error(error.status)))
        }
    }
}

/// A reply carried through `Result`'s failure side.
struct ReplyError: Error, Sendable {
    var reply: Reply
    init(_ reply: Reply) { self.reply = reply }
}
