// Requests whose content streams after a fixed head: UPLOAD (11), UPLOAD_APPENDER (23),
// UPLOAD_SLAVE (21), APPEND (24), MODIFY (34) — reference §7.1, 7.2, 7.7, 7.8.
//
// `startStream` parses the head once enough bytes are buffered and either rejects the request or
// returns a `ContentSink`. The connection layer feeds the content to the sink chunk by chunk (each
// write on the thread pool, so memory stays bounded by the channel's backpressure), then calls
// `finish`. New files go to tmp/ first, their CRC-32 is computed as the bytes pass, and they are
// linked into place under the generated name only when complete (or, in trunk mode, copied into
// the trunk slot allocated when the upload started [storage_service.c `storage_upload_file`:
// `trunk_client_trunk_alloc_space` before any content is read]).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FastDFSProtocol
import NIOCore

/// Where the content of a streamed request goes.
struct ContentSink: Sendable {
    enum Target: Sendable {
        /// Upload or appender upload (slaveName nil), or slave upload; `trunk` is the slot of a
        /// small upload in trunk mode.
        case newFile(
            temporaryPath: String, appender: Bool, ext7: String, slaveName: StoredFilename?,
            trunk: TrunkAllocator.Slot?)
        /// Append (offset = size at start) or modify (offset from the request).
        case existing(name: StoredFilename, offset: Int64, isAppend: Bool)
    }

    var command: UInt8
    var fd: Int32
    var target: Target
    /// Content bytes announced by the request.
    var expected: Int64
    var received: Int64 = 0
    var crc = CRC32()
    /// When the request arrived (a trunk file's name carries the upload start time, §5.3).
    var startTime: Int64 = WallClock.seconds()

    var isComplete: Bool { received == expected }

    /// Writes one chunk at its place (blocking).
    mutating func write(_ chunk: ByteBuffer) throws(DiskError) {
        let base: Int64
        switch target {
        case .newFile: base = 0
        case .existing(_, let offset, _): base = offset
        }
        try DiskStore.writeAll(fd: fd, buffer: chunk, at: base + received)
        if case .newFile = target { crc.update(chunk) }
        received += Int64(chunk.readableBytes)
    }
}

/// Outcome of looking at the head of a streamed request.
enum StreamStart: Sendable {
    /// The head is not complete yet; call again with more bytes.
    case needMore
    /// Refuse. With `drain`, read and discard the rest of the body before replying (so a client
    /// that writes everything before reading sees the status); without, reply and close at once.
    case reject(Reply, drain: Bool)
    case accept(ContentSink)
}

extension StorageHandler {
    static let streamedCommands: Set<UInt8> = [
        FDFSCommand.storageUploadFile.rawValue, FDFSCommand.storageUploadAppenderFile.rawValue,
        FDFSCommand.storageUploadSlaveFile.rawValue, FDFSCommand.storageAppendFile.rawValue,
        FDFSCommand.storageModifyFile.rawValue,
    ]

    /// Parses the head from `buffer` with the codec's decoders (consuming it on accept). A head
    /// the codec refuses is EINVAL at once; what the storage refuses after that is EINVAL once the
    /// content has been drained. Blocking (stat, temp file).
    func startStream(command: UInt8, bodyLength: Int64, buffer: inout ByteBuffer) -> StreamStart {
        let invalidNow = StreamStart.reject(Self.invalid, drain: false)
        do {
            switch command {
            case FDFSCommand.storageUploadFile.rawValue, FDFSCommand.storageUploadAppenderFile.rawValue:
                let fdfsCommand = FDFSCommand(rawValue: command) ?? .storageUploadFile
                guard let head = try UploadRequestHead.decode(head: &buffer, bodyLength: bodyLength, command: fdfsCommand) else {
                    return .needMore
                }
                return startUpload(head, command: command)
            case FDFSCommand.storageUploadSlaveFile.rawValue:
                guard let head = try UploadSlaveRequestHead.decode(head: &buffer, bodyLength: bodyLength) else {
                    return .needMore
                }
                // storage_upload_slave_file: a master name no longer than the M00/XX/YY/ path is EINVAL.
                guard head.masterFilename.utf8.count > FDFSLimits.logicFilePathLength else { return invalidNow }
                return startSlaveUpload(head, command: command)
            case FDFSCommand.storageAppendFile.rawValue:
                guard let head = try AppendRequestHead.decode(head: &buffer, bodyLength: bodyLength) else { return .needMore }
                return startChange(of: head.filename, at: nil, length: head.length, command: command)
            case FDFSCommand.storageModifyFile.rawValue:
                guard let head = try ModifyRequestHead.decode(head: &buffer, bodyLength: bodyLength) else { return .needMore }
                return startChange(of: head.filename, at: head.offset, length: head.length, command: command)
            default:
                return invalidNow
            }
        } catch {
            return invalidNow
        }
    }

    private func startUpload(_ head: UploadRequestHead, command: UInt8) -> StreamStart {
        let size = head.fileSize
        guard head.storePathIndex == 0 || head.storePathIndex == 0xFF, FDFSFilename.isValidExt(head.ext) else {
            return .reject(Self.invalid, drain: true)
        }
        if let full = spaceCheck(size) { return full }
        let appender = head.appender
        // Trunk mode: small normal uploads (never appenders, §5.7) get a trunk slot first.
        var slot: TrunkAllocator.Slot? = nil
        if !appender, let groupState = cluster.group(named: group), let trunk = groupState.trunk, trunk.fits(size) {
            guard let server = groupState.trunkServer, server.isRunning else {
                return .reject(.error(.eagain), drain: true)
            }
            do {
                slot = try trunk.allocate(size: size) {
                    server.nextSubdirectories(subdirCount: cluster.configuration.subdirCount)
                }
            } catch {
                return .reject(.error(error.status), drain: true)
            }
        }
        let trunkSlot = slot
        let ext7 = FileNaming.ext7(head.ext)
        let started = openNewFile(
            command: command, size: size,
            target: { .newFile(temporaryPath: $0, appender: appender, ext7: ext7, slaveName: nil, trunk: trunkSlot) })
        if case .reject = started, let trunkSlot { cluster.group(named: group)?.trunk?.release(trunkSlot) }
        return started
    }

    private func startSlaveUpload(_ head: UploadSlaveRequestHead, command: UInt8) -> StreamStart {
        guard FDFSFilename.isValidPrefix(head.prefix), FDFSFilename.isValidExt(head.ext),
            let master = StoredFilename.validate(head.masterFilename)
        else { return .reject(Self.invalid, drain: true) }
        guard disk.exists(master) else { return .reject(.error(.enoent), drain: true) }
        guard let slaveText = try? FDFSFilename.slaveFilename(master: head.masterFilename, prefix: head.prefix, ext: head.ext),
            let slave = StoredFilename.validate(slaveText)
        else { return .reject(Self.invalid, drain: true) }
        guard disk.status(of: slave) == nil else { return .reject(.error(.eexist), drain: true) }
        if let full = spaceCheck(head.fileSize) { return full }
        return openNewFile(
            command: command, size: head.fileSize,
            target: { .newFile(temporaryPath: $0, appender: false, ext7: "", slaveName: slave, trunk: nil) })
    }

    /// APPEND (`offset` nil: at the end) or MODIFY of an appender file.
    private func startChange(of nameText: String, at offset: Int64?, length: Int64, command: UInt8) -> StreamStart {
        // An appender file's name is at least 44 bytes: a shorter one is EINVAL at once.
        guard nameText.utf8.count >= FDFSLimits.normalFilenameLength else { return .reject(Self.invalid, drain: false) }
        let name: StoredFilename
        let st: FileStatus
        switch appenderTarget(nameText) {
        case .failure(let e): return .reject(e.reply, drain: true)
        case .success(let (n, s)): (name, st) = (n, s)
        }
        if let offset, offset > st.size { return .reject(Self.invalid, drain: true) }
        if let full = spaceCheck(length) { return full }
        do {
            let fd = try DiskStore.openForWriting(disk.path(of: name))
            return .accept(
                ContentSink(
                    command: command, fd: fd,
                    target: .existing(name: name, offset: offset ?? st.size, isAppend: offset == nil),
                    expected: length))
        } catch {
            return .reject(.error(error.status), drain: true)
        }
    }

    private func spaceCheck(_ size: Int64) -> StreamStart? {
        let space = disk.diskSpace()
        let needMB = size / (1 << 20) + 1  // no overflow for any announced size
        if space.freeMB - needMB < cluster.configuration.reservedSpaceMB {
            return .reject(.error(.enospc), drain: true)
        }
        return nil
    }

    private func openNewFile(command: UInt8, size: Int64, target: (String) -> ContentSink.Target) -> StreamStart {
        do {
            let (fd, path) = try disk.createTemporaryFile()
            return .accept(ContentSink(command: command, fd: fd, target: target(path), expected: size))
        } catch {
            return .reject(.error(error.status), drain: true)
        }
    }

    /// A request whose whole body is in `body` (blocking): head, content and finish in one go.
    /// nil: close the connection without a reply (a head that cannot be complete).
    func handleWhole(command: UInt8, body: ByteBuffer) -> Reply? {
        var buffer = body
        switch startStream(command: command, bodyLength: Int64(body.readableBytes), buffer: &buffer) {
        case .needMore:
            return nil
        case .reject(let reply, let drain):
            return drain ? reply : Reply(status: reply.status, body: reply.body, closeAfterSending: true)
        case .accept(var sink):
            if buffer.readableBytes > 0 {
                do { try sink.write(buffer) } catch {
                    abort(sink)
                    return .error(error.status, close: true)
                }
            }
            return finish(sink)
        }
    }

    /// Completes a fully received request (blocking): names and links new files, records the
    /// operation for replication, and builds the reply.
    func finish(_ sink: ContentSink) -> Reply {
        close(sink.fd)
        switch sink.target {
        case .existing(let name, let offset, let isAppend):
            if isAppend {
                node.count(total: .totalAppend, success: .successAppend, ok: true)
                node.count(.totalAppendBytes, sink.received)
                node.count(.successAppendBytes, sink.received)
            } else {
                node.count(total: .totalModify, success: .successModify, ok: true)
                node.count(.totalModifyBytes, sink.received)
                node.count(.successModifyBytes, sink.received)
            }
            // The offset and length the real storage logs [storage_append_file /
            // storage_modify_file: `set_fname2log_for_modify`].
            if sink.expected > 0 {
                record(
                    isAppend
                        ? .append(name.remote, offset: offset, length: sink.received)
                        : .modify(name.remote, offset: offset, length: sink.received))
            }
            return .ok()

        case .newFile(let temporary, let appender, let ext7, let slaveName, let trunkSlot):
            defer { unlink(temporary) }
            if let slave = slaveName {
                do { try disk.commit(temporary: temporary, to: slave) } catch {
                    return countUpload(.error(error.errno == EEXIST ? .eexist : error.status), sink)
                }
                record(.create(slave.remote))
                return countUpload(fileIDReply(slave.remote), sink)
            }
            let crc = sink.crc.value
            if let slot = trunkSlot {
                return countUpload(finishTrunkUpload(temporary: temporary, slot: slot, ext7: ext7, sink: sink), sink)
            }
            let (sub1, sub2) = node.nextSubdirectories(subdirCount: cluster.configuration.subdirCount)
            for _ in 0..<10 {
                let remote = FileNaming.makeName(
                    source: node.sourceField, timestamp: WallClock.seconds(), size: sink.received,
                    appender: appender, crc32: crc, storePathIndex: 0, sub1: sub1, sub2: sub2, ext7: ext7)
                guard let name = StoredFilename.validate(remote) else { return countUpload(.error(.eio), sink) }
                do {
                    try disk.commit(temporary: temporary, to: name)
                } catch {
                    if error.errno == EEXIST { continue }
                    return countUpload(.error(error.status), sink)
                }
                record(.create(name.remote))
                return countUpload(fileIDReply(name.remote), sink)
            }
            return countUpload(.error(.ebusy), sink)
        }
    }

    /// Copies a finished small upload into its trunk slot and names it.
    private func finishTrunkUpload(temporary: String, slot: TrunkAllocator.Slot, ext7: String, sink: ContentSink) -> Reply {
        let trunk = cluster.group(named: group)?.trunk
        let remote = FileNaming.makeTrunkName(
            source: node.sourceField, timestamp: sink.startTime, size: sink.received, crc32: sink.crc.value,
            storePathIndex: 0, slot: slot, ext7: ext7)
        guard let name = StoredFilename.validate(remote), let location = TrunkLocation(name) else {
            trunk?.release(slot)
            return .error(.eio)
        }
        do {
            let input = try DiskStore.openForReading(temporary)
            defer { close(input) }
            try disk.writeTrunkEntry(location, from: input, at: 0, length: sink.received)
        } catch {
            trunk?.release(slot)
            return .error(error.status)
        }
        record(.create(name.remote))
        return fileIDReply(name.remote)
    }

    private func countUpload(_ reply: Reply, _ sink: ContentSink) -> Reply {
        node.count(total: .totalUpload, success: .successUpload, ok: reply.status == 0)
        node.count(.totalUploadBytes, sink.received)
        if reply.status == 0 { node.count(.successUploadBytes, sink.received) }
        return reply
    }

    /// Cleans up after a connection lost mid-content (blocking): a partial new file is removed
    /// (its trunk slot freed), a partial append is cut back to the size before it
    /// [storage_dio.c `dio_append_finish_clean_up`], a partial modify stays as written. Nothing is
    /// logged, so nothing of it replicates.
    func abort(_ sink: ContentSink) {
        if case .existing(_, let offset, let isAppend) = sink.target, isAppend, sink.received > 0 {
            _ = ftruncate(sink.fd, off_t(offset))
        }
        close(sink.fd)
        if case .newFile(let temporary, _, _, _, let slot) = sink.target {
            unlink(temporary)
            if let slot { cluster.group(named: group)?.trunk?.release(slot) }
        }
    }
}
