// The binlog of one storage, modelled on the real one [storage/storage_sync.c
// `storage_binlog_write_ex`; storage/storage_service.c for what each command records].
//
// `sync/binlog.000` holds one text line per operation: `<unix ms> <op> <filename> [<a> <b>]`.
// The op letters are the real ones: upper case where a client's request was applied, lower case
// where a synced copy was applied (lower-case records are never replicated again):
//
//   C  create: upload, appender upload, slave upload, a new `-m` metadata file
//   U  update: a `-m` metadata file replaced
//   A  append: `<name> <offset> <length>` (the size before the append, the bytes appended)
//   M  modify: `<name> <offset> <length>`
//   T  truncate: `<name> <old size> <new size>`
//   D  delete (of a file, or of its `-m` when metadata is removed)
//   R  rename by REGENERATE_APPENDER_FILENAME: `<new name> <old name>`
//
// The real binlog writes unix seconds; this one writes milliseconds so the replication lag can be
// sub-second (the sync timestamps reported to the tracker are seconds, as on a real cluster).
//
// Data directories of older dev servers kept `sync/binlog` in another format
// (`<ms> <C|M|D|R> <name> [<new name>]`, C = whole file changed, M = metadata changed) with bare
// offsets in the mark files; `LegacyBinlog.migrate` converts both once, at start.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import NIOCore

/// One replicated operation, as the binlog records it.
enum SyncOperation: Sendable, Equatable {
    case create(String)
    case update(String)
    case append(String, offset: Int64, length: Int64)
    case modify(String, offset: Int64, length: Int64)
    case truncate(String, oldSize: Int64, newSize: Int64)
    case delete(String)
    case rename(new: String, old: String)

    var letter: Character {
        switch self {
        case .create: return "C"
        case .update: return "U"
        case .append: return "A"
        case .modify: return "M"
        case .truncate: return "T"
        case .delete: return "D"
        case .rename: return "R"
        }
    }

    /// The filename the record is about (the new name for a rename).
    var filename: String {
        switch self {
        case .create(let n), .update(let n), .delete(let n): return n
        case .append(let n, _, _), .modify(let n, _, _), .truncate(let n, _, _): return n
        case .rename(let new, _): return new
        }
    }

    /// `<letter> <filename> [args]`, the letter lower-cased for a replica's record.
    func line(replica: Bool) -> String {
        let l = replica ? String(letter).lowercased() : String(letter)
        switch self {
        case .create(let n), .update(let n), .delete(let n): return "\(l) \(n)"
        case .append(let n, let a, let b), .modify(let n, let a, let b): return "\(l) \(n) \(a) \(b)"
        case .truncate(let n, let a, let b): return "\(l) \(n) \(a) \(b)"
        case .rename(let new, let old): return "\(l) \(new) \(old)"
        }
    }

    /// Parses `<letter> <fields>` (without the timestamp); the Bool is true for a replica's record.
    static func parse(_ text: Substring) -> (SyncOperation, replica: Bool)? {
        let f = text.split(separator: " ")
        guard f.count >= 2, f[0].count == 1, let letter = f[0].first else { return nil }
        let replica = letter.isLowercase
        let name = String(f[1])
        let a = f.count == 4 ? Int64(f[2]) : nil
        let b = f.count == 4 ? Int64(f[3]) : nil
        let op: SyncOperation
        switch letter.uppercased() {
        case "C" where f.count == 2: op = .create(name)
        case "U" where f.count == 2: op = .update(name)
        case "D" where f.count == 2: op = .delete(name)
        case "R" where f.count == 3: op = .rename(new: name, old: String(f[2]))
        case "A" where a != nil && b != nil: op = .append(name, offset: a!, length: b!)
        case "M" where a != nil && b != nil: op = .modify(name, offset: a!, length: b!)
        case "T" where a != nil && b != nil: op = .truncate(name, oldSize: a!, newSize: b!)
        default: return nil
        }
        return (op, replica)
    }
}

struct BinlogRecord: Sendable, Equatable {
    var milliseconds: Int64
    var op: SyncOperation
    /// Lower case: applied as a synced copy, not replicated again.
    var isReplica: Bool
    /// Byte offset just past this record's line.
    var end: Int64

    var seconds: Int64 { milliseconds / 1000 }
}

/// One storage's binlog: appended by its handlers and by the replicators applying records to
/// it, read by its replicators.
final class ReplicationLog: Sendable {
    static let filename = "binlog.000"
    let path: String
    /// Bytes in the file (what has been appended so far).
    private let size = NIOLockedValueBox<Int64>(0)

    init(directory: String) {
        self.path = directory + "/" + Self.filename
    }

    /// Reads the current size (blocking; at start).
    func load() {
        size.withLockedValue { $0 = DiskStore.status(path)?.size ?? 0 }
    }

    var currentSize: Int64 { size.withLockedValue { $0 } }

    /// Appends one record (blocking). Serialised by the lock so offsets stay exact.
    func append(_ op: SyncOperation, replica: Bool = false, at milliseconds: Int64 = WallClock.milliseconds()) {
        let bytes = Array("\(milliseconds) \(op.line(replica: replica))\n".utf8)
        size.withLockedValue { s in
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return }
            defer { close(fd) }
            if bytes.withUnsafeBytes({ DiskStore.writeAll(fd, $0, path: path) }) == nil {
                s += Int64(bytes.count)
            }
        }
    }

    /// Complete records from `offset` on (blocking). Reads only the tail past `offset`.
    func records(from offset: Int64) -> [BinlogRecord] {
        let end = currentSize > 0 ? currentSize : (DiskStore.status(path)?.size ?? 0)
        guard end > offset, let fd = try? DiskStore.openForReading(path) else { return [] }
        defer { close(fd) }
        guard let tail = try? DiskStore.readChunk(fd: fd, at: offset, count: Int(end - offset), allocator: .init())
        else { return [] }
        return Self.parse(Array(tail.readableBytesView), base: offset)
    }

    /// Parses complete lines; `end` offsets are relative to `base`. Unparsable lines are skipped.
    static func parse(_ bytes: [UInt8], base: Int64) -> [BinlogRecord] {
        var out: [BinlogRecord] = []
        var start = 0
        while let nl = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: bytes[start..<nl], as: UTF8.self)
            start = nl + 1
            guard let space = line.firstIndex(of: " "), let ms = Int64(line[..<space]),
                let (op, replica) = SyncOperation.parse(line[line.index(after: space)...])
            else { continue }
            out.append(BinlogRecord(milliseconds: ms, op: op, isReplica: replica, end: base + Int64(start)))
        }
        return out
    }
}

/// How far one peer has applied a binlog, and the timestamp (s) of the last record it got:
/// `sync/storage<n>.mark`, text `binlog_offset=N` and `synced_timestamp=T` lines.
struct SyncMark: Sendable, Equatable {
    var offset: Int64 = 0
    var syncedTimestamp: Int64 = 0

    static func read(_ path: String) -> SyncMark? {
        guard let bytes = DiskStore.readSmallFile(path) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        var mark = SyncMark()
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, let v = Int64(kv[1]) else { continue }
            if kv[0] == "binlog_offset" { mark.offset = v }
            if kv[0] == "synced_timestamp" { mark.syncedTimestamp = v }
        }
        return mark
    }

    var text: [UInt8] { Array("binlog_offset=\(offset)\nsynced_timestamp=\(syncedTimestamp)\n".utf8) }

    func write(_ path: String, temporaryDirectory: String) throws(DiskError) {
        try DiskStore.writeSmallFile(path, text, temporaryDirectory: temporaryDirectory)
    }

    /// Rewrites the mark in place (one write at offset 0, then the size): no new file and no
    /// freed one per update. Both numbers only grow, so a write cut short by a crash never leaves
    /// a longer older text behind it that parses as something else.
    func overwrite(_ path: String) throws(DiskError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DiskError(errno: errno, operation: "open", path: path) }
        defer { close(fd) }
        let bytes = text
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        guard n == bytes.count else { throw DiskError(errno: n < 0 ? errno : EIO, operation: "write", path: path) }
        guard ftruncate(fd, off_t(bytes.count)) == 0 else { throw DiskError(errno: errno, operation: "ftruncate", path: path) }
    }
}

/// Conversion of an older dev server's `sync/binlog` and mark files (see the top of this file).
enum LegacyBinlog {
    /// Converts `<sync>/binlog` into records appended to the new binlog, rewrites the bare-offset
    /// mark files to point at the same records, and renames the old binlog to `binlog.legacy`.
    /// Blocking; run once per storage at start, before the replicators.
    static func migrate(disk: DiskStore, log: ReplicationLog) throws(DiskError) {
        let oldPath = disk.syncDirectory + "/binlog"
        guard let bytes = DiskStore.readSmallFile(oldPath) else { return }
        let newBase = DiskStore.status(log.path)?.size ?? 0
        // Old records and where each ended in the old file.
        var converted: [(oldEnd: Int64, line: String)] = []
        var start = 0
        while let nl = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: bytes[start..<nl], as: UTF8.self)
            start = nl + 1
            let f = line.split(separator: " ")
            guard f.count >= 3, let ms = Int64(f[0]) else { continue }
            let name = String(f[2])
            let op: SyncOperation
            switch f[1] {
            case "C": op = .create(name)
            case "M":
                // Metadata changed: the `-m` file is copied if the source still has one, else deleted.
                let exists = StoredFilename.validate(name).flatMap { disk.readMetadata($0) } != nil
                op = exists ? .update(name + "-m") : .delete(name + "-m")
            case "D": op = .delete(name)
            case "R" where f.count == 4: op = .rename(new: String(f[3]), old: name)
            default: continue
            }
            converted.append((Int64(start), "\(ms) \(op.line(replica: false))\n"))
        }
        // New offsets: the end of each converted line in the new file.
        var newEnds: [Int64] = []
        var position = newBase
        for c in converted {
            position += Int64(c.line.utf8.count)
            newEnds.append(position)
        }
        let fd = open(log.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DiskError(errno: errno, operation: "open", path: log.path) }
        let all = Array(converted.map(\.line).joined().utf8)
        let failure = all.withUnsafeBytes { DiskStore.writeAll(fd, $0, path: log.path) }
        close(fd)
        if let failure { throw failure }
        // Marks: a bare number is an offset into the old binlog.
        if let d = opendir(disk.syncDirectory) {
            var names: [String] = []
            while let e = readdir(d) {
                let n = withUnsafeBytes(of: e.pointee.d_name) { raw in
                    String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                }
                if n.hasSuffix(".mark") { names.append(n) }
            }
            closedir(d)
            for n in names {
                let markPath = disk.syncDirectory + "/" + n
                guard let content = DiskStore.readSmallFile(markPath),
                    let oldOffset = Int64(String(decoding: content, as: UTF8.self).trimmingCharacters)
                else { continue }
                let applied = converted.filter { $0.oldEnd <= oldOffset }.count
                let offset = applied == 0 ? newBase : newEnds[applied - 1]
                try SyncMark(offset: offset, syncedTimestamp: 0).write(markPath, temporaryDirectory: disk.tmpDirectory)
            }
        }
        guard rename(oldPath, disk.syncDirectory + "/binlog.legacy") == 0 else {
            throw DiskError(errno: errno, operation: "rename", path: oldPath)
        }
    }
}

extension String {
    /// Without surrounding spaces and newlines.
    fileprivate var trimmingCharacters: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\n" || c == "\r" || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\n" || c == "\r" || c == "\t" { s.removeLast() }
        return String(s)
    }
}
