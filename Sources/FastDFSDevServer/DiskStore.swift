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
import SystemPackage

/// errno-carrying failure of a disk operation.
struct DiskError: Error, CustomStringConvertible {
    var errno: Int32
    var operation: String
    var path: String
    var description: String { "\(operation) \(path): \(Errno(rawValue: errno))" }

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

extension DiskError {
    /// A failed swift-system call: its `Errno` (EIO for anything else).
    init(_ error: any Error, operation: String, path: String) {
        self.init(errno: (error as? Errno)?.rawValue ?? EIO, operation: operation, path: path)
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
            do {
                let fd = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec],
                                                 permissions: Self.filePermissions)
                return (fd.rawValue, path)
            } catch {
                if (error as? Errno) != .fileExists { throw DiskError(error, operation: "create", path: path) }
            }
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

    /// rw-r--r-- (0644): the mode of every file the store creates.
    static let filePermissions: FilePermissions = [.ownerReadWrite, .groupRead, .otherRead]

    static func writeAll(fd: Int32, buffer: ByteBuffer, at offset: Int64) throws(DiskError) {
        do {
            _ = try buffer.withUnsafeReadableBytes { try FileDescriptor(rawValue: fd).writeAll(toAbsoluteOffset: offset, $0) }
        } catch {
            throw DiskError(error, operation: "write", path: "fd \(fd)")
        }
    }

    /// Up to `count` bytes from `offset` (fewer at the end of the file).
    static func readChunk(fd: Int32, at offset: Int64, count: Int, allocator: ByteBufferAllocator) throws(DiskError)
        -> ByteBuffer
    {
        let file = FileDescriptor(rawValue: fd)
        var buffer = allocator.buffer(capacity: count)
        do {
            _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw -> Int in
                var done = 0
                while done < count {
                    let n = try file.read(fromAbsoluteOffset: offset + Int64(done),
                                          into: UnsafeMutableRawBufferPointer(rebasing: raw[done..<count]))
                    if n == 0 { break }
                    done += n
                }
                return done
            }
        } catch {
            throw DiskError(error, operation: "read", path: "fd \(fd)")
        }
        return buffer
    }

    static func openForReading(_ path: String) throws(DiskError) -> Int32 {
        try openFile(path, .readOnly).rawValue
    }

    static func openForWriting(_ path: String) throws(DiskError) -> Int32 {
        try openFile(path, .writeOnly).rawValue
    }

    /// Opens an existing file (close-on-exec).
    static func openFile(_ path: String, _ mode: SystemPackage.FileDescriptor.AccessMode) throws(DiskError)
        -> SystemPackage.FileDescriptor
    {
        do {
            return try FileDescriptor.open(FilePath(path), mode, options: [.closeOnExec])
        } catch {
            throw DiskError(error, operation: "open", path: path)
        }
    }

    /// Creates (or empties) `path` for writing, mode 0644 (close-on-exec).
    static func createFile(_ path: String) throws(DiskError) -> SystemPackage.FileDescriptor {
        do {
            return try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .truncate, .closeOnExec],
                                           permissions: filePermissions)
        } catch {
            throw DiskError(error, operation: "create", path: path)
        }
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
        defer { try? FileDescriptor(rawValue: fd).close() }
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
        guard let fd = try? FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec]) else { return nil }
        defer { try? fd.close() }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            // A read error ends the content like the end of the file does.
            guard let n = try? chunk.withUnsafeMutableBytes({ try fd.read(into: $0) }), n > 0 else { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    static func writeSmallFile(_ path: String, _ bytes: [UInt8], temporaryDirectory: String) throws(DiskError) {
        let tmp = temporaryDirectory + "/small-\(UInt64.random(in: 0...UInt64.max))"
        let fd = try createFile(tmp)
        if let error = bytes.withUnsafeBytes({ writeAll(fd.rawValue, $0, path: tmp) }) {
            try? fd.close()
            unlink(tmp)
            throw error
        }
        try? fd.close()
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw DiskError(errno: e, operation: "rename", path: path)
        }
    }

    /// Writes every byte of `bytes` to `fd` (short writes and EINTR are retried); the error, if any.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) -> DiskError? {
        do {
            _ = try FileDescriptor(rawValue: fd).writeAll(bytes)
            return nil
        } catch {
            return DiskError(error, operation: "write", path: path)
        }
    }

    /// CRC-32 of the whole file, read in 1 MiB chunks.
    static func crc32(ofFile path: String) throws(DiskError) -> UInt32 {
        let fd = try openFile(path, .readOnly)
        defer { try? fd.close() }
        return try crc32(fd: fd.rawValue, from: 0, length: nil, path: path)
    }

    /// CRC-32 of `length` bytes from `offset` (to the end when nil).
    static func crc32(fd: Int32, from offset: Int64, length: Int64?, path: String) throws(DiskError) -> UInt32 {
        let file = FileDescriptor(rawValue: fd)
        var crc = CRC32()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var position = offset
        var remaining = length ?? Int64.max
        while remaining > 0 {
            let want = Int(min(Int64(chunk.count), remaining))
            let n: Int
            do {
                n = try chunk.withUnsafeMutableBytes {
                    try file.read(fromAbsoluteOffset: position, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want]))
                }
            } catch {
                throw DiskError(error, operation: "read", path: path)
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
        let source = FileDescriptor(rawValue: input), target = FileDescriptor(rawValue: output)
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var done: Int64 = 0
        while done < length {
            let want = Int(min(Int64(chunk.count), length - done))
            let n: Int
            do {
                n = try chunk.withUnsafeMutableBytes {
                    try source.read(fromAbsoluteOffset: from + done, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want]))
                }
            } catch {
                throw DiskError(error, operation: "read", path: "fd \(input)")
            }
            if n == 0 { throw DiskError(errno: EIO, operation: "read (short)", path: "fd \(input)") }
            do {
                _ = try target.writeAll(toAbsoluteOffset: to + done, chunk[0..<n])
            } catch {
                throw DiskError(error, operation: "write", path: "fd \(output)")
            }
            done += Int64(n)
        }
    }

    /// Copies `source` to `target` through a temp file in `temporaryDirectory` (replication).
    static func copyFile(_ source: String, to target: String, temporaryDirectory: String) throws(DiskError) {
        let input = try openFile(source, .readOnly)
        defer { try? input.close() }
        let tmp = temporaryDirectory + "/copy-\(UInt64.random(in: 0...UInt64.max))"
        let output = try createFile(tmp)
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n: Int
            do {
                n = try chunk.withUnsafeMutableBytes { try input.read(into: $0) }
            } catch {
                try? output.close()
                unlink(tmp)
                throw DiskError(error, operation: "read", path: source)
            }
            if n == 0 { break }
            if let error = chunk.withUnsafeBytes({ writeAll(output.rawValue, UnsafeRawBufferPointer(rebasing: $0[0..<n]), path: tmp) }) {
                try? output.close()
                unlink(tmp)
                throw error
            }
        }
        try? output.close()
        let dir = String(target[..<(target.lastIndex(of: "/") ?? target.endIndex)])
        try makeDirectories(dir)
        guard rename(tmp, target) == 0 else {
            let e = errno
            unlink(tmp)
            throw DiskError(errno: e, operation: "rename", path: target)
        }
    }
}
