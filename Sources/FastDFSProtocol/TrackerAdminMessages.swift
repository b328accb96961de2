// Tracker commands outside the core client set: GET_LEADER (95), VOLUME_STAT (98, 6.15.5+),
// PARAMETER_REQ (75) and FETCH_STORAGE_IDS (69) (§2.2, §3.8 of the reference; layouts of 95/98
// as captured from 6.16.1 in Tests/ProtocolVectors).
import NIOCore

/// GET_LEADER (95): empty body; the reply is the leader's "ip:port" as plain text.
public struct GetLeaderRequest: FDFSRequest, Hashable {
    public init() {}
    public var command: FDFSCommand { .trackerGetLeader }
    public func encode(into buffer: inout ByteBuffer) {}
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> GetLeaderRequest {
        try Wire.expectLength(body, 0, command: "GET_LEADER")
        return GetLeaderRequest()
    }
}

public struct GetLeaderResponse: Hashable, Sendable {
    public var leader: StorageAddress
    public init(leader: StorageAddress) { self.leader = leader }
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeString("\(leader.host):\(leader.port)")
    }
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> GetLeaderResponse {
        let command = "GET_LEADER response"
        guard body.readableBytes > 0, body.readableBytes <= 64 else {
            throw .invalidLength(command: command, length: body.readableBytes, expected: "1 to 64")
        }
        let text = body.readFDFSRemainingString()
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (1...65535).contains(port) else {
            throw .malformed(command: command, reason: "\"\(text)\" is not ip:port")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw .malformed(command: command, reason: "empty host in \"\(text)\"") }
        return GetLeaderResponse(leader: StorageAddress(host: host, port: port))
    }
}

/// VOLUME_STAT (98): a 4-byte filter (all zero = every group).
public struct VolumeStatRequest: FDFSRequest, Hashable {
    public var filter: UInt32
    public init(filter: UInt32 = 0) { self.filter = filter }
    public var command: FDFSCommand { .trackerVolumeStat }
    public func encode(into buffer: inout ByteBuffer) { buffer.writeInteger(filter, endianness: .big) }
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> VolumeStatRequest {
        try Wire.expectLength(body, 4, command: "VOLUME_STAT")
        return VolumeStatRequest(filter: body.readInteger(endianness: .big, as: UInt32.self) ?? 0)
    }
}

/// VOLUME_STAT reply: use_trunk(1) count(int32) + count × 59-byte group records.
public struct VolumeStatResponse: Hashable, Sendable {
    public struct Group: Hashable, Sendable {
        public var name: String
        public var totalMB: Int64
        public var freeMB: Int64
        public var reservedMB: Int64
        public var availableMB: Int64
        public var trunkFreeMB: Int64
        public var diskOK: Bool
        public var trunkOK: Bool
        public init(name: String, totalMB: Int64, freeMB: Int64, reservedMB: Int64, availableMB: Int64,
                    trunkFreeMB: Int64, diskOK: Bool, trunkOK: Bool) {
            self.name = name
            self.totalMB = totalMB
            self.freeMB = freeMB
            self.reservedMB = reservedMB
            self.availableMB = availableMB
            self.trunkFreeMB = trunkFreeMB
            self.diskOK = diskOK
            self.trunkOK = trunkOK
        }
    }

    public static let groupRecordSize = 59
    public var useTrunk: Bool
    public var groups: [Group]

    public init(useTrunk: Bool, groups: [Group]) {
        self.useTrunk = useTrunk
        self.groups = groups
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(useTrunk ? 1 : 0))
        buffer.writeInteger(Int32(truncatingIfNeeded: groups.count), endianness: .big)
        for g in groups {
            buffer.writeFDFSFixedString(g.name, width: 17)
            for v in [g.totalMB, g.freeMB, g.reservedMB, g.availableMB, g.trunkFreeMB] { buffer.writeFDFSInt64(v) }
            buffer.writeInteger(UInt8(g.diskOK ? 1 : 0))
            buffer.writeInteger(UInt8(g.trunkOK ? 1 : 0))
        }
    }

    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> VolumeStatResponse {
        let command = "VOLUME_STAT response"
        let length = body.readableBytes
        guard length >= 5, let trunk = body.getInteger(at: body.readerIndex, as: UInt8.self),
              let count = body.getInteger(at: body.readerIndex + 1, endianness: .big, as: Int32.self) else {
            throw .invalidLength(command: command, length: length, expected: "at least 5")
        }
        guard count >= 0, Int64(count) * Int64(groupRecordSize) + 5 == Int64(length) else {
            throw .invalidLength(command: command, length: length, expected: "5 + \(count) × 59")
        }
        body.moveReaderIndex(forwardBy: 5)
        var groups: [Group] = []
        for _ in 0..<Int(count) {
            let name = try Wire.readFixed(&body, width: 17, command: command)
            var v: [Int64] = []
            for _ in 0..<5 { v.append(try Wire.readInt64(&body, command: command)) }
            let disk = body.readInteger(as: UInt8.self) ?? 0
            let trunkOK = body.readInteger(as: UInt8.self) ?? 0
            groups.append(Group(name: name, totalMB: v[0], freeMB: v[1], reservedMB: v[2], availableMB: v[3],
                                trunkFreeMB: v[4], diskOK: disk != 0, trunkOK: trunkOK != 0))
        }
        return VolumeStatResponse(useTrunk: trunk != 0, groups: groups)
    }
}

/// PARAMETER_REQ (75): empty body; the reply is `key=value\n` text.
public struct ParameterRequest: FDFSRequest, Hashable {
    public init() {}
    public var command: FDFSCommand { .trackerParameterReq }
    public func encode(into buffer: inout ByteBuffer) {}
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> ParameterRequest {
        try Wire.expectLength(body, 0, command: "PARAMETER_REQ")
        return ParameterRequest()
    }
}

public struct ParameterResponse: Hashable, Sendable {
    /// In order of appearance.
    public var parameters: [String: String]
    public init(parameters: [String: String]) { self.parameters = parameters }
    /// Lines sorted by key for a deterministic body.
    public func encode(into buffer: inout ByteBuffer) {
        for key in parameters.keys.sorted() { buffer.writeString("\(key)=\(parameters[key] ?? "")\n") }
    }
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> ParameterResponse {
        var result: [String: String] = [:]
        for line in body.readFDFSRemainingString().split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            guard let eq = line.firstIndex(of: "=") else { continue }
            result[String(line[..<eq]).trimmingSpaces] = String(line[line.index(after: eq)...]).trimmingSpaces
        }
        return ParameterResponse(parameters: result)
    }
    public var useStorageID: Bool {
        guard let v = parameters["use_storage_id"]?.lowercased() else { return false }
        return ["1", "true", "yes", "on"].contains(v)
    }
}

/// FETCH_STORAGE_IDS (69): start_index(int32) (+ allow_empty(1) from 6.11).
public struct FetchStorageIDsRequest: FDFSRequest, Hashable {
    public var startIndex: Int32
    /// nil = the 4-byte pre-6.11 form.
    public var allowEmpty: Bool?
    public init(startIndex: Int32 = 0, allowEmpty: Bool? = nil) {
        self.startIndex = startIndex
        self.allowEmpty = allowEmpty
    }
    public var command: FDFSCommand { .trackerFetchStorageIDs }
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(startIndex, endianness: .big)
        if let allowEmpty { buffer.writeInteger(UInt8(allowEmpty ? 1 : 0)) }
    }
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> FetchStorageIDsRequest {
        let length = body.readableBytes
        guard length == 4 || length == 5 else {
            throw .invalidLength(command: "FETCH_STORAGE_IDS", length: length, expected: "4 or 5")
        }
        let start = body.readInteger(endianness: .big, as: Int32.self) ?? 0
        let allow = length == 5 ? (body.readInteger(as: UInt8.self) ?? 0) != 0 : nil
        return FetchStorageIDsRequest(startIndex: start, allowEmpty: allow)
    }
}

/// FETCH_STORAGE_IDS reply: total(int32) count(int32) + "<id> <group> <ip>[:port][ rw=...]\n" lines.
public struct FetchStorageIDsResponse: Hashable, Sendable {
    public var total: Int32
    public var lines: [String]
    public init(total: Int32, lines: [String]) {
        self.total = total
        self.lines = lines
    }
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(total, endianness: .big)
        buffer.writeInteger(Int32(truncatingIfNeeded: lines.count), endianness: .big)
        for line in lines { buffer.writeString(line + "\n") }
    }
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> FetchStorageIDsResponse {
        let command = "FETCH_STORAGE_IDS response"
        guard body.readableBytes >= 8, let total = body.readInteger(endianness: .big, as: Int32.self),
              let count = body.readInteger(endianness: .big, as: Int32.self) else {
            throw .invalidLength(command: command, length: body.readableBytes, expected: "at least 8")
        }
        let lines = body.readFDFSRemainingString().split(separator: "\n").map(String.init)
        guard count >= 0, lines.count == Int(count), total >= count else {
            throw .malformed(command: command, reason: "count \(count) / total \(total) disagree with \(lines.count) lines")
        }
        return FetchStorageIDsResponse(total: total, lines: lines)
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" || s.last == "\r" { s.removeLast() }
        return String(s)
    }
}
