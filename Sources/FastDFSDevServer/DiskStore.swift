// On-disk layout of one storage server, and its blocking file operations.
//
//   <root>/data/XX/YY/<name>      file content (store path M00 is <root>)
//   <root>/data/XX/YY/<name>-m    metadata, packed and sorted (reference §6)
//   <root>/tmp/                   uploads in progress (same filesystem, renamed into place)
//   <root>/data/XX/YY/000001      a trunk file (trunk mode, see TrunkFiles.swift)
//   <root>/sync/binlog.000        operations to replicate (see Binlog.swift)
//   <root>/sync/storage<n>.mark   how far storage<n> of the group has applied this binlog
//
// Every method here blocks; callers run them on the NIO thread pool (`BlockingIO`), never on an
// event loop or the cooperative pool.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FastDFSProtocol
import NIOCore

/// errno-carrying failure of a disk operation.
struct DiskError: Error, CustomStringConvertible {
    var errno: Int32
    var operation: String
    var path: String
    var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }

    /// The status to send (ENOSPC stays ENOSPC, everything odd becomes EIO).
    var status: FDFSErrno {
        switch errno {
        case ENOENT: .enoent
        case ENOSPC, EDQUOT: .enospc
        case EEXIST: .eexist
        case EISDIR: .eisdir
        case EINVAL: .einval
        case EACCES: .eacces
        case EPERM: .eperm
        case EFBIG: .efbig  // truncate to a size the filesystem cannot hold (the real storage passes errno on)
        default: .eio
        }
    }
}

struct FileStatus: Sendable {
    var size: Int64
    var mtime: Int64
    var isRegular: Bool
}

struct DiskSpace: Sendable, Equatable {
    var totalMB: Int64
    var freeMB: Int64
}

final class DiskStore: Sendable {
    let root: String
    let dataDirectory: String
    let tmpDirectory: String
    let syncDirectory: String
    /// `trunk_file_size`: the size new trunk files are created with.
    let trunkFileSize: Int64

    init(root: String, trunkFileSize: Int64 = 64 << 20) {
        self.root = root
        self.trunkFileSize = trunkFileSize
        self.dataDirectory = root + "/data"
        self.tmpDirectory = root + "/tmp"
        self.syncDirectory = root + "/sync"
    }

    /// Creates the directories and removes leftovers of interrupted uploads.
    func prepare() throws(DiskError) {
        for dir in [root, dataDirectory, tmpDirectory, syncDirectory] { try Self.makeDirectories(dir) }
        if let d = opendir(tmpDirectory) {
            defer { closedir(d) }
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                    String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                }
                if name != "." && name != ".." { unlink(tmpDirectory + "/" + name) }
            }
        }
    }

    static func makeDirectories(_ path: String) throws(DiskError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw DiskError(errno: errno, operation: "mkdir", path: current)
            }
        }
    }

    func path(of name: StoredFilename) -> String { dataDirectory + "/" + name.relativePath }
    func metadataPath(of name: StoredFilename) -> String { path(of: name) + "-m" }

    /// The status of a stored file: a trunk name is looked up in its trunk file, any other name
    /// on disk.
    func status(of name: StoredFilename) -> FileStatus? {
        if let trunk = TrunkLocation(name) { return trunkStatus(trunk) }
        return Self.status(path(of: name))
    }

    static func status(_ path: String) -> FileStatus? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        #if os(Linux)
        let mtime = Int64(st.st_mtim.tv_sec)
        #else
        let mtime = Int64(st.st_mtimespec.tv_sec)
        #endif
        return FileStatus(size: Int64(st.st_size), mtime: mtime, isRegular: (st.st_mode & S_IFMT) == S_IFREG)
    }

    func exists(_ name: StoredFilename) -> Bool { status(of: name)?.isRegular == true }

    /// statvfs of the data directory's filesystem, in MiB (what `df -m` shows).
    func diskSpace() -> DiskSpace {
        var s = statvfs()
        guard statvfs(dataDirectory, &s) == 0 else { return DiskSpace(totalMB: 0, freeMB: 0) }
        let unit = Int64(s.f_frsize == 0 ? s.f_bsize : s.f_frsize)
        return DiskSpace(
            totalMB: Int64(s.f_blocks) * unit / (1024 * 1024),
            freeMB: Int64(s.f_bavail) * unit / (1024 * 1024))
    }

    // MARK: temp files

    /// A new empty file in tmp/, opened for writing.
    func createTemporaryFile() throws(DiskError) -> (fd: Int32, path: String) {
        for _ in 0..<10 {
            let path = tmpDirectory + "/upload-\(UInt64.random(in: 0...UInt64.max))"
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd >= 0 { return (fd, path) }
            if errno != EEXIST { throw DiskError(errno: errno, operation: "create", path: path) }
        }
        throw DiskError(errno: EEXIST, operation: "create", path: tmpDirectory)
    }

    /// Moves a finished temp file to its final name; fails with EEXIST instead of replacing.
    func commit(temporary: String, to name: StoredFilename) throws(DiskError) {
        try Self.makeDirectories(dataDirectory + "/" + name.directory)
        let target = path(of: name)
        if link(temporary, target) != 0 {
            let e = errno
            // Filesystems without hard links: rename after checking the name is free (the dev
            // server is the only writer of its data directory).
            guard e == EPERM || e == EOPNOTSUPP || e == EXDEV || e == EMLINK else {
                throw DiskError(errno: e, operation: "link", path: target)
            }
            guard Self.status(target) == nil else { throw DiskError(errno: EEXIST, operation: "link", path: target) }
            guard rename(temporary, target) == 0 else { throw DiskError(errno: errno, operation: "rename", path: target) }
            return
        }
        unlink(temporary)
    }

    static func writeAll(fd: Int32, buffer: ByteBuffer, at offset: Int64) throws(DiskError) {
        var written = 0
        let total = buffer.readableBytes
        while written < total {
            let n = buffer.withUnsafeReadableBytes { raw in
                pwrite(fd, raw.baseAddress! + written, total - written, off_t(offset + Int64(written)))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw DiskError(errno: errno, operation: "write", path: "fd \(fd)")
            }
            written += n
        }
    }

    static func readChunk(fd: Int32, at offset: Int64, count: Int, allocator: ByteBufferAllocator) throws(DiskError)
        -> ByteBuffer
    {
        var buffer = allocator.buffer(capacity: count)
        var failure: Int32 = 0
        let got = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw -> Int in
            var done = 0
            while done < count {
                let n = pread(fd, raw.baseAddress! + done, count - done, off_t(offset + Int64(done)))
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return done
                }
                if n == 0 { break }
                done += n
            }
            return done
        }
        if failure != 0 { throw DiskError(errno: failure, operation: "read", path: "fd \(fd)") }
        _ = got
        return buffer
    }

    static func openForReading(_ path: String) throws(DiskError) -> Int32 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DiskError(errno: errno, operation: "open", path: path) }
        return fd
    }

    static func openForWriting(_ path: String) throws(DiskError) -> Int32 {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DiskError(errno: errno, operation: "open", path: path) }
        return fd
    }

    // MARK: whole-file operations

    /// Deletes a file and its `-m` metadata; a trunk name frees its slot on this storage's copy of
    /// the trunk file (the allocator is told by the caller).
    func removeFile(_ name: StoredFilename) throws(DiskError) {
        let p = path(of: name)
        if let trunk = TrunkLocation(name) {
            guard trunkStatus(trunk) != nil else { throw DiskError(errno: ENOENT, operation: "unlink", path: p) }
            try clearTrunkSlot(trunk)
        } else {
            guard unlink(p) == 0 else { throw DiskError(errno: errno, operation: "unlink", path: p) }
        }
        unlink(p + "-m")
    }

    /// Opens a stored file's content: the descriptor and where the content starts in it.
    func openContent(_ name: StoredFilename) throws(DiskError) -> (fd: Int32, base: Int64) {
        if let trunk = TrunkLocation(name) {
            guard trunkStatus(trunk) != nil else { throw DiskError(errno: ENOENT, operation: "open", path: path(of: name)) }
            return (try Self.openForReading(path(of: trunk.trunkFile)), trunk.dataOffset)
        }
        return (try Self.openForReading(path(of: name)), 0)
    }

    /// CRC-32 of a stored file's content.
    func crc32(of name: StoredFilename) throws(DiskError) -> UInt32 {
        guard let st = status(of: name) else { throw DiskError(errno: ENOENT, operation: "open", path: path(of: name)) }
        let (fd, base) = try openContent(name)
        defer { close(fd) }
        return try Self.crc32(fd: fd, from: base, length: st.size, path: path(of: name))
    }

    /// Sets a file's modification time (replicated writes carry the source's timestamp).
    static func setModificationTime(_ path: String, seconds: Int64) {
        var times = [timespec(tv_sec: time_t(seconds), tv_nsec: 0), timespec(tv_sec: time_t(seconds), tv_nsec: 0)]
        _ = utimensat(AT_FDCWD, path, &times, 0)
    }

    func truncateFile(_ name: StoredFilename, to size: Int64) throws(DiskError) {
        let p = path(of: name)
        guard truncate(p, off_t(size)) == 0 else { throw DiskError(errno: errno, operation: "truncate", path: p) }
    }

    func renameFile(_ from: StoredFilename, to: StoredFilename) throws(DiskError) {
        try Self.makeDirectories(dataDirectory + "/" + to.directory)
        guard rename(path(of: from), path(of: to)) == 0 else {
            throw DiskError(errno: errno, operation: "rename", path: path(of: from))
        }
    }

    /// Raw `-m` content, nil when there is none.
    func readMetadata(_ name: StoredFilename) -> [UInt8]? { Self.readSmallFile(metadataPath(of: name)) }

    /// Replaces the `-m` file atomically; nil deletes it.
    func writeMetadata(_ name: StoredFilename, _ bytes: [UInt8]?) throws(DiskError) {
        let target = metadataPath(of: name)
        guard let bytes else {
            unlink(target)
            return
        }
        try Self.writeSmallFile(target, bytes, temporaryDirectory: tmpDirectory)
    }

    static func readSmallFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    static func writeSmallFile(_ path: String, _ bytes: [UInt8], temporaryDirectory: String) throws(DiskError) {
        let tmp = temporaryDirectory + "/small-\(UInt64.random(in: 0...UInt64.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DiskError(errno: errno, operation: "create", path: tmp) }
        if let error = bytes.withUnsafeBytes({ writeAll(fd, $0, path: tmp) }) {
            close(fd)
            unlink(tmp)
            throw error
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw DiskError(errno: e, operation: "rename", path: path)
        }
    }

    /// Writes every byte of `bytes` to `fd`, retrying short writes and EINTR; the error, if any.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) -> DiskError? {
        var off = 0
        while off < bytes.count {
            let n = write(fd, bytes.baseAddress! + off, bytes.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                return DiskError(errno: errno, operation: "write", path: path)
            }
            off += n
        }
        return nil
    }

    /// CRC-32 of the whole file, read in 1 MiB chunks.
    static func crc32(ofFile path: String) throws(DiskError) -> UInt32 {
        let fd = try openForReading(path)
        defer { close(fd) }
        return try crc32(fd: fd, from: 0, length: nil, path: path)
    }

    /// CRC-32 of `length` bytes from `offset` (to the end when nil).
    static func crc32(fd: Int32, from offset: Int64, length: Int64?, path: String) throws(DiskError) -> UInt32 {
        var crc = CRC32()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var position = offset
        var remaining = length ?? Int64.max
        while remaining > 0 {
            let want = Int(min(Int64(chunk.count), remaining))
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, want, off_t(position)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DiskError(errno: errno, operation: "read", path: path)
            }
            if n == 0 { break }
            chunk.withUnsafeBytes { crc.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            position += Int64(n)
            remaining -= Int64(n)
        }
        return crc.value
    }

    /// Copies `length` bytes from `input` at `from` to `output` at `to`, in 1 MiB chunks; fails with
    /// EIO when the input ends early.
    static func copyRange(from input: Int32, at from: Int64, length: Int64, to output: Int32, at to: Int64)
        throws(DiskError)
    {
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var done: Int64 = 0
        while done < length {
            let want = Int(min(Int64(chunk.count), length - done))
            let n = chunk.withUnsafeMutableBytes { pread(input, $0.baseAddress!, want, off_t(from + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DiskError(errno: errno, operation: "read", path: "fd \(input)")
            }
            if n == 0 { throw DiskError(errno: EIO, operation: "read (short)", path: "fd \(input)") }
            var written = 0
            while written < n {
                let w = chunk.withUnsafeBytes { pwrite(output, $0.baseAddress! + written, n - written, off_t(to + done + Int64(written))) }
                if w < 0 {
                    if errno == EINTR { continue }
                    throw DiskError(errno: errno, operation: "write", path: "fd \(output)")
                }
                written += w
            }
            done += Int64(n)
        }
    }

    /// Copies `source` to `target` through a temp file in `temporaryDirectory` (replication).
    static func copyFile(_ source: String, to target: String, temporaryDirectory: String) throws(DiskError) {
        let input = try openForReading(source)
        defer { close(input) }
        let tmp = temporaryDirectory + "/copy-\(UInt64.random(in: 0...UInt64.max))"
        let output = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw DiskError(errno: errno, operation: "create", path: tmp) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                close(output)
                unlink(tmp)
                throw DiskError(errno: e, operation: "read", path: source)
            }
            if n == 0 { break }
            if let error = chunk.withUnsafeBytes({ writeAll(output, UnsafeRawBufferPointer(rebasing: $0[0..<n]), path: tmp) }) {
                close(output)
                unlink(tmp)
                throw error
            }
        }
        close(output)
        let dir = String(target[..<(target.lastIndex(of: "/") ?? target.endIndex)])
        try makeDirectories(dir)
        guard rename(tmp, target) == 0 else {
            let e = errno
            unlink(tmp)
            throw DiskError(errno: e, operation: "rename", path: target)
        }
    }
}
