import Dispatch
import FuseTypes
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The sparse local file holding a file's dirty bytes (`STATE_DIR/staging/INO-N`). All I/O runs
/// on a Dispatch queue, never on Swift's cooperative pool. Shipped ranges are punched out so a
/// large sequential write keeps little on local disk.
///
/// Next to it, `PATH.log` lists the ranges written since the dirty map was last recorded in the
/// naming database (24-byte entries: generation, offset, length, little endian), so a daemon
/// killed between two records loses no acknowledged write: the page cache keeps both files.
/// Entries carry the generation of the record they follow; a record bumps the generation and
/// then empties the log, so entries a record already covers are never applied twice.
public final class StagingFile: Sendable {
    let path: String
    var logPath: String { path + ".log" }
    /// The open descriptors, opened on first need on the queue (a file created and closed
    /// without a write never touches the disk), closed in deinit.
    private struct Descriptors: Sendable {
        var fd: FileDescriptor
        var logFD: FileDescriptor
    }
    private let descriptors = Mutex<Descriptors?>(nil)
    /// The files may be on disk already (a staged file recovered after a restart).
    private let existing: Bool
    /// Serial: operations run in the order the owning writer issued them.
    private let queue = DispatchQueue(label: "fdfsfs.staging", qos: .utility)

    init(path: String, existing: Bool = false) {
        self.path = path
        self.existing = existing
    }

    deinit {
        if let d = descriptors.withLock({ $0 }) { try? d.fd.close(); try? d.logFD.close() }
    }

    /// The descriptors (on the queue). `create`: made when missing; otherwise nil when the
    /// files do not exist (nothing was staged).
    private func open(create: Bool) -> Result<Descriptors?, FSError> {
        if let d = descriptors.withLock({ $0 }) { return .success(d) }
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(path), .readWrite, options: create ? [.closeOnExec, .create] : [.closeOnExec],
                                         permissions: [.ownerReadWrite])
        } catch {
            if (error as? Errno) == .noSuchFileOrDirectory && !create { return .success(nil) }
            return .failure(Self.failure(error, "cannot open the staging file \(path)"))
        }
        let logFD: FileDescriptor
        do {
            logFD = try FileDescriptor.open(FilePath(path + ".log"), .readWrite, options: [.closeOnExec, .create, .append],
                                            permissions: [.ownerReadWrite])
        } catch {
            try? fd.close()
            return .failure(Self.failure(error, "cannot open the write log \(path).log"))
        }
        let d = Descriptors(fd: fd, logFD: logFD)
        descriptors.withLock { $0 = d }
        return .success(d)
    }

    /// Runs `body` on the queue with the descriptors (nil when nothing is staged and `create` is false).
    private func with<T: Sendable>(create: Bool, _ body: @escaping @Sendable (Descriptors?) -> Result<T, FSError>) async throws(FSError) -> T {
        // Never opened and not left by a previous run: there is nothing on disk to look at, and
        // no trip to the queue (a small file's commit, issue 12).
        if !create && !existing && descriptors.withLock({ $0 == nil }) { return try body(nil).get() }
        return try await run { [self] in
            switch open(create: create) {
            case .success(let d): return body(d)
            case .failure(let e): return .failure(e)
            }
        }
    }

    /// A failed call as the filesystem reports it: ENOSPC stays ENOSPC (a full disk), the rest is EIO.
    static func failure(_ error: any Error, _ what: String) -> FSError {
        FSError((error as? Errno) == .noSpace ? ENOSPC : EIO, "\(what): \(error)")
    }

    /// glibc's fallocate(2) wrapper, which Glibc's module map hides (_GNU_SOURCE).
    typealias Fallocate = @convention(c) (Int32, Int32, off_t, off_t) -> Int32
    static let fallocate: Fallocate? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "fallocate") else { return nil }
        return unsafeBitCast(sym, to: Fallocate.self)
    }()

    func run<T: Sendable>(_ body: @escaping @Sendable () -> Result<T, FSError>) async throws(FSError) -> T {
        let r: Result<T, FSError> = await withCheckedContinuation { c in queue.async { c.resume(returning: body()) } }
        return try r.get()
    }

    /// Stages `data` at `offset` and logs the range under `generation`.
    func write(_ data: [UInt8], at offset: Int64, generation: UInt64) async throws(FSError) {
        let path = path
        try await with(create: true) { d -> Result<Void, FSError> in
            let fd = d!.fd, logFD = d!.logFD
            do {
                _ = try fd.writeAll(toAbsoluteOffset: offset, data)
            } catch {
                return .failure(Self.failure(error, "cannot stage \(data.count) bytes in \(path)"))
            }
            var entry = [UInt8]()
            entry.reserveCapacity(24)
            for v in [generation, UInt64(bitPattern: offset), UInt64(data.count)] {
                withUnsafeBytes(of: v.littleEndian) { entry.append(contentsOf: $0) }
            }
            do {
                _ = try logFD.writeAll(entry)
            } catch {
                return .failure(Self.failure(error, "cannot log a write in \(path).log"))
            }
            return .success(())
        }
    }

    /// The ranges logged under `generation` (written after the record of that generation).
    func loggedWrites(generation: UInt64) async -> [(offset: Int64, count: Int64)] {
        (try? await with(create: false) { d -> Result<[(offset: Int64, count: Int64)], FSError> in
            .success(d.map { Self.parseLog(Self.readAll($0.logFD), generation: generation) } ?? [])
        }) ?? []
    }

    /// The entries of a write log under `generation`. A torn last entry (killed mid-write) is
    /// ignored: its write was not acknowledged.
    static func parseLog(_ buf: [UInt8], generation: UInt64) -> [(offset: Int64, count: Int64)] {
        func word(_ at: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(buf[at + i]) << (8 * UInt64(i)) }
            return v
        }
        var out: [(offset: Int64, count: Int64)] = []
        var at = 0
        while at + 24 <= buf.count {
            if word(at) == generation { out.append((Int64(bitPattern: word(at + 8)), Int64(bitPattern: word(at + 16)))) }
            at += 24
        }
        return out
    }

    /// The names in a directory, without "." and ".." (blocking; empty when it cannot be read).
    static func entries(of dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { out.append(name) }
        }
        return out
    }

    /// The whole content of an open file (blocking).
    static func readAll(_ fd: FileDescriptor) -> [UInt8] {
        guard let size = try? Int(fd.seek(offset: 0, from: .end)), size > 0 else { return [] }
        var buf = [UInt8](repeating: 0, count: size)
        let n = (try? buf.withUnsafeMutableBytes { try fd.read(fromAbsoluteOffset: 0, into: $0) }) ?? 0
        return Array(buf[..<n])
    }

    /// Data extents (SEEK_DATA/SEEK_HOLE) and size of an open file (blocking).
    static func extents(_ descriptor: FileDescriptor) -> (extents: [(Int64, Int64)], size: Int64) {
        let fd = descriptor.rawValue
        let end = Int64(lseek(fd, 0, SEEK_END))
        var out: [(Int64, Int64)] = []
        var pos: Int64 = 0
        while pos < end {
            let data = Int64(lseek(fd, off_t(pos), 3 /* SEEK_DATA */))
            if data < 0 { break }
            var hole = Int64(lseek(fd, off_t(data), 4 /* SEEK_HOLE */))
            if hole < 0 { hole = end }
            if hole > data { out.append((data, hole)) }
            pos = hole
        }
        return (out, max(end, 0))
    }

    /// What a staging file and its log add to a recorded state, read without opening it for
    /// writing (blocking; for `fdfsfs status`, which must report what recovery will find).
    public static func unrecordedWrites(stagingPath: String, generation: UInt64)
        -> (logged: [(offset: Int64, count: Int64)], extents: [(Int64, Int64)], size: Int64)
    {
        var logged: [(offset: Int64, count: Int64)] = []
        if let logFD = try? FileDescriptor.open(FilePath(stagingPath + ".log"), .readOnly, options: .closeOnExec) {
            logged = parseLog(readAll(logFD), generation: generation)
            try? logFD.close()
        }
        guard let fd = try? FileDescriptor.open(FilePath(stagingPath), .readOnly, options: .closeOnExec) else { return (logged, [], 0) }
        defer { try? fd.close() }
        let (e, size) = extents(fd)
        return (logged, e, size)
    }

    /// Empties the log (its ranges are in the recorded dirty map now).
    func clearLog() async {
        _ = try? await with(create: false) { d -> Result<Void, FSError> in
            if let d { try? d.logFD.resize(to: 0) }
            return .success(())
        }
    }

    /// Empties the staging file and its log in one trip to the staging queue (after a commit).
    func reset() async {
        _ = try? await with(create: false) { d -> Result<Void, FSError> in
            if let d {
                try? d.fd.resize(to: 0)
                try? d.logFD.resize(to: 0)
            }
            return .success(())
        }
    }

    /// Reads `[offset, offset + count)`; holes read as zeros.
    func read(_ offset: Int64, _ count: Int) async throws(FSError) -> [UInt8] {
        let path = path
        return try await with(create: false) { d -> Result<[UInt8], FSError> in
            var buf = [UInt8](repeating: 0, count: count)
            guard let fd = d?.fd else { return .success(buf) }   // nothing staged: zeros
            var done = 0
            while done < count {
                let n: Int
                do {
                    n = try buf.withUnsafeMutableBytes { raw in
                        try fd.read(fromAbsoluteOffset: offset + Int64(done), into: UnsafeMutableRawBufferPointer(rebasing: raw[done...]))
                    }
                } catch {
                    return .failure(FSError(EIO, "cannot read the staging file \(path): \(error)"))
                }
                if n == 0 { break }   // past the staging file's end: zeros
                done += n
            }
            return .success(buf)
        }
    }

    func truncate(_ size: Int64) async throws(FSError) {
        let path = path
        try await with(create: false) { d -> Result<Void, FSError> in
            guard let fd = d?.fd else { return .success(()) }   // nothing staged
            do { try fd.resize(to: size); return .success(()) } catch {
                return .failure(Self.failure(error, "cannot truncate \(path)"))
            }
        }
    }

    /// Frees the disk blocks of `[lo, hi)` (best effort).
    func punch(_ lo: Int64, _ hi: Int64) async {
        _ = try? await with(create: false) { d -> Result<Void, FSError> in
            // FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
            if let fd = d?.fd { _ = StagingFile.fallocate?(fd.rawValue, 0x02 | 0x01, off_t(lo), off_t(hi - lo)) }
            return .success(())
        }
    }

    /// The data extents of the staging file (SEEK_DATA/SEEK_HOLE) and its size: after a crash
    /// they show staged bytes written after the dirty map was last recorded.
    func dataExtents() async -> (extents: [(Int64, Int64)], size: Int64) {
        (try? await with(create: false) { d -> Result<([(Int64, Int64)], Int64), FSError> in
            guard let fd = d?.fd else { return .success(([], 0)) }
            let r = Self.extents(fd)
            return .success((r.extents, r.size))
        }) ?? ([], 0)
    }

    func sync() async throws(FSError) {
        let path = path
        try await with(create: false) { d -> Result<Void, FSError> in
            guard let d else { return .success(()) }   // nothing staged
            // swift-system has no fsync: the raw call, its errno as an `Errno`.
            for fd in [d.fd, d.logFD] where fsync(fd.rawValue) != 0 {
                return .failure(Self.failure(Errno(rawValue: errno), "cannot fsync \(path)"))
            }
            return .success(())
        }
    }

    /// Removes the files (when they may exist: opened by this object, or recovered).
    func remove() {
        guard existing || descriptors.withLock({ $0 != nil }) else { return }
        unlink(path); unlink(logPath)
    }
}
