// Appender-file commands addressed by filename alone (no group): APPEND (24), MODIFY (34),
// TRUNCATE (36), REGENERATE_APPENDER_FILENAME (38) (§7.7–7.9, §7.11 of the reference).
import NIOCore

/// Shared parser for `L(8) n×int64 filename` heads.
enum FilenameHead {
    /// Returns nil when the head isn't fully buffered. Fields: the int64s after L, the filename
    /// and the number of head bytes. `check` sees L and the fields as soon as they are buffered
    /// (before the filename), so a server can refuse inconsistent lengths without waiting.
    static func parse(
        _ buffer: ByteBuffer, extraFields: Int, command: String,
        check: (_ nameLength: Int64, _ fields: [Int64]) throws(FDFSProtocolError) -> Void = { _, _ in }
    ) throws(FDFSProtocolError) -> ([Int64], String, Int)? {
        let fixed = 8 + 8 * extraFields
        var copy = buffer
        guard copy.readableBytes >= fixed else { return nil }
        let nameLength = copy.readFDFSInt64() ?? -1
        guard nameLength > 0, nameLength < Int64(FDFSLimits.filenameMaxLength) else {
            throw .malformed(command: command, reason: "filename length \(nameLength) outside 1...127")
        }
        var fields: [Int64] = []
        for _ in 0..<extraFields { fields.append(copy.readFDFSInt64() ?? 0) }
        try check(nameLength, fields)
        guard copy.readableBytes >= Int(nameLength), let name = copy.readString(length: Int(nameLength)) else {
            return nil
        }
        return (fields, name, fixed + Int(nameLength))
    }
}

/// APPEND_FILE (24) head: name_len(8) size(8) filename; `length` content bytes follow.
public struct AppendRequestHead: FDFSRequest, Hashable {
    public var filename: String
    public var length: Int64
    public init(filename: String, length: Int64) {
        self.filename = filename
        self.length = length
    }
    public var command: FDFSCommand { .storageAppendFile }
    public var fixedSize: Int { 16 + filename.utf8.count }
    public var contentLength: Int64 { length }
    public var bodyLength: Int64 { Int64(fixedSize) &+ length }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeFDFSInt64(Int64(filename.utf8.count))
        buffer.writeFDFSInt64(length)
        buffer.writeString(filename)
    }

    /// Reads the head and leaves the content in `body`.
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> AppendRequestHead {
        guard let (head, consumed) = try parse(body) else {
            throw .invalidLength(command: "APPEND_FILE", length: body.readableBytes, expected: "at least 16 + filename length")
        }
        body.moveReaderIndex(forwardBy: consumed)
        return head
    }

    /// Server side: nil until the head is buffered; throws unless bodyLength == 16 + L + length
    /// (as soon as the length fields are in).
    public static func decode(head: inout ByteBuffer, bodyLength: Int64) throws(FDFSProtocolError) -> AppendRequestHead? {
        guard bodyLength >= 16 else {
            throw .invalidLength(command: "APPEND_FILE", length: Int(clamping: bodyLength), expected: "at least 16")
        }
        guard let (result, consumed) = try parse(head, bodyLength: bodyLength) else { return nil }
        head.moveReaderIndex(forwardBy: consumed)
        return result
    }

    static func parse(_ buffer: ByteBuffer, bodyLength: Int64? = nil) throws(FDFSProtocolError) -> (AppendRequestHead, Int)? {
        let command = "APPEND_FILE"
        guard let (fields, name, consumed) = try FilenameHead.parse(buffer, extraFields: 1, command: command, check: {
            (nameLength, fields) throws(FDFSProtocolError) in
            guard fields[0] >= 0 else { throw .malformed(command: command, reason: "negative length \(fields[0])") }
            if let bodyLength, Wire.add(16, nameLength, fields[0]) != bodyLength {
                throw .malformed(command: command, reason: "body length \(bodyLength) != \(16 + nameLength) + \(fields[0])")
            }
        }) else {
            return nil
        }
        return (AppendRequestHead(filename: name, length: fields[0]), consumed)
    }
}

/// MODIFY_FILE (34) head: name_len(8) offset(8) size(8) filename; `length` content bytes follow.
public struct ModifyRequestHead: FDFSRequest, Hashable {
    public var filename: String
    public var offset: Int64
    public var length: Int64
    public init(filename: String, offset: Int64, length: Int64) {
        self.filename = filename
        self.offset = offset
        self.length = length
    }
    public var command: FDFSCommand { .storageModifyFile }
    public var fixedSize: Int { 24 + filename.utf8.count }
    public var contentLength: Int64 { length }
    public var bodyLength: Int64 { Int64(fixedSize) &+ length }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeFDFSInt64(Int64(filename.utf8.count))
        buffer.writeFDFSInt64(offset)
        buffer.writeFDFSInt64(length)
        buffer.writeString(filename)
    }

    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> ModifyRequestHead {
        guard let (head, consumed) = try parse(body) else {
            throw .invalidLength(command: "MODIFY_FILE", length: body.readableBytes, expected: "at least 24 + filename length")
        }
        body.moveReaderIndex(forwardBy: consumed)
        return head
    }

    /// Server side: nil until the head is buffered; throws unless bodyLength == 24 + L + length
    /// (as soon as the length fields are in).
    public static func decode(head: inout ByteBuffer, bodyLength: Int64) throws(FDFSProtocolError) -> ModifyRequestHead? {
        guard bodyLength >= 24 else {
            throw .invalidLength(command: "MODIFY_FILE", length: Int(clamping: bodyLength), expected: "at least 24")
        }
        guard let (result, consumed) = try parse(head, bodyLength: bodyLength) else { return nil }
        head.moveReaderIndex(forwardBy: consumed)
        return result
    }

    static func parse(_ buffer: ByteBuffer, bodyLength: Int64? = nil) throws(FDFSProtocolError) -> (ModifyRequestHead, Int)? {
        let command = "MODIFY_FILE"
        guard let (fields, name, consumed) = try FilenameHead.parse(buffer, extraFields: 2, command: command, check: {
            (nameLength, fields) throws(FDFSProtocolError) in
            guard fields[0] >= 0, fields[1] >= 0 else {
                throw .malformed(command: command, reason: "negative offset \(fields[0]) or length \(fields[1])")
            }
            if let bodyLength, Wire.add(24, nameLength, fields[1]) != bodyLength {
                throw .malformed(command: command, reason: "body length \(bodyLength) != \(24 + nameLength) + \(fields[1])")
            }
        }) else {
            return nil
        }
        return (ModifyRequestHead(filename: name, offset: fields[0], length: fields[1]), consumed)
    }
}

/// TRUNCATE_FILE (36): name_len(8) new_size(8) filename; empty reply.
public struct TruncateRequest: FDFSRequest, Hashable {
    public var filename: String
    public var newSize: Int64
    public init(filename: String, newSize: Int64) {
        self.filename = filename
        self.newSize = newSize
    }
    public var command: FDFSCommand { .storageTruncateFile }
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeFDFSInt64(Int64(filename.utf8.count))
        buffer.writeFDFSInt64(newSize)
        buffer.writeString(filename)
    }
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> TruncateRequest {
        let command = "TRUNCATE_FILE"
        guard let (fields, name, consumed) = try FilenameHead.parse(body, extraFields: 1, command: command) else {
            throw .invalidLength(command: command, length: body.readableBytes, expected: "16 + filename length")
        }
        guard consumed == body.readableBytes else {
            throw .invalidLength(command: command, length: body.readableBytes, expected: "\(consumed)")
        }
        guard fields[0] >= 0 else { throw .malformed(command: command, reason: "negative size \(fields[0])") }
        body.moveReaderIndex(forwardBy: consumed)
        return TruncateRequest(filename: name, newSize: fields[0])
    }
}

/// REGENERATE_APPENDER_FILENAME (38): the appender filename alone; reply `UploadResponse`.
public struct RegenerateAppenderRequest: FDFSRequest, Hashable {
    public var filename: String
    public init(filename: String) { self.filename = filename }
    public var command: FDFSCommand { .storageRegenerateAppenderFilename }
    public func encode(into buffer: inout ByteBuffer) { buffer.writeString(filename) }
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> RegenerateAppenderRequest {
        let length = body.readableBytes
        guard length > 0, length < FDFSLimits.filenameMaxLength else {
            throw .invalidLength(command: "REGENERATE_APPENDER_FILENAME", length: length, expected: "1 to 127")
        }
        return RegenerateAppenderRequest(filename: body.readFDFSRemainingString())
    }
}
