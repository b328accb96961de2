// Tracker query commands: QUERY_STORE (101/104/106/107), QUERY_FETCH/UPDATE (102/103)
// (§3.0–3.3 of the reference). QUERY_FETCH_ALL (105) lives in QueryFetchAll.swift.
import NIOCore

/// Parses an IP text field of width `width`. The text must be non-empty printable ASCII; with
/// `strict` (used where the layout is guessed from the length) it must look like an IPv4/IPv6
/// address (hex digits, '.', ':', '%' zone), which lets layout detection reject misreadings.
enum IPField {
    static func read(_ buffer: inout ByteBuffer, width: Int, command: String, strict: Bool = false) throws(FDFSProtocolError) -> String {
        guard let bytes = buffer.readBytes(length: width) else {
            throw .malformed(command: command, reason: "truncated \(width)-byte IP field")
        }
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        let text = bytes[..<end]
        guard !text.isEmpty else { throw .malformed(command: command, reason: "empty IP address field") }
        guard strict ? isPlausibleAddress(text) : text.allSatisfy(isPrintable) else {
            throw .malformed(command: command, reason: "IP address field holds non-address bytes")
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// A dotted-quad IPv4 address, or IPv6 text (hex digits, ':', '.', '%' zone, with a ':').
    static func isPlausibleAddress(_ text: ArraySlice<UInt8>) -> Bool {
        if text.contains(UInt8(ascii: ":")) {
            return text.allSatisfy(isAddressByte)
        }
        let parts = text.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        return parts.allSatisfy { part in
            guard (1...3).contains(part.count),
                  part.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return false }
            return part.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) } <= 255
        }
    }

    static func isPrintable(_ b: UInt8) -> Bool { b > 0x20 && b < 0x7F }

    static func isAddressByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
             UInt8(ascii: "A")...UInt8(ascii: "F"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "%"):
            true
        default:
            false
        }
    }

    /// Checks an IP width passed by a caller (15 or 45); anything else is clamped to 15/45.
    static func normalized(_ width: Int) -> Int { width >= 45 ? 45 : 15 }

    /// Both widths, or only the hinted one.
    static func candidates(_ hint: Int?) -> [Int] {
        if let hint { return [normalized(hint)] }
        return [15, 45]
    }
}

/// QUERY_STORE_WITHOUT_GROUP_ONE (101, `group == nil`) / QUERY_STORE_WITH_GROUP_ONE (104).
public struct QueryStoreRequest: FDFSRequest, Hashable {
    public var group: String?
    public init(group: String? = nil) { self.group = group }
    public var command: FDFSCommand { group == nil ? .trackerQueryStoreWithoutGroupOne : .trackerQueryStoreWithGroupOne }
    public func encode(into buffer: inout ByteBuffer) {
        if let group { buffer.writeFDFSFixedString(group, width: FDFSLimits.groupNameMaxLength) }
    }
    /// Empty body → 101 (no group); 16 bytes → 104.
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> QueryStoreRequest {
        switch body.readableBytes {
        case 0: return QueryStoreRequest(group: nil)
        case 16: return QueryStoreRequest(group: try Wire.readGroup(&body, command: "QUERY_STORE"))
        default: throw .invalidLength(command: "QUERY_STORE", length: body.readableBytes, expected: "0 or 16")
        }
    }
    /// Decodes and checks that the body fits the command (101 empty, 104 16 bytes).
    public static func decode(body: inout ByteBuffer, command: FDFSCommand) throws(FDFSProtocolError) -> QueryStoreRequest {
        let expected = command == .trackerQueryStoreWithoutGroupOne || command == .trackerQueryStoreWithoutGroupAll ? 0 : 16
        try Wire.expectLength(body, expected, command: command.name)
        return try decode(body: &body)
    }
}

/// Reply of 101/104: group(16) ip(W) port(8) store_path_index(1); 40 or 70 bytes.
public struct QueryStoreResponse: Hashable, Sendable {
    public var group: String
    public var server: StorageAddress
    public var storePathIndex: UInt8
    public var ipWidth: Int

    public init(group: String, server: StorageAddress, storePathIndex: UInt8, ipWidth: Int = 15) {
        self.group = group
        self.server = server
        self.storePathIndex = storePathIndex
        self.ipWidth = ipWidth
    }

    public func encode(into buffer: inout ByteBuffer) { encode(into: &buffer, ipWidth: ipWidth) }

    public func encode(into buffer: inout ByteBuffer, ipWidth: Int) {
        // The 102/103 reply followed by the store path index byte.
        QueryFetchResponse(group: group, server: server).encode(into: &buffer, ipWidth: ipWidth)
        buffer.writeInteger(storePathIndex)
    }

    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> QueryStoreResponse {
        let command = "QUERY_STORE response"
        // The 102/103 reply (39 or 69 bytes) followed by the store path index byte.
        guard body.readableBytes == 40 || body.readableBytes == 70,
              var head = body.readSlice(length: body.readableBytes - 1),
              let index = body.readInteger(as: UInt8.self) else {
            throw .invalidLength(command: command, length: body.readableBytes, expected: "40 or 70")
        }
        let fetch = try QueryFetchResponse.decode(body: &head, command: command)
        return QueryStoreResponse(group: fetch.group, server: fetch.server, storePathIndex: index, ipWidth: fetch.ipWidth)
    }
}

/// QUERY_STORE_WITHOUT_GROUP_ALL (106, `group == nil`) / QUERY_STORE_WITH_GROUP_ALL (107).
public struct QueryStoreAllRequest: FDFSRequest, Hashable {
    public var group: String?
    public init(group: String? = nil) { self.group = group }
    public var command: FDFSCommand { group == nil ? .trackerQueryStoreWithoutGroupAll : .trackerQueryStoreWithGroupAll }
    public func encode(into buffer: inout ByteBuffer) {
        if let group { buffer.writeFDFSFixedString(group, width: FDFSLimits.groupNameMaxLength) }
    }
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> QueryStoreAllRequest {
        QueryStoreAllRequest(group: try QueryStoreRequest.decode(body: &body).group)
    }
}

/// Reply of 106/107: group(16) + N × (ip(W) port(8)) + store_path_index(1).
public struct QueryStoreAllResponse: Hashable, Sendable {
    public var group: String
    public var servers: [StorageAddress]
    public var storePathIndex: UInt8
    public var ipWidth: Int

    public init(group: String, servers: [StorageAddress], storePathIndex: UInt8, ipWidth: Int = 15) {
        self.group = group
        self.servers = servers
        self.storePathIndex = storePathIndex
        self.ipWidth = ipWidth
    }

    public func encode(into buffer: inout ByteBuffer) { encode(into: &buffer, ipWidth: ipWidth) }

    public func encode(into buffer: inout ByteBuffer, ipWidth: Int) {
        let width = IPField.normalized(ipWidth)
        buffer.writeFDFSFixedString(group, width: 16)
        for server in servers {
            buffer.writeFDFSFixedString(server.host, width: width)
            buffer.writeFDFSInt64(Int64(server.port))
        }
        buffer.writeInteger(storePathIndex)
    }

    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> QueryStoreAllResponse {
        try decode(body: &body, ipWidthHint: nil)
    }

    /// Tries W = 15 and W = 45 (or only the hint) and keeps the reading whose records all parse.
    public static func decode(body: inout ByteBuffer, ipWidthHint: Int?) throws(FDFSProtocolError) -> QueryStoreAllResponse {
        let command = "QUERY_STORE_ALL response"
        let length = body.readableBytes
        var results: [QueryStoreAllResponse] = []
        var lastError: FDFSProtocolError?
        for width in IPField.candidates(ipWidthHint) {
            let records = length - 17
            guard records > 0, records % (width + 8) == 0 else { continue }
            var copy = body
            do throws(FDFSProtocolError) {
                let group = try Wire.readGroup(&copy, command: command)
                var servers: [StorageAddress] = []
                for _ in 0..<(records / (width + 8)) {
                    let host = try IPField.read(&copy, width: width, command: command, strict: true)
                    let port = try Wire.readPort(&copy, command: command)
                    guard port > 0 else { throw .malformed(command: command, reason: "port 0") }
                    servers.append(StorageAddress(host: host, port: port))
                }
                guard let index = copy.readInteger(as: UInt8.self) else {
                    throw .malformed(command: command, reason: "missing store_path_index")
                }
                results.append(QueryStoreAllResponse(group: group, servers: servers, storePathIndex: index, ipWidth: width))
            } catch {
                lastError = error
            }
        }
        if results.count == 1 {
            body.moveReaderIndex(forwardBy: length)
            return results[0]
        }
        if results.count > 1 {
            throw .malformed(command: command, reason: "\(length)-byte body fits both 15- and 45-byte IP fields; pass ipWidthHint")
        }
        if let lastError { throw lastError }
        throw .invalidLength(command: command, length: length, expected: "16 + N×23 + 1 or 16 + N×53 + 1")
    }
}

/// Which tracker query names a file: 102 fetch one, 103 update, 105 fetch all.
public enum QueryFetchKind: Hashable, Sendable {
    case fetchOne, update, fetchAll

    public var command: FDFSCommand {
        switch self {
        case .fetchOne: .trackerQueryFetchOne
        case .update: .trackerQueryUpdate
        case .fetchAll: .trackerQueryFetchAll
        }
    }

    public init?(command: FDFSCommand) {
        switch command {
        case .trackerQueryFetchOne: self = .fetchOne
        case .trackerQueryUpdate: self = .update
        case .trackerQueryFetchAll: self = .fetchAll
        default: return nil
        }
    }
}

/// QUERY_FETCH_ONE (102) / QUERY_UPDATE (103) / QUERY_FETCH_ALL (105): group(16) + filename.
public struct QueryFetchRequest: FDFSRequest, Hashable {
    public var kind: QueryFetchKind
    public var fileID: FileID
    public init(kind: QueryFetchKind, fileID: FileID) {
        self.kind = kind
        self.fileID = fileID
    }
    public var command: FDFSCommand { kind.command }

    /// Writes G16 + the filename, truncated to 128 bytes as the C client does.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeFDFSFixedString(fileID.group, width: 16)
        buffer.writeBytes(fileID.filename.utf8.prefix(FDFSLimits.filenameMaxLength))
    }

    /// Decodes a body; the kind defaults to `.fetchOne` (use `decode(body:kind:)` on a server).
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> QueryFetchRequest {
        try decode(body: &body, kind: .fetchOne)
    }

    /// The tracker accepts 38 ≤ length < 144 (§3.3).
    public static func decode(body: inout ByteBuffer, kind: QueryFetchKind) throws(FDFSProtocolError) -> QueryFetchRequest {
        let command = kind.command.name
        guard (38..<144).contains(body.readableBytes) else {
            throw .invalidLength(command: command, length: body.readableBytes, expected: "38 to 143")
        }
        return QueryFetchRequest(kind: kind, fileID: try FileIDBody.read(&body, command: command))
    }
}

/// G16 + filename bodies (delete, get-metadata, query-info, fetch).
enum FileIDBody {
    static func write(_ fileID: FileID, into buffer: inout ByteBuffer) {
        buffer.writeFDFSFixedString(fileID.group, width: 16)
        buffer.writeString(fileID.filename)
    }

    static func read(_ buffer: inout ByteBuffer, command: String) throws(FDFSProtocolError) -> FileID {
        guard buffer.readableBytes > 16 else {
            throw .invalidLength(command: command, length: buffer.readableBytes, expected: "more than 16")
        }
        let group = try Wire.readGroup(&buffer, command: command)
        let filename = buffer.readFDFSRemainingString()
        return FileID(group: group, filename: filename)
    }
}

/// Reply of 102/103: group(16) ip(W) port(8); 39 or 69 bytes.
public struct QueryFetchResponse: Hashable, Sendable {
    public var group: String
    public var server: StorageAddress
    public var ipWidth: Int

    public init(group: String, server: StorageAddress, ipWidth: Int = 15) {
        self.group = group
        self.server = server
        self.ipWidth = ipWidth
    }

    public func encode(into buffer: inout ByteBuffer) { encode(into: &buffer, ipWidth: ipWidth) }

    public func encode(into buffer: inout ByteBuffer, ipWidth: Int) {
        let width = IPField.normalized(ipWidth)
        buffer.writeFDFSFixedString(group, width: 16)
        buffer.writeFDFSFixedString(server.host, width: width)
        buffer.writeFDFSInt64(Int64(server.port))
    }

    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> QueryFetchResponse {
        try decode(body: &body, command: "QUERY_FETCH response")
    }

    static func decode(body: inout ByteBuffer, command: String) throws(FDFSProtocolError) -> QueryFetchResponse {
        let width: Int
        switch body.readableBytes {
        case 39: width = 15
        case 69: width = 45
        default: throw .invalidLength(command: command, length: body.readableBytes, expected: "39 or 69")
        }
        let group = try Wire.readGroup(&body, command: command)
        let host = try IPField.read(&body, width: width, command: command)
        let port = try Wire.readPort(&body, command: command)
        return QueryFetchResponse(group: group, server: StorageAddress(host: host, port: port), ipWidth: width)
    }
}
