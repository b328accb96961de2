// Metadata as the real storage treats it (reference §6): records `key 0x02 value` joined by 0x01,
// keys ≤ 64 and values ≤ 256 bytes (silently truncated), sorted byte-wise by key, merge keeps
// old keys and takes new values. Kept on raw bytes so the `-m` file is exactly what a real
// storage would write.

enum MetadataRecords {
    typealias Record = (key: [UInt8], value: [UInt8])

    /// Splits packed bytes; records without 0x02 are dropped, fields truncated to the limits.
    static func unpack(_ bytes: [UInt8]) -> [Record] {
        guard !bytes.isEmpty else { return [] }
        var out: [Record] = []
        for rec in bytes.split(separator: 0x01, omittingEmptySubsequences: false) {
            guard let sep = rec.firstIndex(of: 0x02) else { continue }
            let key = Array(rec[rec.startIndex..<sep].prefix(64))
            let value = Array(rec[(sep + 1)...].prefix(256))
            out.append((key, value))
        }
        return out
    }

    static func pack(_ records: [Record]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, r) in records.enumerated() {
            if i > 0 { out.append(0x01) }
            out.append(contentsOf: r.key)
            out.append(0x02)
            out.append(contentsOf: r.value)
        }
        return out
    }

    static func sorted(_ records: [Record]) -> [Record] {
        records.sorted { $0.key.lexicographicallyPrecedes($1.key) }
    }

    /// Merge `new` into `old` (both sorted): keys in both take the new value.
    static func merge(old: [Record], new: [Record]) -> [Record] {
        var result = old
        for r in new {
            if let i = result.firstIndex(where: { $0.key == r.key }) {
                result[i].value = r.value
            } else {
                result.append(r)
            }
        }
        return sorted(result)
    }
}
