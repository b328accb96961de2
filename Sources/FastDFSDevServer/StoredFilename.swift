// Validation of remote filenames the way the real storage does it (reference §8.3), and the
// mapping from a valid name to its place below `data/`.

import FastDFSProtocol

/// A remote filename that passed the storage's checks: `M00/XX/YY/<name>`.
struct StoredFilename: Hashable, Sendable, CustomStringConvertible {
    /// The name as the client sent it (e.g. `M00/00/00/wKgB...txt`).
    var remote: String
    var storePathIndex: Int
    /// `XX/YY/<name>`: the path below the store path's `data/` directory.
    var relativePath: String
    /// `XX/YY`.
    var directory: String
    /// The last component.
    var basename: String

    var description: String { remote }

    /// The checks of §8.3 steps 3–4: EINVAL for anything malformed. `storePathCount` is 1 here.
    static func validate(_ remote: String, storePathCount: Int = 1) -> StoredFilename? {
        let bytes = Array(remote.utf8)
        guard bytes.count > 10, bytes.count < 128, !bytes.contains(0) else { return nil }
        var index = 0
        var rest = bytes[...]
        if bytes[0] == UInt8(ascii: "M") {
            guard bytes[3] == UInt8(ascii: "/"), let hi = hexValue(bytes[1], allowLower: true),
                let lo = hexValue(bytes[2], allowLower: true)
            else { return nil }
            index = hi * 16 + lo
            guard index < storePathCount else { return nil }
            rest = bytes[4...]
        }
        // HH/HH/<name>, uppercase hex, no further '/'.
        let r = Array(rest)
        guard r.count > 6, r[2] == UInt8(ascii: "/"), r[5] == UInt8(ascii: "/") else { return nil }
        for i in [0, 1, 3, 4] where hexValue(r[i], allowLower: false) == nil { return nil }
        let name = r[6...]
        guard !name.contains(UInt8(ascii: "/")), name != [UInt8(ascii: ".")][...],
            name != [UInt8(ascii: "."), UInt8(ascii: ".")][...]
        else { return nil }
        let rel = String(decoding: r, as: UTF8.self)
        return StoredFilename(
            remote: remote, storePathIndex: index, relativePath: rel,
            directory: String(decoding: r[0..<5], as: UTF8.self),
            basename: String(decoding: name, as: UTF8.self))
    }

    /// Decoded name fields (nil for names the codec can't decode, e.g. shorter than 44).
    var info: FileIDInfo? { try? FileIDInfo.decode(filename: remote) }

    /// Appender flag (bit 58 of the size field) as APPEND/MODIFY/TRUNCATE/REGENERATE check it.
    var isAppender: Bool {
        guard remote.utf8.count >= 44, let info else { return false }
        return info.kind == .appender
    }

    var isSlave: Bool { info?.kind == .slave }

    /// CRC-32 carried in the name (bytes 16–19), 0 when the name can't be decoded.
    var nameCRC32: UInt32 { info?.crc32 ?? 0 }

    private static func hexValue(_ c: UInt8, allowLower: Bool) -> Int? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(c - UInt8(ascii: "0"))
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(c - UInt8(ascii: "A")) + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f") where allowLower: return Int(c - UInt8(ascii: "a")) + 10
        default: return nil
        }
    }
}
