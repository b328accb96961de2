// File ids ("group/M00/XX/YY/name") and their local decoding (§5.1–5.5 of the reference).

/// A FastDFS file id: group name + remote filename.
public struct FileID: Hashable, Sendable, CustomStringConvertible, LosslessStringConvertible, Codable {
    /// 1...16 bytes.
    public var group: String
    /// Remote filename, "M00/00/00/xxxx.ext".
    public var filename: String

    public init(group: String, filename: String) {
        self.group = group
        self.filename = filename
    }

    /// Splits at the FIRST '/'; nil if the group is empty or over 16 bytes, or the filename empty.
    public init?(_ description: String) {
        guard let id = try? Self.parse(description) else { return nil }
        self = id
    }

    /// Like `init?(_:)` with a reason on failure.
    public static func parse(_ s: String) throws(FDFSProtocolError) -> FileID {
        guard let slash = s.firstIndex(of: "/") else {
            throw .invalidFileID(s, reason: "no '/' between group and filename")
        }
        let group = String(s[..<slash])
        let filename = String(s[s.index(after: slash)...])
        guard !group.isEmpty else { throw .invalidFileID(s, reason: "empty group name") }
        guard group.utf8.count <= FDFSLimits.groupNameMaxLength else {
            throw .invalidFileID(s, reason: "group name longer than 16 bytes")
        }
        guard !group.utf8.contains(0) else { throw .invalidFileID(s, reason: "NUL in group name") }
        guard !filename.isEmpty else { throw .invalidFileID(s, reason: "empty remote filename") }
        return FileID(group: group, filename: filename)
    }

    public var description: String { "\(group)/\(filename)" }

    /// Encoded as the single string "group/filename".
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            self = try Self.parse(text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// What a remote filename says about its file without asking a server (§5.3–5.5).
public struct FileIDInfo: Hashable, Sendable {
    public enum Source: Hashable, Sendable {
        /// The source storage's IPv4 address ("192.168.1.104").
        case ipv4(String)
        /// A numeric storage ID (ID mode), 1...16777215.
        case storageID(UInt32)
    }

    public enum Kind: Hashable, Sendable { case normal, appender, slave, trunk }

    public var storePathIndex: Int
    public var subdirectory1: Int
    public var subdirectory2: Int
    public var source: Source
    /// Bytes 4–7 (unsigned, so names made after 2038 still give a positive time).
    public var createTime: Int64
    /// Bytes 8–15 as a signed int64, flags included.
    public var sizeField: Int64
    /// nil for appender and slave files (unknown locally).
    public var size: Int64?
    public var crc32: UInt32
    public var kind: Kind

    public init(storePathIndex: Int, subdirectory1: Int, subdirectory2: Int, source: Source, createTime: Int64,
                sizeField: Int64, size: Int64?, crc32: UInt32, kind: Kind) {
        self.storePathIndex = storePathIndex
        self.subdirectory1 = subdirectory1
        self.subdirectory2 = subdirectory2
        self.source = source
        self.createTime = createTime
        self.sizeField = sizeField
        self.size = size
        self.crc32 = crc32
        self.kind = kind
    }

    /// Decodes a remote filename (without group) like the C client's `fdfs_get_file_info_ex`:
    /// length ≥ 44, `Mxx/XX/YY/` path, 27 base64 characters at offset 10, then §5.5's classification.
    public static func decode(filename: String) throws(FDFSProtocolError) -> FileIDInfo {
        let bytes = Array(filename.utf8)
        guard bytes.count >= FDFSLimits.normalFilenameLength else {
            throw .invalidFileID(filename, reason: "remote filename is \(bytes.count) bytes, at least 44 expected")
        }
        let (index, sub1, sub2) = try parsePath(bytes, filename: filename, strictIndex: false)
        let b27 = bytes[10..<37]
        guard let raw = FDFSBase64.decode(Substring(String(decoding: b27, as: UTF8.self))), raw.count == 20 else {
            throw .invalidFileID(filename, reason: "characters 11–37 are not FastDFS base64")
        }
        let v = UInt32(raw[0]) | UInt32(raw[1]) << 8 | UInt32(raw[2]) << 16 | UInt32(raw[3]) << 24
        let source: Source = (1...FDFSLimits.maxServerID).contains(v)
            ? .storageID(v)
            : .ipv4("\(raw[0]).\(raw[1]).\(raw[2]).\(raw[3])")
        let time = UInt32(raw[4]) << 24 | UInt32(raw[5]) << 16 | UInt32(raw[6]) << 8 | UInt32(raw[7])
        var sizeBits: UInt64 = 0
        for b in raw[8..<16] { sizeBits = sizeBits << 8 | UInt64(b) }
        let sizeField = Int64(bitPattern: sizeBits)
        let crc = UInt32(raw[16]) << 24 | UInt32(raw[17]) << 16 | UInt32(raw[18]) << 8 | UInt32(raw[19])

        let isTrunkBit = sizeField & FDFSLimits.trunkFlag != 0
        let kind: Kind
        if sizeField & FDFSLimits.appenderFlag != 0 {
            kind = .appender
        } else if bytes.count > FDFSLimits.trunkFilenameLength
                    || (bytes.count > FDFSLimits.normalFilenameLength && !isTrunkBit) {
            kind = .slave
        } else if bytes.count == FDFSLimits.trunkFilenameLength && isTrunkBit {
            kind = .trunk
        } else {
            kind = .normal
        }
        let size: Int64?
        switch kind {
        case .appender, .slave:
            size = nil
        case .normal, .trunk:
            size = (sizeField < 0 || isTrunkBit) ? sizeField & 0xFFFF_FFFF : sizeField
        }
        return FileIDInfo(storePathIndex: index, subdirectory1: sub1, subdirectory2: sub2, source: source,
                          createTime: Int64(time), sizeField: sizeField, size: size, crc32: crc, kind: kind)
    }

    /// Strict form check used by servers (§8.3) and the mount: `M` + 2 hex digits + `/` +
    /// 2 uppercase hex + `/` + 2 uppercase hex + `/` + a non-empty name without '/' or NUL,
    /// shorter than 128 bytes in total.
    public static func validate(filename: String) throws(FDFSProtocolError) {
        let bytes = Array(filename.utf8)
        guard bytes.count > FDFSLimits.logicFilePathLength else {
            throw .invalidFileID(filename, reason: "remote filename must be longer than 10 bytes")
        }
        guard bytes.count < FDFSLimits.filenameMaxLength else {
            throw .invalidFileID(filename, reason: "remote filename is \(bytes.count) bytes, limit 127")
        }
        _ = try parsePath(bytes, filename: filename, strictIndex: false)
        let name = bytes[10...]
        guard !name.contains(UInt8(ascii: "/")) else {
            throw .invalidFileID(filename, reason: "'/' after the M00/XX/YY/ path")
        }
        guard !name.contains(0) else { throw .invalidFileID(filename, reason: "NUL byte in filename") }
    }

    /// Parses `Mxx/XX/YY/`. `xx` may be lower or upper hex (the storage uses strtol); `XX`/`YY`
    /// must be uppercase hex.
    static func parsePath(_ b: [UInt8], filename: String, strictIndex: Bool) throws(FDFSProtocolError) -> (Int, Int, Int) {
        guard b.count >= 10 else { throw .invalidFileID(filename, reason: "shorter than the M00/XX/YY/ path") }
        guard b[0] == UInt8(ascii: "M"), b[3] == UInt8(ascii: "/"),
              let hi = hexValue(b[1], uppercaseOnly: strictIndex), let lo = hexValue(b[2], uppercaseOnly: strictIndex) else {
            if filename.contains("/M") && !filename.hasPrefix("M") {
                throw .invalidFileID(filename, reason: "looks like a whole file id; pass only the remote filename after \"group/\"")
            }
            throw .invalidFileID(filename, reason: "does not start with M + two hex digits + '/' (store path)")
        }
        guard let s1h = hexValue(b[4], uppercaseOnly: true), let s1l = hexValue(b[5], uppercaseOnly: true),
              b[6] == UInt8(ascii: "/"),
              let s2h = hexValue(b[7], uppercaseOnly: true), let s2l = hexValue(b[8], uppercaseOnly: true),
              b[9] == UInt8(ascii: "/") else {
            throw .invalidFileID(filename, reason: "subdirectories must be XX/YY/ in uppercase hex")
        }
        return (hi * 16 + lo, s1h * 16 + s1l, s2h * 16 + s2l)
    }

    static func hexValue(_ c: UInt8, uppercaseOnly: Bool) -> Int? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(c - UInt8(ascii: "0"))
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(c - UInt8(ascii: "A")) + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f") where !uppercaseOnly: Int(c - UInt8(ascii: "a")) + 10
        default: nil
        }
    }
}
