import Dispatch
import Synchronization
import FuseTypes
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
        var fd: Int32
        var logFD: Int32
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
        if let d = descriptors.withLock({ $0 }) { Glibc.close(d.fd); Glibc.close(d.logFD) }
    }

    /// The descriptors (on the queue). `create`: made when missing; otherwise nil when the
    /// files do not exist (nothing was staged).
    private func open(create: Bool) -> Result<Descriptors?, FSError> {
        if let d = descriptors.withLock({ $0 }) { return .success(d) }
        let fd = Glibc.open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0o600)
        guard fd >= 0 else {
            let e = errno
            if e == ENOENT && !create { return .success(nil) }
            return .failure(FSError(e == ENOSPC ? ENOSPC : EIO, "cannot open the staging file \(path): \(String(cString: strerror(e)))"))
        }
        let logFD = Glibc.open(path + ".log", O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard logFD >= 0 else {
            let e = errno
            Glibc.close(fd)
            return .failure(FSError(e == ENOSPC ? ENOSPC : EIO, "cannot open the write log \(path).log: \(String(cString: strerror(e)))"))
        }
        let d = Descriptors(fd: fd, logFD: logFD)
        descriptors.withLock { $0 = d }
        return .success(d)
    }

    /// Runs `body` on the queue with the descriptors (nil when nothing is staged and `create` is false).
    private func with<T: Sendable>(create: Bool, _ body: @escaping @Sendable (Descriptors?) -> Result<T, FSError>) async throws(FSError) -> T {
        try await run { [self] in
            switch open(create: create) {
            case .success(let d): return body(d)
            case .failure(let e): return .failure(e)
            }
        }
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
            var done = 0
            while done < data.count {
                let n = data.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, data.count - done, off_t(offset) + off_t(done)) }
                if n < 0 {
                    if errno == EINTR { continue }
                    let e = errno
                    return .failure(FSError(e == ENOSPC ? ENOSPC : EIO, "cannot stage \(data.count) bytes in \(path): \(String(cString: strerror(e)))"))
                }
                done += n
            }
            var entry = [UInt8]()
            entry.reserveCapacity(24)
            for v in [generation, UInt64(bitPattern: offset), UInt64(data.count)] {
                withUnsafeBytes(of: v.littleEndian) { entry.append(contentsOf: $0) }
            }
            while true {
                let n = entry.withUnsafeBytes { Glibc.write(logFD, $0.baseAddress!, 24) }
                if n == 24 { break }
                if n < 0 && errno == EINTR { continue }
                let e = n < 0 ? errno : ENOSPC
                return .failure(FSError(e == ENOSPC ? ENOSPC : EIO, "cannot log a write in \(path).log: \(String(cString: strerror(e)))"))
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

    /// The whole content of an open file (blocking).
    static func readAll(_ fd: Int32) -> [UInt8] {
        let size = Int(lseek(fd, 0, SEEK_END))
        guard size > 0 else { return [] }
        var buf = [UInt8](repeating: 0, count: size)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, size, 0) }
        return n > 0 ? Array(buf[..<n]) : []
    }

    /// Data extents (SEEK_DATA/SEEK_HOLE) and size of an open file (blocking).
    static func extents(_ fd: Int32) -> (extents: [(Int64, Int64)], size: Int64) {
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
        let logFD = Glibc.open(stagingPath + ".log", O_RDONLY | O_CLOEXEC)
        if logFD >= 0 {
            logged = parseLog(readAll(logFD), generation: generation)
            Glibc.close(logFD)
        }
        let fd = Glibc.open(stagingPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return (logged, [], 0) }
        defer { Glibc.close(fd) }
        let (e, size) = extents(fd)
        return (logged, e, size)
    }

    /// Empties the log (its ranges are in the recorded dirty map now).
    func clearLog() async {
        _ = try? await with(create: false) { d -> Result<Void, FSError> in
            if let d { _ = ftruncate(d.logFD, 0) }
            return .success(())
        }
    }

    /// Empties the staging file and its log in one trip to the staging queue (after a commit).
    func reset() async {
        _ = try? await with(create: false) { d -> Result<Void, FSError> in
            if let d {
                _ = ftruncate(d.fd, 0)
                _ = ftruncate(d.logFD, 0)
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
                let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
                if n < 0 {
                    if errno == EINTR { continue }
                    return .failure(FSError(EIO, "cannot read the staging file \(path): \(String(cString: strerror(errno)))"))
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
            return ftruncate(fd, off_t(size)) == 0 ? .success(()) : .failure(FSError(EIO, "cannot truncate \(path): \(String(cString: strerror(errno)))"))
        }
    }

    /// Frees the disk blocks of `[lo, hi)` (best effort).
    func punch(_ lo: Int64, _ hi: Int64) async {
        _ = try? await with(create: false) { d -> Result<Void, FSError> in
            // FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
            if let fd = d?.fd { _ = StagingFile.fallocate?(fd, 0x02 | 0x01, off_t(lo), off_t(hi - lo)) }
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
            return fsync(d.fd) == 0 && fsync(d.logFD) == 0 ? .success(()) : .failure(FSError(EIO, "cannot fsync \(path): \(String(cString: strerror(errno)))"))
        }
    }

    /// Removes the files (when they may exist: opened by this object, or recovered).
    func remove() {
        guard existing || descriptors.withLock({ $0 != nil }) else { return }
        unlink(path); unlink(logPath)
    }
}
