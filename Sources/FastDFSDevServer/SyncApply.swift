// How one binlog record travels from a source storage to a peer: what the source sends (read
// from its current files) and what the destination does with it. Each rule follows the C
// function cited next to it (storage/storage_sync.c for the source side, storage/storage_service.c
// for the destination side, FastDFS 6.x).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FastDFSProtocol
import NIOCore

enum SyncOutcome: Sendable, Equatable {
    /// The source skipped the record without contacting the peer (its file is gone or shorter).
    case notSent
    /// The peer received it (and applied or deliberately discarded it): the peer's sync timestamp
    /// for this source moves on.
    case delivered
    /// The peer answered with an error the real sync thread does not skip: try again later.
    case retry
}

extension Replicator {
    /// Applies one upper-case record to the peer (blocking).
    func apply(_ record: BinlogRecord) -> SyncOutcome {
        let src = source.disk
        let dst = peer.disk
        let seconds = record.seconds
        switch record.op {
        case .create(let n):
            // storage_sync.c `storage_sync_copy_file` (SYNC_CREATE_FILE): nothing to send when the
            // source no longer has the file ("maybe deleted later"); the whole current file otherwise.
            // storage_service.c `storage_sync_copy_file`: a destination file of the same size is
            // kept ("already exists, ignore it", EEXIST); any other is overwritten.
            guard let name = StoredFilename.validate(n), let st = src.status(of: name) else { return .notSent }
            if let mine = dst.status(of: name), mine.isRegular, mine.size == st.size { return .delivered }
            return copyWhole(name, size: st.size, record: record, as: .create(n))

        case .update(let n):
            // SYNC_UPDATE_FILE: the whole current file replaces the destination's.
            guard let name = StoredFilename.validate(n), let st = src.status(of: name) else { return .notSent }
            return copyWhole(name, size: st.size, record: record, as: .update(n))

        case .append(let n, let offset, let length), .modify(let n, let offset, let length):
            let isAppend: Bool
            if case .append = record.op { isAppend = true } else { isAppend = false }
            // storage_sync.c `storage_sync_modify_file`: skipped when the source's file is gone or
            // now shorter than offset + length ("maybe some mistakes happened, skip sync"); else the
            // bytes [offset, offset + length) of the source's current file are sent.
            guard let name = StoredFilename.validate(n), let st = src.status(of: name), st.size >= offset + length
            else { return .notSent }
            guard let mine = dst.status(of: name) else {
                // The destination has no copy: it answers ENOENT ("will be resynced") and the
                // source sends the whole file as SYNC_UPDATE_FILE [storage_sync_data].
                return copyWhole(name, size: st.size, record: record, as: .update(n))
            }
            guard mine.isRegular else { return .delivered }
            if isAppend {
                // storage_service.c `storage_sync_append_file`: written only when the destination's
                // copy ends exactly at the offset; longer ("do not append" / "need be resynced") or
                // shorter ("need to resync this file!") copies are left as they are.
                guard mine.size == offset else { return .delivered }
            } else {
                // `storage_sync_modify_file`: skipped when the offset is past the copy's end.
                guard mine.size >= offset else { return .delivered }
            }
            do {
                let input = try DiskStore.openForReading(src.path(of: name))
                defer { close(input) }
                let output = try DiskStore.openForWriting(dst.path(of: name))
                defer { close(output) }
                try DiskStore.copyRange(from: input, at: offset, length: length, to: output, at: offset)
            } catch {
                return .retry
            }
            DiskStore.setModificationTime(dst.path(of: name), seconds: seconds)
            count(bytes: length)
            peerLog.append(record.op, replica: true, at: record.milliseconds)
            return .delivered

        case .truncate(let n, let oldSize, let newSize):
            // storage_sync.c `storage_sync_truncate_file`: skipped only when the source's file is
            // gone. storage_service.c `storage_sync_truncate_file`: ENOENT when the destination
            // has no copy (an error the sync thread retries), EEXIST (skip) when its size is not
            // the size before the truncate.
            guard let name = StoredFilename.validate(n), src.status(of: name) != nil else { return .notSent }
            guard let mine = dst.status(of: name) else { return .retry }
            guard mine.isRegular, mine.size == oldSize else { return .delivered }
            do { try dst.truncateFile(name, to: newSize) } catch { return .retry }
            DiskStore.setModificationTime(dst.path(of: name), seconds: seconds)
            peerLog.append(record.op, replica: true, at: record.milliseconds)
            return .delivered

        case .delete(let n):
            // storage_sync.c `storage_sync_delete_file`: not sent while the source has the file
            // ("maybe created later?"); ENOENT from the destination counts as done.
            guard let name = StoredFilename.validate(n) else { return .notSent }
            if src.status(of: name) != nil { return .notSent }
            if dst.status(of: name) != nil {
                do { try dst.removeFile(name) } catch { return .retry }
                peerLog.append(record.op, replica: true, at: record.milliseconds)
            }
            return .delivered

        case .rename(let newText, let oldText):
            // storage_sync.c `storage_sync_rename_file`: not sent when the source no longer has the
            // new name. The destination renames its copy; EEXIST (it has the new name) is done,
            // ENOENT (no old copy) makes the source send the file as SYNC_CREATE_FILE.
            guard let new = StoredFilename.validate(newText), let old = StoredFilename.validate(oldText),
                let st = src.status(of: new)
            else { return .notSent }
            if dst.status(of: new) != nil { return .delivered }
            guard dst.status(of: old) != nil else {
                return copyWhole(new, size: st.size, record: record, as: .create(newText))
            }
            do { try dst.renameFile(old, to: new) } catch { return .retry }
            peerLog.append(record.op, replica: true, at: record.milliseconds)
            return .delivered
        }
    }

    /// Sends the source's whole current file; the destination replaces its copy with it.
    /// The peer logs it as `op` (lower case).
    private func copyWhole(_ name: StoredFilename, size: Int64, record: BinlogRecord, as op: SyncOperation)
        -> SyncOutcome
    {
        do {
            try peer.disk.installCopy(of: name, from: source.disk, size: size, seconds: record.seconds)
        } catch {
            return .retry
        }
        count(bytes: size)
        peerLog.append(op, replica: true, at: record.milliseconds)
        return .delivered
    }

    private func count(bytes: Int64) {
        peer.count(.totalSyncInBytes, bytes)
        peer.count(.successSyncInBytes, bytes)
        peer.setCounter(.lastSyncUpdate, WallClock.seconds())
        source.count(.totalSyncOutBytes, bytes)
        source.count(.successSyncOutBytes, bytes)
    }
}

extension DiskStore {
    /// Replaces (or creates) this storage's copy of `name` with `size` bytes of `source`'s copy:
    /// a regular file through a temp file renamed into place, a trunk file into its slot.
    func installCopy(of name: StoredFilename, from source: DiskStore, size: Int64, seconds: Int64) throws(DiskError) {
        let (input, base) = try source.openContent(name)
        defer { close(input) }
        if let trunk = TrunkLocation(name) {
            try writeTrunkEntry(trunk, from: input, at: base, length: size)
            return
        }
        let (output, tmp) = try createTemporaryFile()
        do {
            try Self.copyRange(from: input, at: base, length: size, to: output, at: 0)
        } catch {
            close(output)
            unlink(tmp)
            throw error
        }
        close(output)
        Self.setModificationTime(tmp, seconds: seconds)
        let target = path(of: name)
        do { try Self.makeDirectories(dataDirectory + "/" + name.directory) } catch {
            unlink(tmp)
            throw error
        }
        guard rename(tmp, target) == 0 else {
            let e = errno
            unlink(tmp)
            throw DiskError(errno: e, operation: "rename", path: target)
        }
    }
}
