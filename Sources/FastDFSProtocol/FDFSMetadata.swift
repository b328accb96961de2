// File metadata: `key 0x02 value` records joined by 0x01 (§6 of the reference), plus the
// storage's merge semantics.

public struct FDFSMetadata: Hashable, Sendable, Sequence, ExpressibleByDictionaryLiteral {
    public typealias Element = (key: String, value: String)

    public static let maxKeyLength = 64
    public static let maxValueLength = 256
    static let recordSeparator: UInt8 = 0x01
    static let fieldSeparator: UInt8 = 0x02

    /// Entries in order (wire order after decoding, insertion order otherwise).
    public var entries: [(key: String, value: String)]

    public init() { entries = [] }
    public init(entries: [(key: String, value: String)]) { self.entries = entries }
    /// Entries sorted by key bytes.
    public init(_ dict: [String: String]) {
        entries = dict.map { (key: $0.key, value: $0.value) }.sorted { Self.less($0.key, $1.key) }
    }
    public init(dictionaryLiteral elements: (String, String)...) {
        entries = elements.map { (key: $0.0, value: $0.1) }
    }

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }

    /// The first value stored under `key`; setting replaces it (or appends), nil removes all.
    public subscript(key: String) -> String? {
        get { entries.first { $0.key == key }?.value }
        set {
            if let newValue {
                if let i = entries.firstIndex(where: { $0.key == key }) {
                    entries[i].value = newValue
                } else {
                    entries.append((key: key, value: newValue))
                }
            } else {
                entries.removeAll { $0.key == key }
            }
        }
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: String)]> { entries.makeIterator() }

    /// As a dictionary (the last duplicate wins).
    public var dictionary: [String: String] {
        var d: [String: String] = [:]
        for e in entries { d[e.key] = e.value }
        return d
    }

    /// Packed wire form, records sorted by key bytes (how the storage keeps them).
    public func packed() -> [UInt8] { packed(sorted: true) }

    /// Packed wire form; `sorted: false` keeps the entry order (what the C client sends).
    public func packed(sorted: Bool) -> [UInt8] {
        let list = sorted ? sortedEntries() : entries
        var out: [UInt8] = []
        for (i, e) in list.enumerated() {
            if i > 0 { out.append(Self.recordSeparator) }
            out += e.key.utf8
            out.append(Self.fieldSeparator)
            out += e.value.utf8
        }
        return out
    }

    /// Parses the wire form; records without 0x02 are dropped. Empty input → empty metadata.
    public static func unpack(_ bytes: some Collection<UInt8>) -> FDFSMetadata {
        var result = FDFSMetadata()
        for record in bytes.split(separator: recordSeparator, omittingEmptySubsequences: true) {
            guard let sep = record.firstIndex(of: fieldSeparator) else { continue }
            let key = String(decoding: record[record.startIndex..<sep], as: UTF8.self)
            let value = String(decoding: record[record.index(after: sep)...], as: UTF8.self)
            result.entries.append((key: key, value: value))
        }
        return result
    }

    /// Entries stably sorted by key bytes (strcmp order).
    public func sortedEntries() -> [(key: String, value: String)] {
        entries.enumerated().sorted { a, b in
            if a.element.key == b.element.key { return a.offset < b.offset }
            return Self.less(a.element.key, b.element.key)
        }.map(\.element)
    }

    /// Keys cut to 64 bytes and values to 256 bytes, as the storage silently does.
    public func truncatedToLimits() -> FDFSMetadata {
        FDFSMetadata(entries: entries.map {
            (key: Self.prefix($0.key, bytes: Self.maxKeyLength), value: Self.prefix($0.value, bytes: Self.maxValueLength))
        })
    }

    /// Storage MERGE semantics: an empty `other` changes nothing; otherwise both lists are sorted
    /// and merged, names present in both take `other`'s value, and the result stays sorted.
    public func merging(_ other: FDFSMetadata) -> FDFSMetadata {
        if other.isEmpty { return self }
        let old = sortedEntries()
        let new = other.sortedEntries()
        var out: [(key: String, value: String)] = []
        var i = 0, j = 0
        while i < old.count && j < new.count {
            let a = old[i], b = new[j]
            if a.key == b.key {
                out.append(b); i += 1; j += 1
            } else if Self.less(a.key, b.key) {
                out.append(a); i += 1
            } else {
                out.append(b); j += 1
            }
        }
        out += old[i...]
        out += new[j...]
        return FDFSMetadata(entries: out)
    }

    // Equality and hashing ignore order (compare the sorted pairs).
    public static func == (lhs: FDFSMetadata, rhs: FDFSMetadata) -> Bool {
        let l = lhs.sortedEntries(), r = rhs.sortedEntries()
        return l.count == r.count && zip(l, r).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for e in sortedEntries() {
            hasher.combine(e.key)
            hasher.combine(e.value)
        }
    }

    static func less(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    static func prefix(_ s: String, bytes: Int) -> String {
        let utf8 = Array(s.utf8)
        guard utf8.count > bytes else { return s }
        return String(decoding: utf8[..<bytes], as: UTF8.self)
    }
}

extension FDFSMetadata: CustomStringConvertible {
    public var description: String {
        "[" + entries.map { "\($0.key)=\($0.value)" }.joined(separator: ", ") + "]"
    }
}
