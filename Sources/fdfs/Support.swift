// CLI helpers: argument parsing of file ids and KEY=VALUE, JSON and table output, the stderr
// progress bar, spooling stdin to a temp file, and streaming files with NIO's thread pool.

import ArgumentParser
import FastDFS
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Arguments

func parseFileID(_ text: String) throws -> FileID {
    do {
        return try FileID.parse(text)
    } catch {
        throw UsageError(message: "\"\(text)\" is not a FastDFS file id (expected GROUP/M00/XX/YY/NAME): \(error)")
    }
}

func parseMetadata(_ pairs: [String], option: String) throws -> FDFSMetadata {
    var metadata = FDFSMetadata()
    for pair in pairs {
        guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
            throw UsageError(message: "\(option) \"\(pair)\": expected KEY=VALUE (a non-empty KEY)")
        }
        let key = String(pair[..<eq]), value = String(pair[pair.index(after: eq)...])
        // The storage would cut longer keys/values silently; refuse them instead.
        guard key.utf8.count <= FDFSMetadata.maxKeyLength else {
            throw UsageError(message: "\(option) \"\(key)\": KEY is \(key.utf8.count) bytes, at most \(FDFSMetadata.maxKeyLength) allowed")
        }
        guard value.utf8.count <= FDFSMetadata.maxValueLength else {
            throw UsageError(
                message: "\(option) \"\(key)=...\": VALUE is \(value.utf8.count) bytes, at most \(FDFSMetadata.maxValueLength) allowed")
        }
        metadata.entries.append((key: key, value: value))
    }
    return metadata
}

/// Help text shared by every option or argument that takes KEY=VALUE metadata.
let metadataLimitsHelp = "KEY at most 64 bytes, VALUE at most 256 bytes: longer ones are refused (the storage would cut them silently)."

// MARK: - Output

enum Output {
    static func printJSON(_ object: [String: Any]) {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        FileHandle.standardOutput.write(data)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }

    static func printTable(_ header: [String], _ rows: [[String]]) {
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        print(line(header))
        for row in rows { print(line(row)) }
    }

    static func time(_ seconds: Int64) -> String {
        guard seconds > 0 else { return "-" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss 'UTC'"
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    static func crc(_ value: UInt32) -> String { String(format: "0x%08X", value) }
}

// MARK: - Progress

/// A one-line progress bar on stderr, only when stderr is a terminal and the transfer is big.
final class ProgressBar: Sendable {
    static let threshold: Int64 = 4 << 20

    let total: Int64
    let label: String
    private let state = Mutex<(done: Int64, lastDraw: ContinuousClock.Instant?)>((0, nil))

    private init(total: Int64, label: String) {
        self.total = total
        self.label = label
    }

    /// nil when no bar should be shown.
    static func make(total: Int64?, label: String) -> ProgressBar? {
        guard let total, total > threshold, isatty(STDERR_FILENO) == 1 else { return nil }
        return ProgressBar(total: total, label: label)
    }

    func advance(by bytes: Int) {
        let (done, draw) = state.withLock { s -> (Int64, Bool) in
            s.done += Int64(bytes)
            let now = ContinuousClock.now
            if let last = s.lastDraw, last.duration(to: now) < .milliseconds(100), s.done < total { return (s.done, false) }
            s.lastDraw = now
            return (s.done, true)
        }
        if draw { render(done) }
    }

    func finish() {
        let done = state.withLock { $0.done }
        render(done)
        FileHandle.standardError.write(Data("\n".utf8))
    }

    private func render(_ done: Int64) {
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
        let mib = { (b: Int64) in String(format: "%.1f", Double(b) / 1_048_576) }
        let text = "\r\(label) [\(bar)] \(Int(fraction * 100))% \(mib(done))/\(mib(total)) MiB"
        FileHandle.standardError.write(Data(text.utf8))
    }
}

// MARK: - Local files

enum LocalFiles {
    static let fileIO = NonBlockingFileIO(threadPool: .singleton)

    /// Copies a stream (stdin, a pipe) to a temporary file (the protocol needs the size up front) on NIO's
    /// thread pool. The file is unlinked as soon as it is created, so nothing is left behind even
    /// when fdfs is killed; it is reached through `/dev/fd/N` until the returned descriptor is
    /// closed by the caller.
    static func spool(_ source: Int32, name: String) async throws -> (path: String, fd: Int32) {
        let directory = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        return try await NIOThreadPool.singleton.runIfActive {
            var template = Array("\(directory)/fdfs-stdin-XXXXXX".utf8CString)
            let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard fd >= 0 else {
                throw FastDFSError(code: .ioError, message: "cannot create a temporary file in \(directory): \(Errno(rawValue: errno))")
            }
            unlink(String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            let input = FileDescriptor(rawValue: source), output = FileDescriptor(rawValue: fd)
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n: Int
                do {
                    n = try buffer.withUnsafeMutableBytes { try input.read(into: $0) }
                } catch {
                    try? output.close()
                    throw FastDFSError(code: .ioError, message: "reading \(name) failed: \(error)")
                }
                if n == 0 { break }
                do {
                    _ = try output.writeAll(buffer[0..<n])
                } catch {
                    try? output.close()
                    throw FastDFSError(code: .ioError, message: "spooling \(name) to \(directory) failed: \(error)")
                }
            }
            return ("/dev/fd/\(fd)", fd)
        }
    }

    /// Resolves `FILE|-` to a readable path; `-` spools stdin. Returns the path and, for a
    /// spooled input, the descriptor the caller closes when done.
    /// Pipes and other non-regular files (`/dev/stdin`, `<(command)`) are spooled like `-`.
    static func inputPath(_ argument: String) async throws -> (path: String, fd: Int32?) {
        if argument == "-" {
            let spooled = try await spool(STDIN_FILENO, name: "standard input")
            return (spooled.path, spooled.fd)
        }
        var st = stat()
        guard stat(argument, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG, (st.st_mode & S_IFMT) != S_IFDIR else {
            return (argument, nil)  // regular files are streamed by the library; errors are reported there
        }
        // open() of a FIFO blocks until a writer appears: not on the cooperative pool.
        let source: SystemPackage.FileDescriptor
        do {
            source = try await NIOThreadPool.singleton.runIfActive { try FileDescriptor.open(FilePath(argument), .readOnly) }
        } catch let error as Errno {
            throw FastDFSError(code: .ioError, message: "cannot read \(argument): \(error)", errno: error.rawValue)
        }
        defer { try? source.close() }
        let spooled = try await spool(source.rawValue, name: argument)
        return (spooled.path, spooled.fd)
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// "Permission denied" for an IOError (NIO's own description names its syscall wrapper).
    static func describe(_ error: IOError) -> String { "\(Errno(rawValue: error.errnoCode))" }

    static func size(of path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int64(st.st_size)
    }
}

/// A file's content as an AsyncSequence of chunks read on NIO's thread pool, reporting progress.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let handle: NIOFileHandle
    let size: Int64
    let progress: ProgressBar?

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: NIOFileHandle
        let size: Int64
        let progress: ProgressBar?
        var offset: Int64 = 0

        mutating func next() async throws -> ByteBuffer? {
            guard offset < size else { return nil }
            let count = Int(Swift.min(Int64(256 * 1024), size - offset))
            let chunk = try await LocalFiles.fileIO.read(
                fileHandle: handle, fromOffset: offset, byteCount: count, allocator: ByteBufferAllocator())
            guard chunk.readableBytes > 0 else { return nil }
            offset += Int64(chunk.readableBytes)
            progress?.advance(by: chunk.readableBytes)
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handle: handle, size: size, progress: progress) }
}
