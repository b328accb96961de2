// Storage uploads: UPLOAD_FILE (11), UPLOAD_APPENDER_FILE (23), UPLOAD_SLAVE_FILE (21) heads
// and the G16 + filename reply they share with REGENERATE_APPENDER_FILENAME (§7.1, §7.2, §7.11).
import NIOCore

/// UPLOAD_FILE (11) / UPLOAD_APPENDER_FILE (23) head: index(1) size(8) ext(6); `fileSize`
/// content bytes follow.
public struct UploadRequestHead: FDFSRequest, Hashable {
    public static let fixedSize = 15
    /// 0xFF (−1) lets the storage choose.
    public var storePathIndex: UInt8
    public var fileSize: Int64
    /// Extension without the dot (≤ 6 bytes, may be empty).
    public var ext: String
    public var appender: Bool

    public init(storePathIndex: UInt8, fileSize: Int64, ext: String, appender: Bool = false) {
        self.storePathIndex = storePathIndex
        self.fileSize = fileSize
        self.ext = ext
        self.appender = appender
    }

    public var command: FDFSCommand { appender ? .storageUploadAppenderFile : .storageUploadFile }
    public var contentLength: Int64 { fileSize }
    public var bodyLength: Int64 { Int64(Self.fixedSize) &+ fileSize }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(storePathIndex)
        buffer.writeFDFSInt64(fileSize)
        buffer.writeFDFSFixedString(ext, width: FDFSLimits.fileExtMaxLength)
    }

    /// Reads the 15-byte head and leaves the content in `body` (appender = false; see
    /// `decode(body:command:)`).
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> UploadRequestHead {
        try decode(body: &body, command: .storageUploadFile)
    }

    public static func decode(body: inout ByteBuffer, command: FDFSCommand) throws(FDFSProtocolError) -> UploadRequestHead {
        guard body.readableBytes >= fixedSize else {
            throw .invalidLength(command: command.name, length: body.readableBytes, expected: "at least 15")
        }
        return try readHead(&body, command: command)
    }

    /// Server side: nil (reader index untouched) until 15 bytes are buffered; throws unless
    /// `bodyLength == 15 + fileSize`.
    public static func decode(head: inout ByteBuffer, bodyLength: Int64) throws(FDFSProtocolError) -> UploadRequestHead? {
        try decode(head: &head, bodyLength: bodyLength, command: .storageUploadFile)
    }

    public static func decode(head: inout ByteBuffer, bodyLength: Int64, command: FDFSCommand) throws(FDFSProtocolError) -> UploadRequestHead? {
        guard bodyLength >= Int64(fixedSize) else {
            throw .invalidLength(command: command.name, length: Int(clamping: bodyLength), expected: "at least 15")
        }
        guard head.readableBytes >= fixedSize else { return nil }
        var copy = head
        let result = try readHead(&copy, command: command)
        guard result.fileSize >= 0, Wire.add(Int64(fixedSize), result.fileSize) == bodyLength else {
            throw .malformed(command: command.name, reason: "body length \(bodyLength) != 15 + file size \(result.fileSize)")
        }
        head = copy
        return result
    }

    static func readHead(_ body: inout ByteBuffer, command: FDFSCommand) throws(FDFSProtocolError) -> UploadRequestHead {
        guard let index = body.readInteger(as: UInt8.self), let size = body.readFDFSInt64(),
              let ext = body.readFDFSFixedString(width: FDFSLimits.fileExtMaxLength) else {
            throw .malformed(command: command.name, reason: "truncated head")
        }
        guard size >= 0 else { throw .malformed(command: command.name, reason: "negative file size \(size)") }
        return UploadRequestHead(storePathIndex: index, fileSize: size, ext: ext,
                                 appender: command == .storageUploadAppenderFile)
    }
}

/// Reply of upload, upload appender, upload slave and regenerate: G16 + remote filename.
public struct UploadResponse: Hashable, Sendable {
    public var fileID: FileID
    public init(fileID: FileID) { self.fileID = fileID }

    public func encode(into buffer: inout ByteBuffer) {
        FileIDBody.write(fileID, into: &buffer)
    }

    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> UploadResponse {
        let command = "UPLOAD response"
        guard body.readableBytes > 16 else {
            throw .invalidLength(command: command, length: body.readableBytes, expected: "more than 16")
        }
        guard body.readableBytes - 16 < FDFSLimits.filenameMaxLength else {
            throw .malformed(command: command, reason: "remote filename of \(body.readableBytes - 16) bytes is too long (limit 127)")
        }
        return UploadResponse(fileID: try FileIDBody.read(&body, command: command))
    }
}

/// UPLOAD_SLAVE_FILE (21) head: master_len(8) size(8) prefix(16) ext(6) master filename;
/// `fileSize` content bytes follow.
public struct UploadSlaveRequestHead: FDFSRequest, Hashable {
    public var masterFilename: String
    public var fileSize: Int64
    public var prefix: String
    public var ext: String

    public init(masterFilename: String, fileSize: Int64, prefix: String, ext: String) {
        self.masterFilename = masterFilename
        self.fileSize = fileSize
        self.prefix = prefix
        self.ext = ext
    }

    public var command: FDFSCommand { .storageUploadSlaveFile }
    public var fixedSize: Int { 38 + masterFilename.utf8.count }
    public var contentLength: Int64 { fileSize }
    public var bodyLength: Int64 { Int64(fixedSize) &+ fileSize }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeFDFSInt64(Int64(masterFilename.utf8.count))
        buffer.writeFDFSInt64(fileSize)
        buffer.writeFDFSFixedString(prefix, width: FDFSLimits.filePrefixMaxLength)
        buffer.writeFDFSFixedString(ext, width: FDFSLimits.fileExtMaxLength)
        buffer.writeString(masterFilename)
    }

    /// Reads just the head and leaves the content in `body`.
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> UploadSlaveRequestHead {
        guard let (head, consumed) = try parse(body) else {
            throw .invalidLength(command: "UPLOAD_SLAVE_FILE", length: body.readableBytes, expected: "at least 38 + master filename length")
        }
        body.moveReaderIndex(forwardBy: consumed)
        return head
    }

    /// Server side: nil until the head is buffered; throws unless bodyLength == 38 + L + size
    /// (as soon as the two length fields are in, so a wrong length never waits for bytes that
    /// will not come).
    public static func decode(head: inout ByteBuffer, bodyLength: Int64) throws(FDFSProtocolError) -> UploadSlaveRequestHead? {
        let command = "UPLOAD_SLAVE_FILE"
        guard bodyLength >= 38 else {
            throw .invalidLength(command: command, length: Int(clamping: bodyLength), expected: "at least 38")
        }
        guard let (result, consumed) = try parse(head, bodyLength: bodyLength) else { return nil }
        head.moveReaderIndex(forwardBy: consumed)
        return result
    }

    /// nil when the head is not fully buffered; the number of head bytes otherwise. With
    /// `bodyLength`, throws unless it equals 38 + L + size.
    static func parse(_ buffer: ByteBuffer, bodyLength: Int64? = nil) throws(FDFSProtocolError) -> (UploadSlaveRequestHead, Int)? {
        let command = "UPLOAD_SLAVE_FILE"
        var copy = buffer
        guard copy.readableBytes >= 16 else { return nil }
        let nameLength = copy.readFDFSInt64() ?? -1
        let size = copy.readFDFSInt64() ?? -1
        guard nameLength > 0, nameLength < Int64(FDFSLimits.filenameMaxLength) else {
            throw .malformed(command: command, reason: "master filename length \(nameLength) outside 1...127")
        }
        guard size >= 0 else { throw .malformed(command: command, reason: "negative file size \(size)") }
        if let bodyLength, Wire.add(38, nameLength, size) != bodyLength {
            throw .malformed(command: command, reason: "body length \(bodyLength) != \(38 + nameLength) + file size \(size)")
        }
        guard copy.readableBytes >= 22 + Int(nameLength) else { return nil }
        let prefix = copy.readFDFSFixedString(width: FDFSLimits.filePrefixMaxLength) ?? ""
        let ext = copy.readFDFSFixedString(width: FDFSLimits.fileExtMaxLength) ?? ""
        guard let master = copy.readString(length: Int(nameLength)) else { return nil }
        return (UploadSlaveRequestHead(masterFilename: master, fileSize: size, prefix: prefix, ext: ext), 38 + Int(nameLength))
    }
}
