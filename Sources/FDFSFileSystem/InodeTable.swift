/// The kernel-facing inode bookkeeping: lookup counts (libfuse: +1 per entry reply, −n per
/// forget), open handle counts, zombies (unlinked while still referenced) and the numbers given
/// to by-id paths. A pure value type; `FDFSFileSystem` guards it with one `Mutex`.
///
/// Inode numbers: the named tree uses SQLite row ids (root = 1), stable across remounts. By-id
/// paths (`/GROUP/...`) are not stored; their number is a 62-bit FNV-1a hash of the path above
/// `byIDBase`, so the same file id has the same inode number in every mount (stable across
/// remounts without a table). A collision with another live path probes the next number.
public struct InodeTable: Sendable {
    public static let root: UInt64 = 1
    public static let byIDBase: UInt64 = 1 << 62

    public private(set) var lookups: [UInt64: UInt64] = [:]
    public private(set) var openCount: [UInt64: Int] = [:]
    public private(set) var zombies: Set<UInt64> = []
    private var byIDPaths: [UInt64: String] = [:]
    private var byIDInos: [String: UInt64] = [:]
    /// By-id numbers handed out (to a lookup or readdirplus in progress) but not yet counted:
    /// a concurrent forget must not drop their path (lookup → forget → increment race).
    private var handedOut: Set<UInt64> = []

    public init() {}

    /// What the caller must do after a count dropped.
    public enum Eviction: Sendable, Hashable {
        case none
        /// A zombie named node with no references left: purge it from the database.
        case purge(UInt64)
    }

    public static func isByID(_ ino: UInt64) -> Bool { ino >= byIDBase }

    public func lookupCount(_ ino: UInt64) -> UInt64 { lookups[ino, default: 0] }

    public mutating func increment(_ ino: UInt64, by n: UInt64 = 1) {
        lookups[ino, default: 0] += n
        if Self.isByID(ino) { handedOut.remove(ino) }
    }

    /// `forget(ino, n)`: subtracts; at zero, a zombie with no open handle is to be purged and a
    /// by-id number is released. The root is never forgotten.
    public mutating func forget(_ ino: UInt64, _ n: UInt64) -> Eviction {
        guard ino != Self.root, let c = lookups[ino] else { return .none }
        if c > n { lookups[ino] = c - n; return .none }
        lookups[ino] = nil
        return released(ino)
    }

    public mutating func opened(_ ino: UInt64) { openCount[ino, default: 0] += 1 }

    public mutating func closed(_ ino: UInt64) -> Eviction {
        guard let c = openCount[ino] else { return .none }
        if c > 1 { openCount[ino] = c - 1; return .none }
        openCount[ino] = nil
        return released(ino)
    }

    /// Whether `closed(ino)` now would return `.purge`.
    public func closeWouldPurge(_ ino: UInt64) -> Bool {
        openCount[ino] == 1 && lookups[ino] == nil && !Self.isByID(ino) && zombies.contains(ino)
    }

    private mutating func released(_ ino: UInt64) -> Eviction {
        guard lookups[ino] == nil, openCount[ino] == nil else { return .none }
        if Self.isByID(ino) {
            if !handedOut.contains(ino), let p = byIDPaths.removeValue(forKey: ino) { byIDInos[p] = nil }
            return .none
        }
        if zombies.remove(ino) != nil { return .purge(ino) }
        return .none
    }

    /// The node's last name is gone. Returns true when it can be purged now; otherwise it is kept
    /// as a zombie until the last forget/release.
    public mutating func unlinked(_ ino: UInt64) -> Bool {
        if lookups[ino] != nil || openCount[ino] != nil {
            zombies.insert(ino)
            return false
        }
        return true
    }

    /// The number for a by-id path, allocated on first use.
    public mutating func byIDIno(for path: String) -> UInt64 {
        if let i = byIDInos[path] {
            handedOut.insert(i)
            return i
        }
        var i = Self.stableByIDIno(for: path)
        while byIDPaths[i] != nil { i = i == UInt64.max ? Self.byIDBase : i + 1 }
        handedOut.insert(i)
        byIDInos[path] = i
        byIDPaths[i] = path
        return i
    }

    public func byIDPath(_ ino: UInt64) -> String? { byIDPaths[ino] }

    /// `byIDBase` + the low 62 bits of the FNV-1a hash of the path's UTF-8 bytes: the same in
    /// every process (unlike `Hasher`, which is seeded per process).
    public static func stableByIDIno(for path: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in path.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return byIDBase | (h & (byIDBase - 1))
    }

    /// The number of a by-id path if it has one, without allocating (plain readdir's d_ino).
    public func existingByIDIno(for path: String) -> UInt64? { byIDInos[path] }
}
