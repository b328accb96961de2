import Foundation
import FuseTypes
#if canImport(Glibc)
import Glibc
#endif
import GRDB

/// A row of the `nodes` table: one inode of the named tree. `id` is the inode number handed to
/// the kernel (AUTOINCREMENT, so stable across remounts and never reused).
public struct Node: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "nodes"
    public var id: Int64
    /// Full st_mode (type and permission bits).
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: Int64
    public var atimeNs: Int64
    public var mtimeNs: Int64
    public var ctimeNs: Int64
    /// Number of names (for directories: 2 + subdirectories).
    public var nlink: Int64
    /// The FastDFS file id bound to this file (nil: no data yet).
    public var fileID: String?
    /// Symlink target: its bytes as given (a BLOB, not necessarily UTF-8).
    public var target: Data?
    /// Device number of a character or block device node (0 for other types).
    public var rdev: Int64

    enum CodingKeys: String, CodingKey {
        case id, mode, uid, gid, size, nlink, target, rdev
        case atimeNs = "atime_ns", mtimeNs = "mtime_ns", ctimeNs = "ctime_ns", fileID = "file_id"
    }

    public init(id: Int64, mode: UInt32, uid: UInt32, gid: UInt32, size: Int64, atimeNs: Int64, mtimeNs: Int64, ctimeNs: Int64,
                nlink: Int64, fileID: String?, target: Data?, rdev: Int64) {
        self.id = id; self.mode = mode; self.uid = uid; self.gid = gid; self.size = size
        self.atimeNs = atimeNs; self.mtimeNs = mtimeNs; self.ctimeNs = ctimeNs; self.nlink = nlink
        self.fileID = fileID; self.target = target; self.rdev = rdev
    }

    /// Decoded by hand: GRDB's Decodable path (a keyed container per row) was about half of a
    /// create transaction's CPU (issue 12).
    public init(row: Row) throws {
        id = row["id"]; mode = row["mode"]; uid = row["uid"]; gid = row["gid"]; size = row["size"]
        atimeNs = row["atime_ns"]; mtimeNs = row["mtime_ns"]; ctimeNs = row["ctime_ns"]; nlink = row["nlink"]
        fileID = row["file_id"]; target = row["target"]; rdev = row["rdev"]
    }

    public var isDirectory: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFDIR) }
    public var isRegular: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFREG) }
    public var isSymlink: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFLNK) }
    /// FIFOs, sockets and device nodes: metadata only (the kernel handles their data).
    public var isSpecial: Bool { !isDirectory && !isRegular && !isSymlink }

    public var targetName: FileName? { target.map { FileName(bytes: Array($0)) } }

    public var attr: Attr {
        Attr(ino: UInt64(id), mode: mode, nlink: UInt32(clamping: nlink), uid: uid, gid: gid,
             size: isSymlink ? Int64(target?.count ?? 0) : isSpecial ? 0 : size,
             atime: Timespec(nanoseconds: atimeNs), mtime: Timespec(nanoseconds: mtimeNs), ctime: Timespec(nanoseconds: ctimeNs),
             rdev: UInt64(bitPattern: rdev))
    }
}

/// A row of the `entries` table: a name in a directory. `id` gives readdir a stable offset.
struct DirEntryRow: Codable, Sendable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "entries"
    var id: Int64?
    var parent: Int64
    /// The name's exact bytes (a BLOB: compared and kept byte for byte).
    var name: Data
    var child: Int64

    var fileName: FileName { FileName(bytes: Array(name)) }

    init(id: Int64?, parent: Int64, name: Data, child: Int64) {
        self.id = id; self.parent = parent; self.name = name; self.child = child
    }

    /// Decoded by hand, as `Node`.
    init(row: Row) throws {
        id = row["id"]; parent = row["parent"]; name = row["name"]; child = row["child"]
    }
}

enum Schema {
    static func migrator() -> DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE nodes (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,
                    size INTEGER NOT NULL DEFAULT 0,
                    atime_ns INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
                    nlink INTEGER NOT NULL,
                    file_id TEXT, target TEXT);
                CREATE INDEX nodes_file_id ON nodes(file_id);
                CREATE TABLE entries (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    parent INTEGER NOT NULL REFERENCES nodes(id),
                    name TEXT NOT NULL,
                    child INTEGER NOT NULL REFERENCES nodes(id),
                    UNIQUE(parent, name));
                CREATE INDEX entries_child ON entries(child);
                CREATE TABLE pending_deletes (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    file_id TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    last_error TEXT);
                """)
            let now = Timespec.now().nanoseconds
            try db.execute(sql: "INSERT INTO nodes (id, mode, uid, gid, size, atime_ns, mtime_ns, ctime_ns, nlink) VALUES (1, ?, 0, 0, 0, ?, ?, ?, 2)",
                           arguments: [Int64(S_IFDIR) | 0o755, now, now, now])
        }
        m.registerMigration("v2-staged-files") { db in
            // Write-back state of files with bytes not yet on the cluster (see WriteState), and
            // user.* xattrs set before a file has data (sent with its upload).
            try db.execute(sql: """
                CREATE TABLE staged_files (
                    ino INTEGER PRIMARY KEY,
                    state TEXT NOT NULL,
                    status TEXT NOT NULL DEFAULT 'pending',
                    last_error TEXT,
                    updated_ns INTEGER NOT NULL);
                CREATE TABLE pending_metadata (
                    ino INTEGER NOT NULL,
                    key TEXT NOT NULL,
                    value TEXT NOT NULL,
                    PRIMARY KEY (ino, key));
                """)
        }
        m.registerMigration("v3-byte-names-special-files") { db in
            // Names and symlink targets become BLOBs, so a name that is not UTF-8 is kept byte
            // for byte (TEXT compared names as text and Swift Strings replaced bad bytes with
            // U+FFFD, making `bad\xff` and `bad\xfe` one name). Existing names keep their UTF-8
            // bytes. `rdev` is the device number of device nodes.
            let seq = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'entries'")
            try db.execute(sql: """
                CREATE TABLE entries_v3 (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    parent INTEGER NOT NULL REFERENCES nodes(id),
                    name BLOB NOT NULL,
                    child INTEGER NOT NULL REFERENCES nodes(id),
                    UNIQUE(parent, name));
                INSERT INTO entries_v3 (id, parent, name, child) SELECT id, parent, CAST(name AS BLOB), child FROM entries;
                DROP TABLE entries;
                ALTER TABLE entries_v3 RENAME TO entries;
                CREATE INDEX entries_child ON entries(child);
                ALTER TABLE nodes ADD COLUMN rdev INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE nodes ADD COLUMN target_v3 BLOB;
                UPDATE nodes SET target_v3 = CAST(target AS BLOB) WHERE target IS NOT NULL;
                ALTER TABLE nodes DROP COLUMN target;
                ALTER TABLE nodes RENAME COLUMN target_v3 TO target;
                """)
            // Readdir offsets are entry ids: keep the counter where it was (never reuse an id).
            if let seq {
                try db.execute(sql: "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'entries'", arguments: [seq])
                if db.changesCount == 0 {
                    try db.execute(sql: "INSERT INTO sqlite_sequence (name, seq) VALUES ('entries', ?)", arguments: [seq])
                }
            }
        }
        m.registerMigration("v4-staged-path") { db in
            // The path of a staged file as its writer knew it (`fdfsfs status` of a mount whose
            // named tree is in PostgreSQL: the local database has no names).
            try db.execute(sql: "ALTER TABLE staged_files ADD COLUMN path TEXT")
        }
        return m
    }
}
