import Foundation
import FuseTypes
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// Where a file's staged writes stand (stored as its raw value in `staged_files.status`).
public enum StagedStatus: String, Sendable, Hashable, CustomStringConvertible {
    /// Being written, or waiting for its next ship.
    case pending
    /// The last ship failed (the record carries its error).
    case failed
    public var description: String { rawValue }
}

/// A row of `staged_files`: a file whose latest bytes are (partly) only in the staging area.
public struct StagedFileRecord: Sendable, Hashable {
    public var ino: Int64
    public var state: WriteState
    public var status: StagedStatus
    public var lastError: String?
    /// A path of the named file ("(no name)" when unlinked; the file id for by-id files).
    public var path: String
}

extension NamingStore {
    static func encode(_ s: WriteState) throws -> String {
        String(decoding: try JSONEncoder().encode(s), as: UTF8.self)
    }

    /// `durable`: fsynced before returning (a failed durability point); otherwise a progress
    /// record that survives a killed process, synced with the next durable transaction.
    public func saveStaged(ino: Int64, state: WriteState, status: StagedStatus, error: String?, durable: Bool = false) async throws(FSError) {
        try await saveStaged(ino: ino, state: state, status: status, error: error, durable: durable, path: nil)
    }

    /// `path`: the file's path as shown by `fdfsfs status` when this database has no names.
    public func saveStaged(ino: Int64, state: WriteState, status: StagedStatus, error: String?, durable: Bool, path: String?) async throws(FSError) {
        let json: String
        do { json = try Self.encode(state) } catch { throw FSError(EIO, "cannot encode the write state of inode \(ino): \(error)") }
        let save: @Sendable (Database) throws -> Void = { db in
            try db.execute(sql: """
                INSERT INTO staged_files (ino, state, status, last_error, updated_ns, path) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(ino) DO UPDATE SET state = excluded.state, status = excluded.status,
                    last_error = excluded.last_error, updated_ns = excluded.updated_ns,
                    path = coalesce(excluded.path, staged_files.path)
                """, arguments: [ino, json, status.rawValue, error, Timespec.now().nanoseconds, path])
        }
        try await write(save)
        if durable { try await syncToDisk() }
    }

    public func removeStaged(ino: Int64) async throws(FSError) {
        try await write { try $0.execute(sql: "DELETE FROM staged_files WHERE ino = ?", arguments: [ino]) }
    }

    public func stagedFiles() async throws(FSError) -> [StagedFileRecord] {
        try await read { db in try Self.stagedFiles(db) }
    }

    static func stagedFiles(_ db: Database) throws -> [StagedFileRecord] {
        let hasPath = try db.columns(in: "staged_files").contains { $0.name == "path" }
        return try Row.fetchAll(db, sql: "SELECT ino, state, status, last_error\(hasPath ? ", path" : "") FROM staged_files ORDER BY ino").compactMap { row in
            let ino: Int64 = row["ino"]
            let json: String = row["state"]
            guard let state = try? JSONDecoder().decode(WriteState.self, from: Data(json.utf8)) else { return nil }
            let recorded: String? = hasPath ? row["path"] : nil
            let path = try Self.path(db, of: ino) ?? recorded ?? (InodeTable.isByID(UInt64(ino)) ? (state.fileID ?? state.slave.map { "\($0.fileID) (slave of \($0.master))" } ?? "(by id)") : "(no name)")
            let status = StagedStatus(rawValue: row["status"]) ?? .failed   // unknown: treat as failed (listed, retried)
            return StagedFileRecord(ino: ino, state: state, status: status, lastError: row["last_error"], path: path)
        }
    }

    /// A path of node `id` from the root, when it still has a name.
    static func path(_ db: Database, of id: Int64) throws -> String? {
        var parts: [String] = []
        var cur = id
        while cur != rootID {
            guard let r = try Row.fetchOne(db, sql: "SELECT parent, name FROM entries WHERE child = ? ORDER BY id LIMIT 1", arguments: [cur]) else { return nil }
            let name: Data = r["name"]   // a BLOB (TEXT in a database not migrated yet)
            parts.append(FileName(bytes: Array(name)).description)
            cur = r["parent"]
            if parts.count > 4096 { return nil }
        }
        return "/" + parts.reversed().joined(separator: "/")
    }

    /// Opens a state directory's naming databases read-only and lists its staged files
    /// (`fdfsfs status STATE_DIR`; works while the mount runs, WAL readers do not block):
    /// `names.sqlite` (the SQLite engine) and `staged.sqlite` (this host's records of a tree in PostgreSQL).
    public static func stagedFiles(stateDir: String) throws(FSError) -> [StagedFileRecord] {
        var out: [StagedFileRecord] = []
        var found = false
        for file in ["names.sqlite", "staged.sqlite"] where access(stateDir + "/" + file, F_OK) == 0 {
            found = true
            do {
                var config = Configuration()
                config.readonly = true
                let q = try DatabaseQueue(path: stateDir + "/" + file, configuration: config)
                out += try q.read { db in
                    guard try db.tableExists("staged_files") else { return [] }
                    return try stagedFiles(db)
                }
            } catch {
                throw FSError(EIO, "cannot read \(stateDir)/\(file): \(error)")
            }
        }
        if !found { throw FSError(ENOENT, "\(stateDir) holds no fdfsfs state (no names.sqlite or staged.sqlite)") }
        return out + journaledFiles(stateDir: stateDir, staged: Set(out.map(\.ino)))
    }

    /// Small new files whose bytes are only in the write journal (a daemon killed before their
    /// close): what recovery will stage (`FDFSFileSystem.recoverJournal`), as pending records.
    /// With the names in this state directory, only files still new (no file id, not deleted)
    /// are listed, under their paths; with a shared tree's names elsewhere, every journaled file.
    static func journaledFiles(stateDir: String, staged: Set<Int64>) -> [StagedFileRecord] {
        let candidates = WriteJournal.recover(dir: stateDir + "/staging").unfinished.filter { !staged.contains($0.ino) }
        guard !candidates.isEmpty else { return [] }
        var config = Configuration()
        config.readonly = true
        let names = access(stateDir + "/names.sqlite", F_OK) == 0 ? try? DatabaseQueue(path: stateDir + "/names.sqlite", configuration: config) : nil
        return candidates.compactMap { u -> StagedFileRecord? in
            var state = WriteState(fileID: nil, size: Int64(u.bytes.count), appender: false)
            state.dirty.insert(0, Int64(u.bytes.count))
            var path = "(journaled, inode \(u.ino))"
            if let names {
                guard let p = try? names.read({ db -> String? in
                    guard let row = try Row.fetchOne(db, sql: "SELECT nlink, file_id FROM nodes WHERE id = ?", arguments: [u.ino]),
                          (row["nlink"] as Int64? ?? 0) > 0, (row["file_id"] as String?) == nil else { return nil }
                    return try Self.path(db, of: u.ino) ?? "(no name)"
                }) else { return nil }
                path = p
            }
            return StagedFileRecord(ino: u.ino, state: state, status: .pending, lastError: nil, path: path)
        }
    }
}

extension NamingStore {
    /// Records the result of a ship (the durability point): the node's file id and size. When
    /// the id changed (copy on write, or replacement by truncation to 0), the old file's delete
    /// is queued unless another node still refers to it.
    /// `dropStaged`: the node's staged-writes record goes in the same transaction.
    public func commitWrite(_ id: Int64, fileID: String?, size: Int64, dropStaged: Bool = false) async throws(FSError) -> (row: Int64, fileID: String)? {
        let (queued, node, generation) = try await write { db -> ((row: Int64, fileID: String)?, Node, UInt64) in
            let generation = self.cache.generation
            if dropStaged { try db.cachedStatement(sql: "DELETE FROM staged_files WHERE ino = ?").execute(arguments: [id]) }
            guard var n = try Self.fetchNode(db, id) else { throw FSError.noent("inode \(id) is gone") }
            let old = n.fileID
            let now = Timespec.now().nanoseconds
            n.fileID = fileID
            n.size = size
            n.mtimeNs = now
            n.ctimeNs = now
            // One cached statement (a record update builds its SQL on every call).
            try db.cachedStatement(sql: "UPDATE nodes SET file_id = ?, size = ?, mtime_ns = ?, ctime_ns = ? WHERE id = ?")
                .execute(arguments: [fileID, size, now, now, id])
            guard let old, old != fileID else { return (nil, n, generation) }
            let others = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM nodes WHERE file_id = ?", arguments: [old]) ?? 0
            if others > 0 { return (nil, n, generation) }
            try db.execute(sql: "INSERT INTO pending_deletes (file_id) VALUES (?)", arguments: [old])
            return ((db.lastInsertedRowID, old), n, generation)
        }
        cache.fill(node: node, generation: generation &+ 1)
        return queued
    }
}

extension NamingStore {
    /// user.* metadata of a node without a FastDFS file yet (sent with its upload).
    public func pendingMetadata(_ ino: Int64) async throws(FSError) -> [String: String] {
        try await read { db in
            var m: [String: String] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT key, value FROM pending_metadata WHERE ino = ?", arguments: [ino]) { m[r["key"]] = r["value"] }
            return m
        }
    }

    /// Sets (or with nil removes) one pending key.
    public func setPendingMetadata(_ ino: Int64, key: String, value: String?) async throws(FSError) {
        try await write { db in
            if let value {
                try db.execute(sql: "INSERT OR REPLACE INTO pending_metadata (ino, key, value) VALUES (?, ?, ?)", arguments: [ino, key, value])
            } else {
                try db.execute(sql: "DELETE FROM pending_metadata WHERE ino = ? AND key = ?", arguments: [ino, key])
            }
        }
    }

    public func clearPendingMetadata(_ ino: Int64) async throws(FSError) {
        try await write { try $0.execute(sql: "DELETE FROM pending_metadata WHERE ino = ?", arguments: [ino]) }
    }
}
