// The storage stat record of LIST_STORAGE (92) replies, in all seven sizes (§4.2 of the reference).
//
// Layout A (600/612/642/644, ≤ 6.12): status id(16) ip(16|46) domain(128) src_id(16) version(6|8)
//   10×int64 [join up total free upload_priority store_path_count subdir current_write_path port http_port]
//   stat_buff [3×int32 connection counters (absent in 600), 42×int64] if_trunk_server(1)
// Layout B (509/517/487, ≥ 6.13): status rw_mode id(16) ip(46|16) src_id(16) version(8)
//   9 or 10×int64 [join up total free (reserved, not in 509) upload_priority store_path_count subdir
//   current_write_path port] stat_buff(348) if_trunk_server(1)
import NIOCore

public struct StorageStat: Hashable, Sendable {
    public enum Layout: Hashable, Sendable, CaseIterable {
        case v600, v612, v642, v644, v509, v517, v487

        public var recordSize: Int {
            switch self {
            case .v600: 600
            case .v612: 612
            case .v642: 642
            case .v644: 644
            case .v509: 509
            case .v517: 517
            case .v487: 487
            }
        }

        var isLayoutA: Bool { [.v600, .v612, .v642, .v644].contains(self) }
        var ipSize: Int { [.v600, .v612, .v487].contains(self) ? 16 : 46 }
        var versionSize: Int { [.v600, .v612, .v642].contains(self) ? 6 : 8 }
        var hasConnectionCounters: Bool { self != .v600 }
        var hasReservedMB: Bool { self == .v517 || self == .v487 }
    }

    public static let counterCount = 42

    public var status: UInt8
    /// 0 none, 2 write-only, 4 read-only, 6 both; 6 for layouts without the field.
    public var rwMode: UInt8
    public var id: String
    public var ipAddress: String
    /// Empty for layouts without the field (≥ 6.13).
    public var domainName: String
    public var sourceID: String
    public var version: String
    public var joinTime: Int64
    public var upTime: Int64
    public var totalMB: Int64
    public var freeMB: Int64
    /// 0 for layouts without the field.
    public var reservedMB: Int64
    public var uploadPriority: Int64
    public var storePathCount: Int64
    public var subdirCountPerPath: Int64
    public var currentWritePath: Int64
    public var port: Int64
    /// 0 for layouts without the field (≥ 6.13).
    public var httpPort: Int64
    /// 0 in the 600-byte layout.
    public var connectionAllocCount: Int32
    public var connectionCurrentCount: Int32
    public var connectionMaxCount: Int32
    /// The 42 int64 counters of stat_buff in wire order (see the named accessors).
    public var counters: [Int64]
    public var isTrunkServer: Bool
    public var layout: Layout

    public init(status: UInt8 = 7, rwMode: UInt8 = 6, id: String = "", ipAddress: String = "", domainName: String = "",
                sourceID: String = "", version: String = "", joinTime: Int64 = 0, upTime: Int64 = 0,
                totalMB: Int64 = 0, freeMB: Int64 = 0, reservedMB: Int64 = 0, uploadPriority: Int64 = 0,
                storePathCount: Int64 = 0, subdirCountPerPath: Int64 = 0, currentWritePath: Int64 = 0,
                port: Int64 = 0, httpPort: Int64 = 0, connectionAllocCount: Int32 = 0,
                connectionCurrentCount: Int32 = 0, connectionMaxCount: Int32 = 0,
                counters: [Int64] = Array(repeating: 0, count: StorageStat.counterCount),
                isTrunkServer: Bool = false, layout: Layout = .v487) {
        self.status = status
        self.rwMode = rwMode
        self.id = id
        self.ipAddress = ipAddress
        self.domainName = domainName
        self.sourceID = sourceID
        self.version = version
        self.joinTime = joinTime
        self.upTime = upTime
        self.totalMB = totalMB
        self.freeMB = freeMB
        self.reservedMB = reservedMB
        self.uploadPriority = uploadPriority
        self.storePathCount = storePathCount
        self.subdirCountPerPath = subdirCountPerPath
        self.currentWritePath = currentWritePath
        self.port = port
        self.httpPort = httpPort
        self.connectionAllocCount = connectionAllocCount
        self.connectionCurrentCount = connectionCurrentCount
        self.connectionMaxCount = connectionMaxCount
        self.counters = counters
        self.isTrunkServer = isTrunkServer
        self.layout = layout
    }

    public func encode(into buffer: inout ByteBuffer) { encode(into: &buffer, layout: layout) }

    public func encode(into buffer: inout ByteBuffer, layout: Layout) {
        buffer.writeInteger(status)
        if !layout.isLayoutA { buffer.writeInteger(rwMode) }
        buffer.writeFDFSFixedString(id, width: 16)
        buffer.writeFDFSFixedString(ipAddress, width: layout.ipSize)
        if layout.isLayoutA { buffer.writeFDFSFixedString(domainName, width: 128) }
        buffer.writeFDFSFixedString(sourceID, width: 16)
        buffer.writeFDFSFixedString(version, width: layout.versionSize)
        var fields: [Int64] = [joinTime, upTime, totalMB, freeMB]
        if layout.hasReservedMB { fields.append(reservedMB) }
        fields += [uploadPriority, storePathCount, subdirCountPerPath, currentWritePath, port]
        if layout.isLayoutA { fields.append(httpPort) }
        for field in fields { buffer.writeFDFSInt64(field) }
        if layout.hasConnectionCounters {
            buffer.writeInteger(connectionAllocCount, endianness: .big)
            buffer.writeInteger(connectionCurrentCount, endianness: .big)
            buffer.writeInteger(connectionMaxCount, endianness: .big)
        }
        for i in 0..<Self.counterCount {
            buffer.writeFDFSInt64(i < counters.count ? counters[i] : 0)
        }
        buffer.writeInteger(UInt8(isTrunkServer ? 1 : 0))
    }

    /// LIST_STORAGE reply: concatenated records of one size (empty body → []).
    public static func decodeList(body: inout ByteBuffer) throws(FDFSProtocolError) -> [StorageStat] {
        let length = body.readableBytes
        if length == 0 { return [] }
        var candidates = Layout.allCases.filter { length % $0.recordSize == 0 }
        if candidates.count > 1 {
            // No collision for ≤ 32 servers per group (FDFS_MAX_SERVERS_EACH_GROUP).
            candidates = candidates.filter { length / $0.recordSize <= 32 }
        }
        guard candidates.count == 1, let layout = candidates.first else {
            throw .invalidLength(command: "LIST_STORAGE response", length: length,
                                 expected: "a multiple of one of 600, 612, 642, 644, 509, 517, 487")
        }
        var stats: [StorageStat] = []
        stats.reserveCapacity(length / layout.recordSize)
        while body.readableBytes > 0 {
            stats.append(try read(&body, layout: layout))
        }
        return stats
    }

    /// Exactly one record of any known size.
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> StorageStat {
        guard let layout = Layout.allCases.first(where: { $0.recordSize == body.readableBytes }) else {
            throw .invalidLength(command: "storage stat", length: body.readableBytes,
                                 expected: "600, 612, 642, 644, 509, 517 or 487")
        }
        return try read(&body, layout: layout)
    }

    static func read(_ body: inout ByteBuffer, layout: Layout) throws(FDFSProtocolError) -> StorageStat {
        let command = "storage stat"
        guard body.readableBytes >= layout.recordSize else {
            throw .malformed(command: command, reason: "truncated \(layout.recordSize)-byte record")
        }
        var stat = StorageStat(layout: layout)
        stat.status = body.readInteger(as: UInt8.self) ?? 0
        stat.rwMode = layout.isLayoutA ? 6 : (body.readInteger(as: UInt8.self) ?? 0)
        stat.id = try Wire.readFixed(&body, width: 16, command: command)
        stat.ipAddress = try Wire.readFixed(&body, width: layout.ipSize, command: command)
        if layout.isLayoutA { stat.domainName = try Wire.readFixed(&body, width: 128, command: command) }
        stat.sourceID = try Wire.readFixed(&body, width: 16, command: command)
        stat.version = try Wire.readFixed(&body, width: layout.versionSize, command: command)
        stat.joinTime = try Wire.readInt64(&body, command: command)
        stat.upTime = try Wire.readInt64(&body, command: command)
        stat.totalMB = try Wire.readInt64(&body, command: command)
        stat.freeMB = try Wire.readInt64(&body, command: command)
        if layout.hasReservedMB { stat.reservedMB = try Wire.readInt64(&body, command: command) }
        stat.uploadPriority = try Wire.readInt64(&body, command: command)
        stat.storePathCount = try Wire.readInt64(&body, command: command)
        stat.subdirCountPerPath = try Wire.readInt64(&body, command: command)
        stat.currentWritePath = try Wire.readInt64(&body, command: command)
        stat.port = try Wire.readInt64(&body, command: command)
        if layout.isLayoutA { stat.httpPort = try Wire.readInt64(&body, command: command) }
        if layout.hasConnectionCounters {
            stat.connectionAllocCount = body.readInteger(endianness: .big, as: Int32.self) ?? 0
            stat.connectionCurrentCount = body.readInteger(endianness: .big, as: Int32.self) ?? 0
            stat.connectionMaxCount = body.readInteger(endianness: .big, as: Int32.self) ?? 0
        }
        for i in 0..<counterCount {
            stat.counters[i] = try Wire.readInt64(&body, command: command)
        }
        stat.isTrunkServer = (body.readInteger(as: UInt8.self) ?? 0) != 0
        return stat
    }
}

// Named accessors for the 42 stat_buff counters, in wire order.
extension StorageStat {
    /// Wire positions of the counters in stat_buff (after the three connection counters).
    public enum Counter: Int, CaseIterable, Sendable {
        case totalUploadCount, successUploadCount, totalAppendCount, successAppendCount
        case totalModifyCount, successModifyCount, totalTruncateCount, successTruncateCount
        case totalSetMetaCount, successSetMetaCount, totalDeleteCount, successDeleteCount
        case totalDownloadCount, successDownloadCount, totalGetMetaCount, successGetMetaCount
        case totalCreateLinkCount, successCreateLinkCount, totalDeleteLinkCount, successDeleteLinkCount
        case totalUploadBytes, successUploadBytes, totalAppendBytes, successAppendBytes
        case totalModifyBytes, successModifyBytes, totalDownloadBytes, successDownloadBytes
        case totalSyncInBytes, successSyncInBytes, totalSyncOutBytes, successSyncOutBytes
        case totalFileOpenCount, successFileOpenCount, totalFileReadCount, successFileReadCount
        case totalFileWriteCount, successFileWriteCount
        case lastSourceUpdate, lastSyncUpdate, lastSyncedTimestamp, lastHeartBeatTime
    }

    public subscript(counter: Counter) -> Int64 {
        get { counter.rawValue < counters.count ? counters[counter.rawValue] : 0 }
        set {
            if counters.count < Self.counterCount {
                counters += Array(repeating: 0, count: Self.counterCount - counters.count)
            }
            counters[counter.rawValue] = newValue
        }
    }

    public var totalUploadCount: Int64 { self[.totalUploadCount] }
    public var successUploadCount: Int64 { self[.successUploadCount] }
    public var totalDownloadCount: Int64 { self[.totalDownloadCount] }
    public var successDownloadCount: Int64 { self[.successDownloadCount] }
    public var totalUploadBytes: Int64 { self[.totalUploadBytes] }
    public var totalDownloadBytes: Int64 { self[.totalDownloadBytes] }
    public var lastSourceUpdate: Int64 { self[.lastSourceUpdate] }
    public var lastSyncUpdate: Int64 { self[.lastSyncUpdate] }
    public var lastSyncedTimestamp: Int64 { self[.lastSyncedTimestamp] }
    public var lastHeartBeatTime: Int64 { self[.lastHeartBeatTime] }
}

extension StorageStat {
    /// The tracker's name of a storage status code (reference §4.2): only ACTIVE storages are
    /// handed out by queries.
    public static func statusName(_ status: UInt8) -> String {
        switch status {
        case 0: "INIT"
        case 1: "WAIT_SYNC"
        case 2: "SYNCING"
        case 3: "IP_CHANGED"
        case 4: "DELETED"
        case 5: "OFFLINE"
        case 6: "ONLINE"
        case 7: "ACTIVE"
        case 9: "RECOVERY"
        case 99: "NONE"
        default: "status \(status)"
        }
    }
}
