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

    /// Parses the head from `buffer` (consuming it on accept/reject). Blocking (stat, temp file).
    func startStream(command: UInt8, bodyLength: Int64, buffer: inout ByteBuffer) -> StreamStart {
        let invalidNow = StreamStart.reject(Self.invalid, drain: false)
        switch command {
        case FDFSCommand.storageUploadFile.rawValue, FDFSCommand.storageUploadAppenderFile.rawValue:
            guard bodyLength >= 15 else { return invalidNow }
            guard buffer.readableBytes >= 15 else { return .needMore }
            let index = buffer.readInteger(as: UInt8.self)!
            let size = buffer.readInt64Field()!
            let ext = buffer.readFixedField(width: 6)!
            guard size >= 0, size == bodyLength - 15 else { return invalidNow }
            guard index == 0 || index == 0xFF, FileNaming.isSafe(ext) else {
                return .reject(Self.invalid, drain: true)
            }
            if let full = spaceCheck(size) { return full }
            let appender = command == FDFSCommand.storageUploadAppenderFile.rawValue
            // Trunk mode: small normal uploads (never appenders, §5.7) get a trunk slot first.
            var slot: TrunkAllocator.Slot? = nil
            if !appender, let groupState = cluster.group(named: group), let trunk = groupState.trunk, trunk.fits(size) {
                guard let server = groupState.trunkServer, server.isRunning else {
                    return .reject(.error(Errno.eagain), drain: true)
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
            let started = openNewFile(
                command: command, size: size,
                target: {
                    .newFile(temporaryPath: $0, appender: appender, ext7: FileNaming.ext7(ext), slaveName: nil, trunk: trunkSlot)
                })
            if case .reject = started, let trunkSlot { cluster.group(named: group)?.trunk?.release(trunkSlot) }
            return started

        case FDFSCommand.storageUploadSlaveFile.rawValue:
            guard bodyLength >= 38 else { return invalidNow }
            guard buffer.readableBytes >= 16 else { return .needMore }
            let masterLength = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: Int64.self)!
            let size = buffer.getInteger(at: buffer.readerIndex + 8, endianness: .big, as: Int64.self)!
            guard masterLength > 10, masterLength < 128, size >= 0, size == bodyLength - 38 - masterLength else {
                return invalidNow
            }
            guard buffer.readableBytes >= 38 + Int(masterLength) else { return .needMore }
            buffer.moveReaderIndex(forwardBy: 16)
            let prefix = buffer.readFixedField(width: 16)!
            let ext = buffer.readFixedField(width: 6)!
            let masterText = buffer.readString(length: Int(masterLength))!
            guard !prefix.isEmpty, FileNaming.isSafe(prefix), FileNaming.isSafe(ext),
                let master = StoredFilename.validate(masterText)
            else { return .reject(Self.invalid, drain: true) }
            guard disk.exists(master) else { return .reject(.error(Errno.enoent), drain: true) }
            guard let slaveText = try? FDFSFilename.slaveFilename(master: masterText, prefix: prefix, ext: ext),
                let slave = StoredFilename.validate(slaveText)
            else { return .reject(Self.invalid, drain: true) }
            guard disk.status(of: slave) == nil else { return .reject(.error(Errno.eexist), drain: true) }
            if let full = spaceCheck(size) { return full }
            return openNewFile(
                command: command, size: size,
                target: { .newFile(temporaryPath: $0, appender: false, ext7: "", slaveName: slave, trunk: nil) })

        case FDFSCommand.storageAppendFile.rawValue, FDFSCommand.storageModifyFile.rawValue:
            let isAppend = command == FDFSCommand.storageAppendFile.rawValue
            let fixed = isAppend ? 16 : 24
            guard bodyLength >= Int64(fixed) else { return invalidNow }
            guard buffer.readableBytes >= fixed else { return .needMore }
            let nameLength = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: Int64.self)!
            let second = buffer.getInteger(at: buffer.readerIndex + 8, endianness: .big, as: Int64.self)!
            let third = isAppend ? second : buffer.getInteger(at: buffer.readerIndex + 16, endianness: .big, as: Int64.self)!
            let size = isAppend ? second : third
            let offset = isAppend ? 0 : second
            guard nameLength >= 44, nameLength < 128, size >= 0, offset >= 0,
                size == bodyLength - Int64(fixed) - nameLength
            else { return invalidNow }
            guard buffer.readableBytes >= fixed + Int(nameLength) else { return .needMore }
            buffer.moveReaderIndex(forwardBy: fixed)
            let nameText = buffer.readString(length: Int(nameLength))!
            let name: StoredFilename
            let st: FileStatus
            switch appenderTarget(nameText) {
            case .failure(let e): return .reject(e.reply, drain: true)
            case .success(let (n, s)): (name, st) = (n, s)
            }
            if !isAppend && offset > st.size { return .reject(Self.invalid, drain: true) }
            if let full = spaceCheck(size) { return full }
            do {
                let fd = try DiskStore.openForWriting(disk.path(of: name))
                return .accept(
                    ContentSink(
                        command: command, fd: fd,
                        target: .existing(name: name, offset: isAppend ? st.size : offset, isAppend: isAppend),
                        expected: size))
            } catch {
                return .reject(.error(error.status), drain: true)
            }
        default:
            return invalidNow
        }
    }

    private func spaceCheck(_ size: Int64) -> StreamStart? {
        let space = disk.diskSpace()
        let needMB = size / (1 << 20) + 1  // no overflow for any announced size
        if space.freeMB - needMB < cluster.configuration.reservedSpaceMB {
            return .reject(.error(Errno.enospc), drain: true)
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
                    return countUpload(.error(error.errno == EEXIST ? Errno.eexist : error.status), sink)
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
                guard let name = StoredFilename.validate(remote) else { return countUpload(.error(Errno.eio), sink) }
                do {
                    try disk.commit(temporary: temporary, to: name)
                } catch {
                    if error.errno == EEXIST { continue }
                    return countUpload(.error(error.status), sink)
                }
                record(.create(name.remote))
                return countUpload(fileIDReply(name.remote), sink)
            }
            return countUpload(.error(Errno.ebusy), sink)
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
            return .error(Errno.eio)
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
