// Remote filename generation for servers (§5.1–5.6 and §8.2 of the reference).

public enum FDFSFilename {
    /// Base64 of the 20 name bytes: source(4) timestamp(4) sizeField(8) crc32(4), 27 characters.
    /// `source` is written big-endian, so pass the 4 octets as the wire keeps them:
    /// `sourceField(ipv4:)` or `sourceField(storageID:)`.
    public static func encode20(source: UInt32, timestamp: UInt32, sizeField: Int64, crc32: UInt32) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(20)
        func put<T: FixedWidthInteger>(_ v: T) {
            let be = v.bigEndian
            withUnsafeBytes(of: be) { bytes += $0 }
        }
        put(source)
        put(timestamp)
        put(sizeField)
        put(crc32)
        return FDFSBase64.encode(bytes)
    }

    /// The `source` value for an IPv4 source (octets in network order): "192.168.1.104" → 0xC0A80168.
    public static func sourceField(ipv4: String) -> UInt32? {
        let parts = ipv4.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard p.count <= 3, let octet = UInt8(p) else { return nil }
            v = v << 8 | UInt32(octet)
        }
        return v
    }

    /// The `source` value for a numeric storage ID, which servers store little-endian:
    /// 100001 → bytes A1 86 01 00 → 0xA1860100.
    public static func sourceField(storageID: UInt32) -> UInt32 { storageID.byteSwapped }

    /// Size field for a new normal or appender file (M's encoding, §5.4): normal files under
    /// 4 GiB get `0x80000000 | (randomHigh & 0x7FFFFF)` as high word; ≥ 4 GiB the plain size;
    /// appenders the random high word OR 2^58 and low word 0.
    public static func makeSizeField(size: Int64, appender: Bool, randomHigh: UInt32) -> Int64 {
        let high = Int64(0x8000_0000 | (randomHigh & 0x7F_FFFF)) << 32
        if appender { return high | FDFSLimits.appenderFlag }
        if size >= 0 && size < (1 << 32) { return high | size }
        return size
    }

    /// EXT7: with extension `e` (1–6 chars), `6 − len(e)` random digits + "." + e; with none,
    /// 7 random digits. Longer extensions are cut to 6 bytes.
    public static func formatExt(_ ext: String, randomDigits: some RandomNumberGenerator) -> String {
        var rng = randomDigits
        return formatExt(ext, randomDigits: &rng)
    }

    public static func formatExt(_ ext: String, randomDigits: inout some RandomNumberGenerator) -> String {
        // Whole characters only, so a multi-byte character is never split.
        var e = ""
        for c in ext {
            if e.utf8.count + c.utf8.count > FDFSLimits.fileExtMaxLength { break }
            e.append(c)
        }
        let digitCount = e.isEmpty ? 7 : max(0, FDFSLimits.fileExtMaxLength - e.utf8.count)
        var out = ""
        for _ in 0..<digitCount {
            out += String(Int.random(in: 0...9, using: &randomDigits))
        }
        return e.isEmpty ? out : out + "." + e
    }

    /// A new remote filename as a storage makes it (§5, §8.2): `Mxx/XX/YY/` + base64 of
    /// (source, timestamp, size field, crc32) + `ext7` (see `formatExt`). `source` is
    /// `sourceField(ipv4:)` or `sourceField(storageID:)`; the size field's random high word
    /// comes from `generator`. Used by the dev server and the filesystem's in-memory store.
    public static func generate(
        source: UInt32, timestamp: UInt32, size: Int64, appender: Bool, crc32: UInt32,
        storePathIndex: Int, sub1: Int, sub2: Int, ext7: String, using generator: inout some RandomNumberGenerator
    ) -> String {
        let sizeField = makeSizeField(size: size, appender: appender, randomHigh: UInt32.random(in: 0...UInt32.max, using: &generator))
        let base27 = encode20(source: source, timestamp: timestamp, sizeField: sizeField, crc32: crc32)
        return make(storePathIndex: storePathIndex, sub1: sub1, sub2: sub2, base27: base27, ext7: ext7)
    }

    /// `generate(...)` with the system's random numbers.
    public static func generate(
        source: UInt32, timestamp: UInt32, size: Int64, appender: Bool, crc32: UInt32,
        storePathIndex: Int, sub1: Int, sub2: Int, ext7: String
    ) -> String {
        var generator = SystemRandomNumberGenerator()
        return generate(
            source: source, timestamp: timestamp, size: size, appender: appender, crc32: crc32,
            storePathIndex: storePathIndex, sub1: sub1, sub2: sub2, ext7: ext7, using: &generator)
    }

    /// "M%02X/%02X/%02X/" + base27 + ext7.
    public static func make(storePathIndex: Int, sub1: Int, sub2: Int, base27: String, ext7: String) -> String {
        "M\(hex2(storePathIndex))/\(hex2(sub1))/\(hex2(sub2))/\(base27)\(ext7)"
    }

    /// Slave name (§5.6, `fdfs_gen_slave_filename`): the master up to the first '.' within its
    /// last 7 characters, then `prefix`, then ".ext" (nothing when `ext` is empty; an extension
    /// that already starts with '.' is used as is). The prefix must be 1–16 characters of
    /// [A-Za-z0-9._-] (the server rejects an empty one); the extension ≤ 6 of the same set; the
    /// master at least 34 bytes, as in the C helper.
    public static func slaveFilename(master: String, prefix: String, ext: String) throws(FDFSProtocolError) -> String {
        guard isValidPrefix(prefix) else {
            throw .invalidArgument("slave prefix \"\(prefix)\" must be 1–16 characters of [A-Za-z0-9._-]")
        }
        guard isValidExt(ext) else {
            throw .invalidArgument("extension \"\(ext)\" must be at most 6 characters of [A-Za-z0-9._-]")
        }
        let bytes = Array(master.utf8)
        guard bytes.count >= 28 + FDFSLimits.fileExtMaxLength else {
            throw .invalidArgument("master filename \"\(master)\" is shorter than 34 bytes")
        }
        let tailStart = bytes.count - (FDFSLimits.fileExtMaxLength + 1)
        let cut = bytes[tailStart...].firstIndex(of: UInt8(ascii: ".")) ?? bytes.count
        var name = String(decoding: bytes[..<cut], as: UTF8.self) + prefix
        if ext.hasPrefix(".") { name += ext } else if !ext.isEmpty { name += "." + ext }
        guard name.utf8.count < FDFSLimits.filenameMaxLength else {
            throw .invalidArgument("slave filename would be \(name.utf8.count) bytes, limit 127")
        }
        return name
    }

    /// ≤ 6 characters of [A-Za-z0-9._-] (empty allowed).
    public static func isValidExt(_ ext: String) -> Bool {
        ext.utf8.count <= FDFSLimits.fileExtMaxLength && ext.utf8.allSatisfy(isNameByte)
    }

    /// 1–16 characters of [A-Za-z0-9._-].
    public static func isValidPrefix(_ prefix: String) -> Bool {
        !prefix.isEmpty && prefix.utf8.count <= FDFSLimits.filePrefixMaxLength && prefix.utf8.allSatisfy(isNameByte)
    }

    static func isNameByte(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }

    static func hex2(_ v: Int) -> String {
        let digits = Array("0123456789ABCDEF")
        let x = v & 0xFF
        return String([digits[x >> 4], digits[x & 15]])
    }
}
