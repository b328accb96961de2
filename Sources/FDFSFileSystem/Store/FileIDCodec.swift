import FuseTypes
#if canImport(Glibc)
import Glibc
#endif

/// Local FastDFS file-id decoding and generation (fastdfs-protocol.md §5). Used by
/// `MemoryFileStore`; the real store uses the codec's `FileIDInfo` through the client.
public enum FileIDCodec {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func base64Encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i + 2 < bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            for s in stride(from: 18, through: 0, by: -6) { out.append(alphabet[Int((n >> UInt32(s)) & 63)]) }
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out.append(alphabet[Int((n >> 18) & 63)]); out.append(alphabet[Int((n >> 12) & 63)])
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out.append(alphabet[Int((n >> 18) & 63)]); out.append(alphabet[Int((n >> 12) & 63)]); out.append(alphabet[Int((n >> 6) & 63)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func base64Decode(_ s: Substring) -> [UInt8]? {
        var vals: [UInt32] = []
        for c in s.utf8 {
            guard let v = alphabet.firstIndex(of: c) else { return nil }
            vals.append(UInt32(v))
        }
        var out: [UInt8] = []
        var i = 0
        while i + 3 < vals.count {
            let n = vals[i] << 18 | vals[i + 1] << 12 | vals[i + 2] << 6 | vals[i + 3]
            out += [UInt8(n >> 16 & 255), UInt8(n >> 8 & 255), UInt8(n & 255)]
            i += 4
        }
        let rest = vals.count - i
        if rest == 2 {
            let n = vals[i] << 18 | vals[i + 1] << 12
            out.append(UInt8(n >> 16 & 255))
        } else if rest == 3 {
            let n = vals[i] << 18 | vals[i + 1] << 12 | vals[i + 2] << 6
            out += [UInt8(n >> 16 & 255), UInt8(n >> 8 & 255)]
        } else if rest == 1 { return nil }
        return out
    }

    static func isUpperHex2(_ s: Substring) -> Bool {
        s.utf8.count == 2 && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 70) }
    }

    /// Splits `GROUP/Mxx/XX/YY/NAME` into its group and remote filename, checking the shape.
    public static func split(_ fileID: String) -> (group: String, filename: Substring)? {
        guard let slash = fileID.firstIndex(of: "/") else { return nil }
        let group = String(fileID[..<slash])
        guard !group.isEmpty, group.utf8.count <= 16 else { return nil }
        return (group, fileID[fileID.index(after: slash)...])
    }

    /// Decodes a file id (§5.3–5.5). Malformed ids throw ENOENT (quiet).
    public static func decode(_ fileID: String) throws(FSError) -> DecodedFileID {
        guard let (_, filename) = split(fileID) else { throw FSError.noent("malformed file id \(fileID)") }
        let parts = filename.split(separator: "/", omittingEmptySubsequences: false)
        guard filename.utf8.count >= 44, filename.utf8.count < 128, parts.count == 4,
              parts[0].utf8.count == 3, parts[0].first == "M", isUpperHex2(parts[0].dropFirst()),
              isUpperHex2(parts[1]), isUpperHex2(parts[2]) else {
            throw FSError.noent("malformed file id \(fileID)")
        }
        let name = parts[3]
        guard name.utf8.count >= 34, let b = base64Decode(name.prefix(27)), b.count == 20 else {
            throw FSError.noent("malformed file id \(fileID): bad base64 name")
        }
        func be32(_ i: Int) -> UInt32 { UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3]) }
        let le = UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24
        let source = (1...16_777_215).contains(le) ? String(le) : "\(b[0]).\(b[1]).\(b[2]).\(b[3])"
        let ts = Int64(be32(4))
        let sizeField = Int64(bitPattern: UInt64(be32(8)) << 32 | UInt64(be32(12)))
        let crc = be32(16)
        let appender = sizeField & (1 << 58) != 0
        let trunkBit = sizeField & (1 << 59) != 0
        let len = filename.utf8.count
        let kind: DecodedFileID.Kind
        if appender { kind = .appender }
        else if len > 60 || (len > 44 && !trunkBit) { kind = .slave }
        else if len == 60 && trunkBit { kind = .trunk }
        else { kind = .normal }
        var size: Int64?
        if kind == .normal || kind == .trunk {
            size = (sizeField < 0 || trunkBit) ? sizeField & 0xFFFF_FFFF : sizeField
        }
        return DecodedFileID(kind: kind, size: size, createTime: ts, crc32: crc, source: source)
    }

    /// Builds a remote filename the way a storage server does (used by the memory store).
    public static func makeFilename(sourceIPv4: (UInt8, UInt8, UInt8, UInt8), timestamp: UInt32, size: Int64,
                                    appender: Bool, crc32: UInt32, ext: String, sub1: Int, sub2: Int,
                                    random: inout some RandomNumberGenerator) -> String {
        var b: [UInt8] = [sourceIPv4.0, sourceIPv4.1, sourceIPv4.2, sourceIPv4.3]
        func put32(_ v: UInt32) { b += [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
        put32(timestamp)
        let high = UInt64(0x8000_0000 | UInt32.random(in: 0...0x7F_FFFF, using: &random))
        var field: UInt64
        if appender { field = high << 32 | (1 << 58) }
        else if size >= 1 << 32 { field = UInt64(size) }
        else { field = high << 32 | UInt64(size) }
        put32(UInt32(field >> 32)); put32(UInt32(field & 0xFFFF_FFFF))
        put32(crc32)
        var ext7: String
        let e = String(ext.prefix(6))
        if e.isEmpty { ext7 = (0..<7).map { _ in String(Int.random(in: 0...9, using: &random)) }.joined() }
        else { ext7 = (0..<(6 - e.utf8.count)).map { _ in String(Int.random(in: 0...9, using: &random)) }.joined() + "." + e }
        func hex2(_ v: Int) -> String { let s = String(v, radix: 16, uppercase: true); return s.count == 1 ? "0" + s : s }
        return "M00/\(hex2(sub1))/\(hex2(sub2))/" + base64Encode(b) + ext7
    }
}

/// Standard CRC-32 (IEEE, zlib).
public enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for x in bytes { c = table[Int((c ^ UInt32(x)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
