// Tracker LIST commands: LIST_ALL_GROUPS (91), LIST_ONE_GROUP (90), LIST_STORAGE (92) requests
// and the group stat record (§3.5, §3.6, §4.1 of the reference). Storage stats: StorageStat.swift.
import NIOCore

/// LIST_ALL_GROUPS (91): empty body; reply is `GroupStat.decodeList`.
public struct ListGroupsRequest: FDFSRequest, Hashable {
    public init() {}
    public var command: FDFSCommand { .trackerListAllGroups }
    public func encode(into buffer: inout ByteBuffer) {}
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> ListGroupsRequest {
        try Wire.expectLength(body, 0, command: "LIST_ALL_GROUPS")
        return ListGroupsRequest()
    }
}

/// LIST_ONE_GROUP (90): group(16); reply is exactly one group stat (`GroupStat.decode(body:)`).
public struct ListOneGroupRequest: FDFSRequest, Hashable {
    public var group: String
    public init(group: String) { self.group = group }
    public var command: FDFSCommand { .trackerListOneGroup }
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeFDFSFixedString(group, width: 16)
    }
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> ListOneGroupRequest {
        try Wire.expectLength(body, 16, command: "LIST_ONE_GROUP")
        return ListOneGroupRequest(group: try Wire.readGroup(&body, command: "LIST_ONE_GROUP"))
    }
}

/// LIST_STORAGE (92): group(16) + optional storage ID filter (1–15 bytes, no padding).
public struct ListStorageRequest: FDFSRequest, Hashable {
    public var group: String
    public var storageID: String?
    public init(group: String, storageID: String? = nil) {
        self.group = group
        self.storageID = storageID
    }
    public var command: FDFSCommand { .trackerListStorage }
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeFDFSFixedString(group, width: 16)
        if let storageID, !storageID.isEmpty {
            buffer.writeString(String(decoding: storageID.utf8.prefix(15), as: UTF8.self))
        }
    }
    /// The tracker accepts 16 ≤ length < 32.
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> ListStorageRequest {
        guard (16..<32).contains(body.readableBytes) else {
            throw .invalidLength(command: "LIST_STORAGE", length: body.readableBytes, expected: "16 to 31")
        }
        let group = try Wire.readGroup(&body, command: "LIST_STORAGE")
        let id = body.readFDFSRemainingString()
        return ListStorageRequest(group: group, storageID: id.isEmpty ? nil : id)
    }
}

/// One group stat record: 105 bytes (≤ 6.13.0) or 113 bytes (≥ 6.13.1).
public struct GroupStat: Hashable, Sendable {
    public enum Layout: Hashable, Sendable {
        /// ≤ 6.13.0: name(17) total free trunk_free storage_count port http_port active_count
        /// current_write_server store_path_count subdir_count current_trunk_file_id.
        case v105
        /// ≥ 6.13.1: name(17) total free reserved trunk_free storage_count port readable writable
        /// current_write_server store_path_count subdir_count current_trunk_file_id.
        case v113

        public var recordSize: Int { self == .v105 ? 105 : 113 }
    }

    public var name: String
    public var totalMB: Int64
    public var freeMB: Int64
    /// 0 in the 105-byte layout.
    public var reservedMB: Int64
    public var trunkFreeMB: Int64
    public var storageCount: Int64
    public var storagePort: Int64
    /// 0 in the 113-byte layout. (On 6.13.0 this 105-byte slot holds the readable count.)
    public var httpPort: Int64
    /// Both equal `active_count` in the 105-byte layout.
    public var readableServerCount: Int64
    public var writableServerCount: Int64
    public var currentWriteServer: Int64
    public var storePathCount: Int64
    public var subdirCountPerPath: Int64
    public var currentTrunkFileID: Int64
    public var layout: Layout

    public init(name: String, totalMB: Int64 = 0, freeMB: Int64 = 0, reservedMB: Int64 = 0, trunkFreeMB: Int64 = 0,
                storageCount: Int64 = 0, storagePort: Int64 = 0, httpPort: Int64 = 0,
                readableServerCount: Int64 = 0, writableServerCount: Int64 = 0, currentWriteServer: Int64 = 0,
                storePathCount: Int64 = 0, subdirCountPerPath: Int64 = 0, currentTrunkFileID: Int64 = 0,
                layout: Layout = .v113) {
        self.name = name
        self.totalMB = totalMB
        self.freeMB = freeMB
        self.reservedMB = reservedMB
        self.trunkFreeMB = trunkFreeMB
        self.storageCount = storageCount
        self.storagePort = storagePort
        self.httpPort = httpPort
        self.readableServerCount = readableServerCount
        self.writableServerCount = writableServerCount
        self.currentWriteServer = currentWriteServer
        self.storePathCount = storePathCount
        self.subdirCountPerPath = subdirCountPerPath
        self.currentTrunkFileID = currentTrunkFileID
        self.layout = layout
    }

    public func encode(into buffer: inout ByteBuffer) { encode(into: &buffer, layout: layout) }

    public func encode(into buffer: inout ByteBuffer, layout: Layout) {
        buffer.writeFDFSFixedString(name, width: 17)
        let fields: [Int64]
        switch layout {
        case .v105:
            fields = [totalMB, freeMB, trunkFreeMB, storageCount, storagePort, httpPort, readableServerCount,
                      currentWriteServer, storePathCount, subdirCountPerPath, currentTrunkFileID]
        case .v113:
            fields = [totalMB, freeMB, reservedMB, trunkFreeMB, storageCount, storagePort, readableServerCount,
                      writableServerCount, currentWriteServer, storePathCount, subdirCountPerPath, currentTrunkFileID]
        }
        for field in fields { buffer.writeFDFSInt64(field) }
    }

    /// Exactly one record (LIST_ONE_GROUP reply): 105 or 113 bytes.
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> GroupStat {
        let layout: Layout
        switch body.readableBytes {
        case 105: layout = .v105
        case 113: layout = .v113
        default: throw .invalidLength(command: "LIST_ONE_GROUP response", length: body.readableBytes, expected: "105 or 113")
        }
        return try read(&body, layout: layout)
    }

    /// LIST_ALL_GROUPS reply: concatenated records, all 105 or all 113 bytes (empty → []).
    public static func decodeList(body: inout ByteBuffer) throws(FDFSProtocolError) -> [GroupStat] {
        let command = "LIST_ALL_GROUPS response"
        let length = body.readableBytes
        if length == 0 { return [] }
        var candidates: [Layout] = [.v105, .v113].filter { length % $0.recordSize == 0 }
        if candidates.count > 1 {
            // Ambiguous only for multiples of 11865: keep layouts whose record starts look like names.
            candidates = candidates.filter { layout in
                stride(from: 0, to: length, by: layout.recordSize).allSatisfy { offset in
                    guard let b = body.getInteger(at: body.readerIndex + offset, as: UInt8.self) else { return false }
                    return b > 0x20 && b < 0x7F
                }
            }
        }
        guard candidates.count == 1, let layout = candidates.first else {
            throw .invalidLength(command: command, length: length, expected: "a multiple of 105 or 113")
        }
        var stats: [GroupStat] = []
        stats.reserveCapacity(length / layout.recordSize)
        while body.readableBytes > 0 {
            stats.append(try read(&body, layout: layout))
        }
        return stats
    }

    static func read(_ body: inout ByteBuffer, layout: Layout) throws(FDFSProtocolError) -> GroupStat {
        let command = "group stat"
        let name = try Wire.readFixed(&body, width: 17, command: command)
        var f: [Int64] = []
        for _ in 0..<(layout == .v105 ? 11 : 12) {
            f.append(try Wire.readInt64(&body, command: command))
        }
        switch layout {
        case .v105:
            return GroupStat(name: name, totalMB: f[0], freeMB: f[1], reservedMB: 0, trunkFreeMB: f[2],
                             storageCount: f[3], storagePort: f[4], httpPort: f[5],
                             readableServerCount: f[6], writableServerCount: f[6], currentWriteServer: f[7],
                             storePathCount: f[8], subdirCountPerPath: f[9], currentTrunkFileID: f[10], layout: .v105)
        case .v113:
            return GroupStat(name: name, totalMB: f[0], freeMB: f[1], reservedMB: f[2], trunkFreeMB: f[3],
                             storageCount: f[4], storagePort: f[5], httpPort: 0,
                             readableServerCount: f[6], writableServerCount: f[7], currentWriteServer: f[8],
                             storePathCount: f[9], subdirCountPerPath: f[10], currentTrunkFileID: f[11], layout: .v113)
        }
    }
}
