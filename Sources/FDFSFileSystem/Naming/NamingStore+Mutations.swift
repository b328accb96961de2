import Foundation
import FuseTypes
import GRDB
#if canImport(Glibc)
import Glibc
#endif

public let RENAME_NOREPLACE_FLAG: UInt32 = 1
public let RENAME_EXCHANGE_FLAG: UInt32 = 2

extension NamingStore {
    /// Creates a name and a new node (file, directory, symlink, FIFO, socket or device node).
    /// EEXIST if the name exists. In a set-group-ID directory the node takes the directory's
    /// group, and a new directory inherits the set-group-ID bit (as ext4's inode_init_owner).
    public func create(parent: Int64, name: FileName, mode: UInt32, uid: UInt32, gid: UInt32,
                       target: FileName? = nil, fileID: String? = nil, size: Int64 = 0, rdev: UInt64 = 0) async throws(FSError) -> Node {
        cached(try await write { db in
            try self.insert(db, parent: parent, name: name, mode: mode, uid: uid, gid: gid, target: target, fileID: fileID, size: size, rdev: rdev)
        })
    }

    /// `create` of a regular file in one transaction on the calling thread (libfuse's, see
    /// `FDFSFileSystem.immediateCreate`): a local SQLite write, no thread hop.
    public func createOpenedNow(parent: Int64, name: FileName, mode: UInt32, uid: UInt32, gid: UInt32) -> Result<Node, FSError>? {
        Result { () throws(FSError) -> Node in
            cached(try writeNow { db in
                try self.insert(db, parent: parent, name: name, mode: mode, uid: uid, gid: gid, target: nil, fileID: nil, size: 0, rdev: 0)
            })
        }
    }

    /// After a create's commit: the new name and node were cached by it (`willCreate`), so the
    /// next lookup needs no database; the parent's new times are cached too, unless another
    /// change committed in between.
    private func cached(_ created: (node: Node, parent: Node?, generation: UInt64)) -> Node {
        if let p = created.parent { cache.fill(node: p, generation: created.generation &+ 1) }
        return created.node
    }

    /// The create transaction's work: the node, its name, the parent's times. Returns the node,
    /// the parent as updated and the cache generation the transaction started at.
    private func insert(_ db: Database, parent: Int64, name: FileName, mode: UInt32, uid: UInt32, gid: UInt32,
                        target: FileName?, fileID: String?, size: Int64, rdev: UInt64) throws -> (Node, Node?, UInt64) {
        let generation = self.cache.generation  // nothing else commits while this transaction runs
        let dir = try Self.directory(db, parent)
        if try Self.lookup(db, parent, name) != nil { throw FSError(EEXIST, "\(name) exists", quiet: true) }
        let now = Timespec.now().nanoseconds
        let isDir = mode & UInt32(S_IFMT) == UInt32(S_IFDIR)
        var mode = mode, gid = gid
        if dir.mode & UInt32(S_ISGID) != 0 {
            gid = dir.gid
            if isDir { mode |= UInt32(S_ISGID) }
        }
        let targetData = target.map { Data($0.bytes) }
        var node = Node(id: 0, mode: mode, uid: uid, gid: gid, size: size, atimeNs: now, mtimeNs: now, ctimeNs: now,
                        nlink: isDir ? 2 : 1, fileID: fileID, target: targetData, rdev: Int64(bitPattern: rdev))
        // Cached statements: a create is the hot path of `cp -r` (no SQL parsed per file).
        try db.cachedStatement(sql: """
            INSERT INTO nodes (mode, uid, gid, size, atime_ns, mtime_ns, ctime_ns, nlink, file_id, target, rdev)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [node.mode, node.uid, node.gid, node.size, now, now, now, node.nlink, fileID, targetData, node.rdev])
        node.id = db.lastInsertedRowID
        try db.cachedStatement(sql: "INSERT INTO entries (parent, name, child) VALUES (?, ?, ?)").execute(arguments: [parent, Data(name.bytes), node.id])
        let entryRow = db.lastInsertedRowID
        self.cache.willCreate(parent: parent, name: name, row: entryRow, child: node)
        try Self.touch(db, parent, now: now, nlinkDelta: isDir ? 1 : 0)
        return (node, try Self.fetchNode(db, parent), generation)
    }

    /// A new name for an existing non-directory node (hard link).
    public func link(node id: Int64, parent: Int64, name: FileName) async throws(FSError) -> Node {
        try await write { db in
            _ = try Self.directory(db, parent)
            guard var node = try Self.fetchNode(db, id), node.nlink > 0 else { throw FSError.noent("inode \(id) is gone") }
            if node.isDirectory { throw FSError(EPERM, "cannot hard-link a directory") }
            if try Self.lookup(db, parent, name) != nil { throw FSError(EEXIST, "\(name) exists", quiet: true) }
            let now = Timespec.now().nanoseconds
            try db.execute(sql: "INSERT INTO entries (parent, name, child) VALUES (?, ?, ?)", arguments: [parent, Data(name.bytes), id])
            try db.execute(sql: "UPDATE nodes SET nlink = nlink + 1, ctime_ns = ? WHERE id = ?", arguments: [now, id])
            try Self.touch(db, parent, now: now)
            node.nlink += 1
            node.ctimeNs = now
            return node
        }
    }

    /// Removes a name (unlink or rmdir). Returns the node with its new link count; a node at 0
    /// must be purged (now, or when the kernel forgets it).
    public func remove(parent: Int64, name: FileName, directory: Bool) async throws(FSError) -> Node {
        try await write { db in
            _ = try Self.directory(db, parent)
            guard let (entry, node) = try Self.lookup(db, parent, name) else { throw FSError.noent("\(name) not found") }
            return try Self.removeEntry(db, entry: entry, node: node, directory: directory)
        }
    }

    static func removeEntry(_ db: Database, entry: DirEntryRow, node: Node, directory: Bool?) throws -> Node {
        var node = node
        if directory == true && !node.isDirectory { throw FSError(ENOTDIR, "\(entry.fileName) is not a directory") }
        if directory == false && node.isDirectory { throw FSError(EISDIR, "\(entry.fileName) is a directory") }
        if try node.isDirectory && hasChildren(db, node.id) { throw FSError(ENOTEMPTY, "\(entry.fileName) is not empty", quiet: true) }
        let now = Timespec.now().nanoseconds
        try db.execute(sql: "DELETE FROM entries WHERE id = ?", arguments: [entry.id])
        node.nlink = node.isDirectory ? 0 : node.nlink - 1
        node.ctimeNs = now
        try db.execute(sql: "UPDATE nodes SET nlink = ?, ctime_ns = ? WHERE id = ?", arguments: [node.nlink, now, node.id])
        try touch(db, entry.parent, now: now, nlinkDelta: node.isDirectory ? -1 : 0)
        return node
    }

    /// rename(2) with RENAME_NOREPLACE / RENAME_EXCHANGE, atomically. Returns nodes whose link
    /// count reached 0 (a replaced destination).
    public func rename(parent: Int64, name: FileName, newParent: Int64, newName: FileName, flags: UInt32) async throws(FSError) -> [Node] {
        try await write { db in
            _ = try Self.directory(db, parent)
            _ = try Self.directory(db, newParent)
            guard let (src, srcNode) = try Self.lookup(db, parent, name) else { throw FSError.noent("\(name) not found") }
            if parent == newParent && name == newName { return [] }
            if flags & ~(RENAME_NOREPLACE_FLAG | RENAME_EXCHANGE_FLAG) != 0 || flags == RENAME_NOREPLACE_FLAG | RENAME_EXCHANGE_FLAG {
                throw FSError(EINVAL, "unsupported rename flags \(flags)")
            }
            if srcNode.isDirectory, try Self.isAncestor(db, srcNode.id, of: newParent) {
                throw FSError(EINVAL, "cannot move a directory into itself")
            }
            let dstPair = try Self.lookup(db, newParent, newName)
            let now = Timespec.now().nanoseconds
            if flags & RENAME_EXCHANGE_FLAG != 0 {
                guard let (dst, dstNode) = dstPair else { throw FSError.noent("\(newName) not found for exchange") }
                if dstNode.isDirectory, try Self.isAncestor(db, dstNode.id, of: parent) {
                    throw FSError(EINVAL, "cannot move a directory into itself")
                }
                try db.execute(sql: "UPDATE entries SET child = ? WHERE id = ?", arguments: [dstNode.id, src.id])
                try db.execute(sql: "UPDATE entries SET child = ? WHERE id = ?", arguments: [srcNode.id, dst.id])
                let sd: Int64 = srcNode.isDirectory ? 1 : 0, dd: Int64 = dstNode.isDirectory ? 1 : 0
                if parent != newParent {
                    try Self.touch(db, parent, now: now, nlinkDelta: dd - sd)
                    try Self.touch(db, newParent, now: now, nlinkDelta: sd - dd)
                } else {
                    try Self.touch(db, parent, now: now)
                }
                try db.execute(sql: "UPDATE nodes SET ctime_ns = ? WHERE id IN (?, ?)", arguments: [now, srcNode.id, dstNode.id])
                return []
            }
            var dead: [Node] = []
            if let (dst, dstNode) = dstPair {
                if flags & RENAME_NOREPLACE_FLAG != 0 { throw FSError(EEXIST, "\(newName) exists", quiet: true) }
                if dstNode.id == srcNode.id { return [] }
                if srcNode.isDirectory && !dstNode.isDirectory { throw FSError(ENOTDIR, "\(newName) is not a directory") }
                if !srcNode.isDirectory && dstNode.isDirectory { throw FSError(EISDIR, "\(newName) is a directory") }
                let after = try Self.removeEntry(db, entry: dst, node: dstNode, directory: nil)
                if after.nlink <= 0 { dead.append(after) }
            }
            try db.execute(sql: "UPDATE entries SET parent = ?, name = ? WHERE id = ?", arguments: [newParent, Data(newName.bytes), src.id])
            let d: Int64 = srcNode.isDirectory ? 1 : 0
            if parent != newParent {
                try Self.touch(db, parent, now: now, nlinkDelta: -d)
                try Self.touch(db, newParent, now: now, nlinkDelta: d)
            } else {
                try Self.touch(db, parent, now: now)
            }
            try db.execute(sql: "UPDATE nodes SET ctime_ns = ? WHERE id = ?", arguments: [now, srcNode.id])
            return dead
        }
    }

    /// chmod / chown / utimens (and a size change decided by the caller), one transaction.
    public func setAttributes(_ id: Int64, mode: UInt32?, uid: UInt32?, gid: UInt32?, size: Int64?,
                              atime: TimeSet?, mtime: TimeSet?) async throws(FSError) -> Node {
        try await write { db in try Self.changeAttributes(db, id, mode: mode, uid: uid, gid: gid, size: size, atime: atime, mtime: mtime) }
    }

    /// `setAttributes` without a size change, in one transaction on the calling thread
    /// (libfuse's, see `FDFSFileSystem.immediateSetattr`).
    public func setAttributesNow(_ id: Int64, mode: UInt32?, uid: UInt32?, gid: UInt32?, atime: TimeSet?, mtime: TimeSet?) -> Result<Node, FSError>? {
        Result { () throws(FSError) -> Node in
            try writeNow { db in try Self.changeAttributes(db, id, mode: mode, uid: uid, gid: gid, size: nil, atime: atime, mtime: mtime) }
        }
    }

    private static func changeAttributes(_ db: Database, _ id: Int64, mode: UInt32?, uid: UInt32?, gid: UInt32?, size: Int64?,
                                         atime: TimeSet?, mtime: TimeSet?) throws -> Node {
        guard var n = try fetchNode(db, id) else { throw FSError.noent("inode \(id) is gone") }
        let now = Timespec.now().nanoseconds
        if let mode { n.mode = (n.mode & UInt32(S_IFMT)) | (mode & 0o7777) }
        if let uid { n.uid = uid }
        if let gid { n.gid = gid }
        if let size { n.size = size; n.mtimeNs = now }
        switch atime { case .now: n.atimeNs = now; case .time(let t): n.atimeNs = t.nanoseconds; case nil: break }
        switch mtime { case .now: n.mtimeNs = now; case .time(let t): n.mtimeNs = t.nanoseconds; case nil: break }
        n.ctimeNs = now
        try db.cachedStatement(sql: "UPDATE nodes SET mode = ?, uid = ?, gid = ?, size = ?, atime_ns = ?, mtime_ns = ?, ctime_ns = ? WHERE id = ?")
            .execute(arguments: [n.mode, n.uid, n.gid, n.size, n.atimeNs, n.mtimeNs, n.ctimeNs, id])
        return n
    }

    /// Binds `fileID` (and its size) to a node: adoption of an existing FastDFS file, or the result
    /// of an upload. Fails with EEXIST if the node already has a different id.
    public func bind(_ id: Int64, fileID: String, size: Int64, mtime: Int64?) async throws(FSError) -> Node {
        try await write { db in
            guard var n = try Self.fetchNode(db, id) else { throw FSError.noent("inode \(id) is gone") }
            guard n.isRegular else { throw FSError(EPERM, "only regular files can be bound to a file id") }
            if let old = n.fileID, old != fileID { throw FSError(EEXIST, "already bound to \(old)") }
            let now = Timespec.now().nanoseconds
            n.fileID = fileID
            n.size = size
            if let mtime { n.mtimeNs = mtime * 1_000_000_000 }
            n.ctimeNs = now
            try n.update(db)
            return n
        }
    }

    /// Deletes a node with no names left (and its pending user.* metadata). Returns the FastDFS file id to delete when no other node
    /// refers to it; that delete is queued in `pending_deletes` in the same transaction.
    public func purge(_ id: Int64) async throws(FSError) -> (row: Int64, fileID: String)? {
        try await write { db in
            guard let n = try Self.fetchNode(db, id), n.nlink <= 0, id != Self.rootID else { return nil }
            try db.execute(sql: "DELETE FROM nodes WHERE id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM pending_metadata WHERE ino = ?", arguments: [id])
            guard let fid = n.fileID else { return nil }
            let others = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM nodes WHERE file_id = ?", arguments: [fid]) ?? 0
            if others > 0 { return nil }
            try db.execute(sql: "INSERT INTO pending_deletes (file_id) VALUES (?)", arguments: [fid])
            return (db.lastInsertedRowID, fid)
        }
    }
}

extension NamingStore {
    /// Detaches the FastDFS file from a node (its content is being replaced: `> file`, O_TRUNC).
    /// The old file's delete is queued when no other node refers to it.
    public func unbind(_ id: Int64) async throws(FSError) -> (row: Int64, fileID: String)? {
        try await write { db in
            guard var n = try Self.fetchNode(db, id) else { throw FSError.noent("inode \(id) is gone") }
            guard let fid = n.fileID else { return nil }
            let now = Timespec.now().nanoseconds
            n.fileID = nil
            n.size = 0
            n.mtimeNs = now
            n.ctimeNs = now
            try n.update(db)
            let others = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM nodes WHERE file_id = ?", arguments: [fid]) ?? 0
            if others > 0 { return nil }
            try db.execute(sql: "INSERT INTO pending_deletes (file_id) VALUES (?)", arguments: [fid])
            return (db.lastInsertedRowID, fid)
        }
    }

    /// One of the node's names (for the upload extension).
    public func anyName(of id: Int64) async throws(FSError) -> FileName? {
        try await read { db in
            try Data.fetchOne(db, sql: "SELECT name FROM entries WHERE child = ? ORDER BY id LIMIT 1", arguments: [id]).map { FileName(bytes: Array($0)) }
        }
    }
}
