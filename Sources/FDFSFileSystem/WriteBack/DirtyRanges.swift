/// A set of byte ranges `[lo, hi)` of a file, kept sorted, disjoint and merged (adjacent ranges
/// join). It records which bytes of a file live in its staging file and not yet on the server.
/// Pure value type; persisted as `[[lo, hi], ...]` JSON in the `staged_files` table.
public struct DirtyRanges: Sendable, Hashable, Codable {
    public struct Range: Sendable, Hashable, Codable {
        public var lo: Int64
        public var hi: Int64
        public init(_ lo: Int64, _ hi: Int64) { self.lo = lo; self.hi = hi }
        public var count: Int64 { hi - lo }
    }

    public private(set) var ranges: [Range] = []
    public init() {}
    public init(_ pairs: [(Int64, Int64)]) { for (a, b) in pairs { insert(a, b) } }

    public var isEmpty: Bool { ranges.isEmpty }
    /// Total number of dirty bytes.
    public var byteCount: Int64 { ranges.reduce(0) { $0 + $1.count } }
    public var end: Int64 { ranges.last?.hi ?? 0 }

    /// Marks `[lo, hi)` dirty.
    public mutating func insert(_ lo: Int64, _ hi: Int64) {
        guard hi > lo else { return }
        var nlo = lo, nhi = hi
        var out: [Range] = []
        out.reserveCapacity(ranges.count + 1)
        var placed = false
        for r in ranges {
            if r.hi < nlo { out.append(r) }
            else if r.lo > nhi {
                if !placed { out.append(Range(nlo, nhi)); placed = true }
                out.append(r)
            } else {
                nlo = min(nlo, r.lo); nhi = max(nhi, r.hi)
            }
        }
        if !placed { out.append(Range(nlo, nhi)) }
        ranges = out
    }

    /// Marks `[lo, hi)` clean.
    public mutating func remove(_ lo: Int64, _ hi: Int64) {
        guard hi > lo else { return }
        var out: [Range] = []
        out.reserveCapacity(ranges.count + 1)
        for r in ranges {
            if r.hi <= lo || r.lo >= hi { out.append(r); continue }
            if r.lo < lo { out.append(Range(r.lo, lo)) }
            if r.hi > hi { out.append(Range(hi, r.hi)) }
        }
        ranges = out
    }

    /// The dirty parts of `[lo, hi)`.
    public func intersection(_ lo: Int64, _ hi: Int64) -> [Range] {
        ranges.compactMap { r in
            let a = max(r.lo, lo), b = min(r.hi, hi)
            return a < b ? Range(a, b) : nil
        }
    }

    /// The parts of `[lo, hi)` that are not dirty.
    public func gaps(_ lo: Int64, _ hi: Int64) -> [Range] {
        var out: [Range] = []
        var cur = lo
        for r in intersection(lo, hi) {
            if r.lo > cur { out.append(Range(cur, r.lo)) }
            cur = r.hi
        }
        if cur < hi { out.append(Range(cur, hi)) }
        return out
    }

    /// The end of the dirty run that covers `offset` (or `offset` itself when it is clean).
    public func contiguousEnd(from offset: Int64) -> Int64 {
        for r in ranges where r.lo <= offset && offset < r.hi { return r.hi }
        return offset
    }
}
