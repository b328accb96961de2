// ByteBuffer helpers for FastDFS fields: big-endian int64s and NUL-padded fixed-width strings.
import NIOCore

extension ByteBuffer {
    /// Writes a big-endian 8-byte integer (LFC `long2buff`).
    @discardableResult
    public mutating func writeFDFSInt64(_ value: Int64) -> Int {
        writeInteger(value, endianness: .big)
    }

    /// Reads a big-endian 8-byte integer (LFC `buff2long`); nil when fewer than 8 bytes remain.
    public mutating func readFDFSInt64() -> Int64? {
        readInteger(endianness: .big, as: Int64.self)
    }

    /// Writes `s` as UTF-8 into a field of exactly `width` bytes: truncated to `width` bytes,
    /// NUL-padded on the right.
    @discardableResult
    public mutating func writeFDFSFixedString(_ s: String, width: Int) -> Int {
        guard width > 0 else { return 0 }
        let written = writeBytes(s.utf8.prefix(width))
        if written < width {
            writeRepeatingByte(0, count: width - written)
        }
        return width
    }

    /// Reads a `width`-byte field and returns its text up to the first NUL (nil when fewer than
    /// `width` bytes remain). Bytes after the NUL are ignored (servers may leave garbage there).
    public mutating func readFDFSFixedString(width: Int) -> String? {
        guard width >= 0, let bytes = readBytes(length: width) else { return nil }
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    /// Reads the rest of the buffer as UTF-8 text.
    mutating func readFDFSRemainingString() -> String {
        readString(length: readableBytes) ?? ""
    }
}

/// Shared decoding helpers (internal).
enum Wire {
    /// Reads a port field: an int64 that must lie in 0...65535 (throws otherwise).
    static func readPort(_ buffer: inout ByteBuffer, command: String) throws(FDFSProtocolError) -> Int {
        guard let raw = buffer.readFDFSInt64() else {
            throw .malformed(command: command, reason: "truncated port field")
        }
        guard (0...65535).contains(raw) else {
            throw .malformed(command: command, reason: "port field \(raw) is not a TCP port")
        }
        return Int(raw)
    }

    static func readInt64(_ buffer: inout ByteBuffer, command: String) throws(FDFSProtocolError) -> Int64 {
        guard let value = buffer.readFDFSInt64() else {
            throw .malformed(command: command, reason: "truncated 8-byte field")
        }
        return value
    }

    static func readFixed(_ buffer: inout ByteBuffer, width: Int, command: String) throws(FDFSProtocolError) -> String {
        guard let value = buffer.readFDFSFixedString(width: width) else {
            throw .malformed(command: command, reason: "truncated \(width)-byte text field")
        }
        return value
    }

    /// Reads a group name field (16 bytes) that must not be empty.
    static func readGroup(_ buffer: inout ByteBuffer, command: String) throws(FDFSProtocolError) -> String {
        let group = try readFixed(&buffer, width: FDFSLimits.groupNameMaxLength, command: command)
        guard !group.isEmpty else { throw .malformed(command: command, reason: "empty group name") }
        return group
    }

    /// Reads `length` bytes (from a wire length field) as text, with range checks.
    static func readString(_ buffer: inout ByteBuffer, length: Int64, command: String) throws(FDFSProtocolError) -> String {
        guard length >= 0, length <= Int64(buffer.readableBytes), let string = buffer.readString(length: Int(length)) else {
            throw .malformed(command: command, reason: "text length \(length) exceeds the \(buffer.readableBytes) bytes left")
        }
        return string
    }

    /// Throws `.invalidLength` unless the buffer has exactly `expected` readable bytes.
    static func expectLength(_ buffer: ByteBuffer, _ expected: Int, command: String) throws(FDFSProtocolError) {
        guard buffer.readableBytes == expected else {
            throw .invalidLength(command: command, length: buffer.readableBytes, expected: "\(expected)")
        }
    }

    /// `a + b` without overflow traps; nil on overflow.
    static func add(_ values: Int64...) -> Int64? {
        var total: Int64 = 0
        for v in values {
            let (sum, overflow) = total.addingReportingOverflow(v)
            if overflow { return nil }
            total = sum
        }
        return total
    }
}

/// Protocol size limits (§2.1 of the reference).
public enum FDFSLimits {
    public static let groupNameMaxLength = 16
    public static let filePrefixMaxLength = 16
    public static let fileExtMaxLength = 6
    public static let storageIDMaxSize = 16
    /// Remote filenames must be shorter than this (server rule).
    public static let filenameMaxLength = 128
    /// Bytes of `M00/00/00/`.
    public static let logicFilePathLength = 10
    public static let filenameBase64Length = 27
    public static let normalFilenameLength = 44
    public static let trunkFilenameLength = 60
    public static let appenderFlag: Int64 = 1 << 58
    public static let trunkFlag: Int64 = 1 << 59
    public static let maxServerID: UInt32 = 16_777_215
}
