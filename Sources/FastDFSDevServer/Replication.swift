// Replication between the storages of a group, modelled on the real binlog design.
//
// Every storage appends the operations it performs for clients to its own binlog
// (`sync/binlog`, one text line per operation: `<unix ms> <C|M|D|R> <name> [<new name>]`).
// For each peer in the group a `Replicator` task reads that binlog from its mark
// (`sync/<peer>.mark`, persisted after every record), waits until the record is
// `--replication-lag` seconds old, and applies it to the peer's disk by copying from the source's
// disk (C: content changed, M: metadata changed, D: delete, R: rename by REGENERATE). Both files
// survive a restart, so pending replication resumes where it stopped. A replica therefore has a
// file only once its record has been applied, which is what the tracker's fetch queries look at.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

enum ReplicationOp: Sendable, Equatable {
    case content(String)
    case metadata(String)
    case delete(String)
    case rename(from: String, to: String)

    var line: String {
        switch self {
        case .content(let n): return "C \(n)"
        case .metadata(let n): return "M \(n)"
        case .delete(let n): return "D \(n)"
        case .rename(let a, let b): return "R \(a) \(b)"
        }
    }

    init?(line: Substring) {
        let parts = line.split(separator: " ")
        guard parts.count >= 2 else { return nil }
        let name = String(parts[1])
        switch parts[0] {
        case "C": self = .content(name)
        case "M": self = .metadata(name)
        case "D": self = .delete(name)
        case "R" where parts.count == 3: self = .rename(from: name, to: String(parts[2]))
        default: return nil
        }
    }
}

struct BinlogRecord: Sendable, Equatable {
    var milliseconds: Int64
    var op: ReplicationOp
    /// Byte offset just past this record's line.
    var end: Int64
}

/// One storage's binlog: appended by its handlers, read by its replicators.
final class ReplicationLog: Sendable {
    let path: String
    /// Bytes in the file (what has been appended so far).
    private let size = NIOLockedValueBox<Int64>(0)

    init(directory: String) {
        self.path = directory + "/binlog"
    }

    /// Reads the current size (blocking; at start).
    func load() {
        size.withLockedValue { $0 = DiskStore.status(path)?.size ?? 0 }
    }

    var currentSize: Int64 { size.withLockedValue { $0 } }

    /// Appends one record (blocking). Serialised by the lock so offsets stay exact.
    func append(_ op: ReplicationOp, at milliseconds: Int64 = WallClock.milliseconds()) {
        let bytes = Array("\(milliseconds) \(op.line)\n".utf8)
        size.withLockedValue { s in
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return }
            defer { close(fd) }
            var off = 0
            while off < bytes.count {
                let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, bytes.count - off) }
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                off += n
            }
            s += Int64(bytes.count)
        }
    }

    /// Complete records from `offset` on (blocking). Reads only the tail past `offset`.
    func records(from offset: Int64) -> [BinlogRecord] {
        let end = currentSize > 0 ? currentSize : (DiskStore.status(path)?.size ?? 0)
        guard end > offset, let fd = try? DiskStore.openForReading(path) else { return [] }
        defer { close(fd) }
        guard let tail = try? DiskStore.readChunk(fd: fd, at: offset, count: Int(end - offset), allocator: .init())
        else { return [] }
        let bytes = Array(tail.readableBytesView)
        var out: [BinlogRecord] = []
        var start = 0
        while let nl = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: bytes[start..<nl], as: UTF8.self)
            start = nl + 1
            guard let space = line.firstIndex(of: " "), let ms = Int64(line[..<space]),
                let op = ReplicationOp(line: line[line.index(after: space)...])
            else { continue }
            out.append(BinlogRecord(milliseconds: ms, op: op, end: offset + Int64(start)))
        }
        return out
    }
}

/// Applies one source storage's binlog to one peer, with the configured lag.
final class Replicator: Sendable {
    let source: StorageNode
    let peer: StorageNode
    let log: ReplicationLog
    let lagMilliseconds: Int64
    let markPath: String
    private let applied = NIOLockedValueBox<Int64>(0)

    init(source: StorageNode, peer: StorageNode, log: ReplicationLog, lag: Double) {
        self.source = source
        self.peer = peer
        self.log = log
        self.lagMilliseconds = Int64(lag * 1000)
        self.markPath = source.disk.syncDirectory + "/storage\(peer.id.index).mark"
    }

    /// True when every record appended so far has been applied.
    var isCaughtUp: Bool { applied.withLockedValue { $0 } >= log.currentSize }

    /// Runs until cancelled.
    func run(io: BlockingIO) async {
        let markPath = self.markPath
        var offset: Int64 = (try? await io.run {
            DiskStore.readSmallFile(markPath).flatMap { Int64(String(decoding: $0, as: UTF8.self)) } ?? 0
        }) ?? 0
        applied.withLockedValue { $0 = offset }
        while !Task.isCancelled {
            let from = offset
            guard log.currentSize > offset, let records = try? await io.run({ self.log.records(from: from) }),
                !records.isEmpty
            else {
                do { try await Task.sleep(for: .milliseconds(20)) } catch { return }
                continue
            }
            for record in records {
                let wait = record.milliseconds + lagMilliseconds - WallClock.milliseconds()
                if wait > 0 {
                    do { try await Task.sleep(for: .milliseconds(wait)) } catch { return }
                }
                // A stopped storage neither sends nor receives replication.
                while !(source.isRunning && peer.isRunning) {
                    do { try await Task.sleep(for: .milliseconds(50)) } catch { return }
                }
                let done = (try? await io.run { self.apply(record) }) ?? false
                if !done { break }
                offset = record.end
                applied.withLockedValue { $0 = offset }
            }
        }
    }

    /// Applies one record to the peer's disk and persists the mark (blocking).
    func apply(_ record: BinlogRecord) -> Bool {
        let src = source.disk
        let dst = peer.disk
        switch record.op {
        case .content(let n):
            if let name = StoredFilename.validate(n), src.exists(name) {
                try? DiskStore.copyFile(src.path(of: name), to: dst.path(of: name), temporaryDirectory: dst.tmpDirectory)
                let bytes = src.status(of: name)?.size ?? 0
                peer.count(.totalSyncInBytes, bytes)
                peer.count(.successSyncInBytes, bytes)
                source.count(.totalSyncOutBytes, bytes)
                source.count(.successSyncOutBytes, bytes)
            }
        case .metadata(let n):
            if let name = StoredFilename.validate(n), dst.exists(name) {
                if let meta = src.readMetadata(name) {
                    try? dst.writeMetadata(name, meta)
                } else {
                    try? dst.writeMetadata(name, nil)
                }
            }
        case .delete(let n):
            if let name = StoredFilename.validate(n) { try? dst.removeFile(name) }
        case .rename(let a, let b):
            if let from = StoredFilename.validate(a), let to = StoredFilename.validate(b) {
                if dst.exists(from) {
                    try? dst.renameFile(from, to: to)
                } else if src.exists(to) {
                    try? DiskStore.copyFile(src.path(of: to), to: dst.path(of: to), temporaryDirectory: dst.tmpDirectory)
                }
            }
        }
        let now = WallClock.seconds()
        peer.setCounter(.lastSyncUpdate, now)
        peer.setCounter(.lastSyncedTimestamp, record.milliseconds / 1000)
        do {
            try DiskStore.writeSmallFile(markPath, Array("\(record.end)".utf8), temporaryDirectory: src.tmpDirectory)
        } catch {
            return false
        }
        return true
    }
}

extension ClusterState {
    /// Rebuilds the origin index from every binlog, in time order (blocking; at start).
    func rebuildOrigins(logs: [StorageNodeID: ReplicationLog]) {
        var all: [(ms: Int64, group: String, index: Int, op: ReplicationOp)] = []
        for (id, log) in logs {
            for r in log.records(from: 0) { all.append((r.milliseconds, id.group, id.index, r.op)) }
        }
        all.sort { $0.ms < $1.ms }
        for r in all {
            switch r.op {
            case .content(let n): recordCreated(group: r.group, filename: n, on: r.index)
            case .delete(let n): recordDeleted(group: r.group, filename: n)
            case .rename(let a, let b): recordRenamed(group: r.group, from: a, to: b)
            case .metadata: break
            }
        }
    }
}

/// Runs blocking work on the server's NIO thread pool.
struct BlockingIO: Sendable {
    let pool: NIOThreadPool
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }
}
