import Foundation
import FuseTypes
#if canImport(Glibc)
import Glibc
#endif

/// The whole named tree as JSON (`fdfsfs dump` / `fdfsfs load`): the backup of the naming
/// database and the way from the embedded SQLite engine to PostgreSQL. Inode numbers and entry
/// ids are kept (they are readdir offsets and what staged writes refer to); names and symlink
/// targets are bytes (base64 in JSON, as `Data` encodes), so names that are not UTF-8 survive.
/// Staged writes are not part of it: they belong to the host whose state directory holds them.
public struct NamingDump: Codable, Sendable, Equatable {
    public static let currentFormat = 1

    public struct EntryRecord: Codable, Sendable, Equatable {
        public var id: Int64
        public var parent: Int64
        public var name: Data
        public var child: Int64
        public init(id: Int64, parent: Int64, name: Data, child: Int64) {
            self.id = id; self.parent = parent; self.name = name; self.child = child
        }
    }

    public struct MetadataRecord: Codable, Sendable, Equatable {
        public var ino: Int64
        public var key: String
        public var value: String
        public init(ino: Int64, key: String, value: String) { self.ino = ino; self.key = key; self.value = value }
    }

    public var format: Int = NamingDump.currentFormat
    /// In id order (a node's JSON is its row: `Node`'s own coding keys).
    public var nodes: [Node]
    /// In id order.
    public var entries: [EntryRecord]
    /// user.* xattrs of files without a FastDFS file yet (kept in the naming database).
    public var pendingMetadata: [MetadataRecord]
    /// FastDFS deletes not done yet.
    public var pendingDeletes: [String]

    enum CodingKeys: String, CodingKey {
        case format, nodes, entries
        case pendingMetadata = "pending_metadata", pendingDeletes = "pending_deletes"
    }

    public init(nodes: [Node], entries: [EntryRecord], pendingMetadata: [MetadataRecord], pendingDeletes: [String]) {
        self.nodes = nodes
        self.entries = entries
        self.pendingMetadata = pendingMetadata
        self.pendingDeletes = pendingDeletes
    }

    /// Stable, readable JSON (sorted keys, one dump gives the same bytes every time).
    public func json() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return try e.encode(self)
    }

    public static func decode(_ data: Data) throws(FSError) -> NamingDump {
        let d: NamingDump
        do { d = try JSONDecoder().decode(NamingDump.self, from: data) }
        catch { throw FSError(EINVAL, "not an fdfsfs dump: \(error)") }
        guard d.format <= currentFormat else {
            throw FSError(EINVAL, "dump format \(d.format) is newer than this fdfsfs understands (\(currentFormat)); use a newer fdfsfs")
        }
        guard d.nodes.contains(where: { $0.id == 1 && $0.mode & 0o170000 == 0o040000 }) else {
            throw FSError(EINVAL, "the dump has no root directory (inode 1)")
        }
        return d
    }
}
