// The lock algebra: POSIX record locks (fcntl) and flock(2) locks as a pure value type.
//
// A `LockTable` is a set of `LockRow`s, the form a database keeps them in. A lock service loads
// the rows of one inode (`LockTable(rows:)`), runs `test` or `set`, and stores what changed:
// `set` touches only the rows of the requesting owner and kind (`rows(ino:owner:kind:)`), so
// writing those back (delete the owner's rows of that kind on the inode, insert the new ones) is
// the whole update.
//
// Semantics (Linux fcntl(2), flock(2)):
// - An owner is a kernel lock owner (`fi->lock_owner`) on one mount (`session`): two mounts never
//   share an owner, even with equal numbers.
// - POSIX: an owner's locks on an inode are disjoint byte ranges, each read or write. Setting a
//   range replaces the owner's locks on that range (splitting ranges that stick out) and merges
//   with adjacent or overlapping ranges of the same type; unlocking a sub-range splits. An owner
//   never conflicts with itself. Two owners conflict where their ranges overlap and at least one
//   of the two locks is a write lock.
// - flock: one whole-file lock per owner (open file description), shared (read) or exclusive
//   (write); setting another type converts it. A conversion that conflicts leaves the old lock
//   in place (Linux may drop it; keeping it is allowed and easier to reason about).
// - POSIX and flock locks never conflict with each other (as on Linux).
// - `end` is inclusive; `Int64.max` means "to the end of the file, however long".

import FuseTypes

/// Which lock family a row belongs to.
public enum LockKind: String, Sendable, Hashable, Codable, CaseIterable {
    case posix
    case flock
}

/// Shared or exclusive: the type of a held lock (`F_RDLCK`/`LOCK_SH`, `F_WRLCK`/`LOCK_EX`).
public enum LockAccess: String, Sendable, Hashable, Codable, CaseIterable {
    case read
    case write
}

/// Who holds a lock: the kernel's lock owner on one mount.
public struct LockOwner: Sendable, Hashable, Codable {
    /// The mount (opaque to the algebra: a database service gives each mount its own).
    public var session: String
    /// `fi->lock_owner`: a process's file table for POSIX locks, an open file description for
    /// flock locks.
    public var id: UInt64
    public init(session: String, id: UInt64) { self.session = session; self.id = id }
}

/// One held lock: the row a database stores.
public struct LockRow: Sendable, Hashable, Codable {
    public var ino: UInt64
    public var owner: UInt64
    public var kind: LockKind
    public var type: LockAccess
    public var start: Int64
    /// Inclusive; `Int64.max` = to the end of the file.
    public var end: Int64
    /// The process that set it (what F_GETLK reports; informational).
    public var pid: Int32
    /// The mount holding it (part of the owner's identity, see `LockOwner`).
    public var session: String

    public init(ino: UInt64, owner: UInt64, kind: LockKind, type: LockAccess, start: Int64, end: Int64, pid: Int32, session: String) {
        self.ino = ino; self.owner = owner; self.kind = kind; self.type = type
        self.start = start; self.end = end; self.pid = pid; self.session = session
    }

    public var lockOwner: LockOwner { LockOwner(session: session, id: owner) }

    func overlaps(_ start: Int64, _ end: Int64) -> Bool { self.start <= end && start <= self.end }
}

/// A request to test or set a lock.
public struct LockRequest: Sendable, Hashable {
    public var owner: LockOwner
    public var kind: LockKind
    /// `.unlock` drops the owner's locks on the range.
    public var type: LockType
    /// For flock requests the range is ignored: always the whole file.
    public var start: Int64
    public var end: Int64
    public var pid: Int32

    public init(owner: LockOwner, kind: LockKind, type: LockType, start: Int64 = 0, end: Int64 = Int64.max, pid: Int32 = 0) {
        self.owner = owner; self.kind = kind; self.type = type; self.start = start; self.end = end; self.pid = pid
        if kind == .flock { self.start = 0; self.end = Int64.max }
    }

    /// A range the algebra accepts: `0 <= start <= end`.
    public var isValid: Bool { start >= 0 && end >= start }
}

/// What `LockTable.set` did.
public enum LockOutcome: Sendable, Hashable {
    /// Set (or dropped, for an unlock); the owner's rows of that kind on the inode changed to
    /// `rows(ino:owner:kind:)`.
    case granted
    /// Another owner's lock conflicts (the first one, by start); nothing changed.
    case conflict(LockRow)
}

/// The locks of any number of inodes. Pure: no I/O, no clock.
public struct LockTable: Sendable, Hashable {
    /// Per inode, rows sorted by (start, end, session, owner, kind).
    private var byIno: [UInt64: [LockRow]] = [:]

    public init(rows: [LockRow] = []) {
        for r in rows { byIno[r.ino, default: []].append(r) }
        for k in byIno.keys { byIno[k]!.sort(by: Self.order) }
    }

    /// Every row, by inode then start.
    public var rows: [LockRow] { byIno.keys.sorted().flatMap { byIno[$0]! } }
    public func rows(ino: UInt64) -> [LockRow] { byIno[ino] ?? [] }
    public func rows(ino: UInt64, owner: LockOwner, kind: LockKind) -> [LockRow] {
        rows(ino: ino).filter { $0.kind == kind && $0.lockOwner == owner }
    }
    public var isEmpty: Bool { byIno.isEmpty }

    /// The first lock (lowest start) of another owner that conflicts with `request`, or nil.
    /// An `.unlock` request conflicts with nothing.
    public func conflict(ino: UInt64, _ request: LockRequest) -> LockRow? {
        guard request.type != .unlock else { return nil }
        return rows(ino: ino).first { r in
            r.kind == request.kind && r.lockOwner != request.owner
                && r.overlaps(request.start, request.end)
                && (request.type == .write || r.type == .write)
        }
    }

    /// Sets, converts or drops (`.unlock`) the owner's lock on the range, unless another owner's
    /// lock conflicts; then nothing changes.
    @discardableResult
    public mutating func set(ino: UInt64, _ request: LockRequest) -> LockOutcome {
        if let c = conflict(ino: ino, request) { return .conflict(c) }
        let all = byIno[ino] ?? []
        var others: [LockRow] = []
        var mine: [LockRow] = []
        for r in all {
            if r.kind == request.kind && r.lockOwner == request.owner { mine.append(r) } else { others.append(r) }
        }
        let s = request.start, e = request.end
        // Cut the range out of the owner's rows (a row sticking out on both sides splits in two).
        var kept: [LockRow] = []
        for r in mine {
            guard r.overlaps(s, e) else { kept.append(r); continue }
            if r.start < s { var left = r; left.end = s - 1; kept.append(left) }
            if r.end > e { var right = r; right.start = e + 1; kept.append(right) }
        }
        if let access = Self.access(request.type) {
            // Add it, absorbing adjacent rows of the same type (none overlap any more).
            var new = LockRow(ino: ino, owner: request.owner.id, kind: request.kind, type: access,
                              start: s, end: e, pid: request.pid, session: request.owner.session)
            kept.removeAll { r in
                guard r.type == access else { return false }
                if e != Int64.max && r.start == e + 1 { new.end = r.end; return true }
                if s != 0 && r.end == s - 1 { new.start = r.start; return true }
                return false
            }
            kept.append(new)
        }
        let merged = (others + kept).sorted(by: Self.order)
        byIno[ino] = merged.isEmpty ? nil : merged
        return .granted
    }

    /// Drops every lock of `owner` of `kind` on `ino` (POSIX locks at close, flock locks at the
    /// last close of the open file description). Returns whether anything was dropped.
    @discardableResult
    public mutating func releaseAll(ino: UInt64, owner: LockOwner, kind: LockKind) -> Bool {
        guard var rs = byIno[ino] else { return false }
        let before = rs.count
        rs.removeAll { $0.kind == kind && $0.lockOwner == owner }
        byIno[ino] = rs.isEmpty ? nil : rs
        return rs.count != before
    }

    /// Drops every lock held through `session` (a mount that ended or died).
    public mutating func releaseSession(_ session: String) {
        for k in Array(byIno.keys) {
            byIno[k]!.removeAll { $0.session == session }
            if byIno[k]!.isEmpty { byIno[k] = nil }
        }
    }

    static func access(_ type: LockType) -> LockAccess? {
        switch type {
        case .read: .read
        case .write: .write
        case .unlock: nil
        }
    }

    private static func order(_ a: LockRow, _ b: LockRow) -> Bool {
        (a.start, a.end, a.session, a.owner, a.kind.rawValue) < (b.start, b.end, b.session, b.owner, b.kind.rawValue)
    }
}
