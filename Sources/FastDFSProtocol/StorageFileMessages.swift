// Storage commands addressed by file id: DELETE (12), GET_METADATA (15), SET_METADATA (13),
// DOWNLOAD (14), QUERY_FILE_INFO (22) and their replies (§7.3–7.6, §7.10 of the reference).
import NIOCore

/// DELETE_FILE (12): G16 + filename; empty reply.
public struct DeleteRequest: FDFSRequest, Hashable {
    public var fileID: FileID
    public init(fileID: FileID) { self.fileID = fileID }
    public var command: FDFSCommand { .storageDeleteFile }
    public func encode(into buffer: inout ByteBuffer) { FileIDBody.write(fileID, into: &buffer) }
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> DeleteRequest {
        DeleteRequest(fileID: try FileIDBody.read(&body, command: "DELETE_FILE"))
    }
}

/// GET_METADATA (15): G16 + filename; reply `GetMetadataResponse`.
public struct GetMetadataRequest: FDFSRequest, Hashable {
    public var fileID: FileID
    public init(fileID: FileID) { self.fileID = fileID }
    public var command: FDFSCommand { .storageGetMetadata }
    public func encode(into buffer: inout ByteBuffer) { FileIDBody.write(fileID, into: &buffer) }
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> GetMetadataRequest {
        GetMetadataRequest(fileID: try FileIDBody.read(&body, command: "GET_METADATA"))
    }
}

/// QUERY_FILE_INFO (22): G16 + filename, flags in the header status byte.
public struct QueryFileInfoRequest: FDFSRequest, Hashable {
    public var fileID: FileID
    public var flags: FDFSQueryFileInfoFlags
    public init(fileID: FileID, flags: FDFSQueryFileInfoFlags = []) {
        self.fileID = fileID
        self.flags = flags
    }
    public var command: FDFSCommand { .storageQueryFileInfo }
    public var headerStatus: UInt8 { flags.rawValue }
    public func encode(into buffer: inout ByteBuffer) { FileIDBody.write(fileID, into: &buffer) }
    /// Flags are not in the body: this returns empty flags (see `decode(body:headerStatus:)`).
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> QueryFileInfoRequest {
        try decode(body: &body, headerStatus: 0)
    }
    public static func decode(body: inout ByteBuffer, headerStatus: UInt8) throws(FDFSProtocolError) -> QueryFileInfoRequest {
        QueryFileInfoRequest(fileID: try FileIDBody.read(&body, command: "QUERY_FILE_INFO"),
                             flags: FDFSQueryFileInfoFlags(rawValue: headerStatus))
    }
}

/// SET_METADATA flag byte.
public enum MetadataMode: UInt8, Hashable, Sendable {
    case overwrite = 0x4F  // 'O'
    case merge = 0x4D      // 'M'
}

/// SET_METADATA (13): name_len(8) meta_len(8) flag(1) G16 filename metadata; empty reply.
public struct SetMetadataRequest: FDFSRequest, Hashable {
    public var fileID: FileID
    public var mode: MetadataMode
    public var metadata: FDFSMetadata
    public init(fileID: FileID, mode: MetadataMode, metadata: FDFSMetadata) {
        self.fileID = fileID
        self.mode = mode
        self.metadata = metadata
    }
    public var command: FDFSCommand { .storageSetMetadata }

    /// Metadata goes on the wire in the caller's order, as the C client sends it.
    public func encode(into buffer: inout ByteBuffer) {
        let packed = metadata.packed(sorted: false)
        buffer.writeFDFSInt64(Int64(fileID.filename.utf8.count))
        buffer.writeFDFSInt64(Int64(packed.count))
        buffer.writeInteger(mode.rawValue)
        buffer.writeFDFSFixedString(fileID.group, width: 16)
        buffer.writeString(fileID.filename)
        buffer.writeBytes(packed)
    }

    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> SetMetadataRequest {
        let packed = try decodePacked(body: &body)
        return SetMetadataRequest(fileID: packed.fileID, mode: packed.mode, metadata: FDFSMetadata.unpack(packed.metadata))
    }

    /// Server side: the request with its metadata left as the bytes sent (a storage keeps them
    /// byte for byte, whatever their encoding).
    public static func decodePacked(body: inout ByteBuffer) throws(FDFSProtocolError)
        -> (fileID: FileID, mode: MetadataMode, metadata: [UInt8])
    {
        let command = "SET_METADATA"
        let length = body.readableBytes
        guard length >= 33 else {
            throw .invalidLength(command: command, length: length, expected: "at least 33")
        }
        var copy = body
        let nameLength = copy.readFDFSInt64() ?? -1
        let metaLength = copy.readFDFSInt64() ?? -1
        guard nameLength > 0, nameLength < Int64(FDFSLimits.filenameMaxLength) else {
            throw .malformed(command: command, reason: "filename length \(nameLength) outside 1...127")
        }
        guard metaLength >= 0, Wire.add(33, nameLength, metaLength) == Int64(length) else {
            throw .malformed(command: command, reason: "body length \(length) != 33 + \(nameLength) + \(metaLength)")
        }
        let flag = copy.readInteger(as: UInt8.self) ?? 0
        guard let mode = MetadataMode(rawValue: flag) else {
            throw .malformed(command: command, reason: "flag byte \(flag) is neither 'O' nor 'M'")
        }
        let group = try Wire.readGroup(&copy, command: command)
        let filename = try Wire.readString(&copy, length: nameLength, command: command)
        let bytes = copy.readBytes(length: copy.readableBytes) ?? []
        body = copy
        return (FileID(group: group, filename: filename), mode, bytes)
    }
}

/// Reply of GET_METADATA: the packed metadata (the storage keeps it sorted).
public struct GetMetadataResponse: Hashable, Sendable {
    public var metadata: FDFSMetadata
    public init(metadata: FDFSMetadata) { self.metadata = metadata }
    /// Writes the entries in their stored order (a server sorts them when storing).
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeBytes(metadata.packed(sorted: false))
    }
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> GetMetadataResponse {
        let bytes = body.readBytes(length: body.readableBytes) ?? []
        return GetMetadataResponse(metadata: FDFSMetadata.unpack(bytes))
    }
}

/// DOWNLOAD_FILE (14): offset(8) count(8) G16 filename; the reply body is the raw bytes.
public struct DownloadRequest: FDFSRequest, Hashable {
    public var fileID: FileID
    public var offset: Int64
    /// 0 = to the end of the file.
    public var length: Int64
    public init(fileID: FileID, offset: Int64 = 0, length: Int64 = 0) {
        self.fileID = fileID
        self.offset = offset
        self.length = length
    }
    public var command: FDFSCommand { .storageDownloadFile }
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeFDFSInt64(offset)
        buffer.writeFDFSInt64(length)
        FileIDBody.write(fileID, into: &buffer)
    }
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> DownloadRequest {
        let command = "DOWNLOAD_FILE"
        guard body.readableBytes > 32 else {
            throw .invalidLength(command: command, length: body.readableBytes, expected: "more than 32")
        }
        let offset = try Wire.readInt64(&body, command: command)
        let length = try Wire.readInt64(&body, command: command)
        guard offset >= 0, length >= 0 else {
            throw .malformed(command: command, reason: "negative offset \(offset) or count \(length)")
        }
        return DownloadRequest(fileID: try FileIDBody.read(&body, command: command), offset: offset, length: length)
    }
}

/// Reply of QUERY_FILE_INFO: size(8) mtime(8) crc32(8, sign-extended) source_ip(16|46).
public struct QueryFileInfoResponse: Hashable, Sendable {
    public var size: Int64
    /// The file's mtime (not the creation time in the name).
    public var modifyTime: Int64
    public var crc32: UInt32
    /// Empty when the storage can't map an ID to an address.
    public var sourceIP: String
    /// 16 (40-byte reply) or 46 (70-byte reply).
    public var ipFieldWidth: Int

    public init(size: Int64, modifyTime: Int64, crc32: UInt32, sourceIP: String, ipFieldWidth: Int = 16) {
        self.size = size
        self.modifyTime = modifyTime
        self.crc32 = crc32
        self.sourceIP = sourceIP
        self.ipFieldWidth = ipFieldWidth
    }

    public func encode(into buffer: inout ByteBuffer) { encode(into: &buffer, ipFieldWidth: ipFieldWidth) }

    public func encode(into buffer: inout ByteBuffer, ipFieldWidth: Int) {
        buffer.writeFDFSInt64(size)
        buffer.writeFDFSInt64(modifyTime)
        buffer.writeFDFSInt64(Int64(Int32(bitPattern: crc32)))
        buffer.writeFDFSFixedString(sourceIP, width: ipFieldWidth >= 46 ? 46 : 16)
    }

    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> QueryFileInfoResponse {
        let command = "QUERY_FILE_INFO response"
        let width: Int
        switch body.readableBytes {
        case 40: width = 16
        case 70: width = 46
        default: throw .invalidLength(command: command, length: body.readableBytes, expected: "40 or 70")
        }
        let size = try Wire.readInt64(&body, command: command)
        let mtime = try Wire.readInt64(&body, command: command)
        let crc = try Wire.readInt64(&body, command: command)
        let ip = try Wire.readFixed(&body, width: width, command: command)
        return QueryFileInfoResponse(size: size, modifyTime: mtime, crc32: UInt32(truncatingIfNeeded: crc),
                                     sourceIP: ip, ipFieldWidth: width)
    }
}
