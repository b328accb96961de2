// upload, upload-slave, download, append, modify: the commands that move file content.

import ArgumentParser
import FastDFS
import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

extension GlobalOptions {
    /// Runs `body` with a client and shuts it down afterwards.
    func withClient<T>(_ body: (FastDFSClient) async throws -> T) async throws -> T {
        let client = try makeClient()
        do {
            let result = try await body(client)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }
}

/// Opens `FILE|-` (stdin is spooled to a temporary file first) and passes its path and size.
func withInput<T>(_ argument: String, _ body: (String, Int64) async throws -> T) async throws -> T {
    let (path, spooled) = try await LocalFiles.inputPath(argument)
    defer { if let spooled { close(spooled) } }
    guard let size = LocalFiles.size(of: path) else {
        throw FastDFSError(code: .ioError, message: "cannot read \(path): \(Errno(rawValue: errno).description)", errno: errno)
    }
    if LocalFiles.isDirectory(path) {
        throw FastDFSError(code: .ioError, message: "cannot read \(path): Is a directory", errno: EISDIR)
    }
    return try await body(path, size)
}

/// Sends a local file: as a chunk sequence with a progress bar when one is shown (stderr is a
/// terminal and the file is big), otherwise with the library's file-path variant (which streams
/// it too and can retry on a dead pooled connection).
func sendFile<T>(
    _ path: String, size: Int64, label: String,
    viaStream: (FileChunks) async throws -> T, viaPath: () async throws -> T
) async throws -> T {
    guard let progress = ProgressBar.make(total: size, label: label) else { return try await viaPath() }
    let result = try await LocalFiles.fileIO.withFileHandle(_deprecatedPath: path, mode: .read) { handle in
        try await viaStream(FileChunks(handle: handle, size: size, progress: progress))
    }
    progress.finish()
    return result
}

func uploadResultJSON(_ id: FileID, size: Int64, client: FastDFSClient) -> [String: Any] {
    var object: [String: Any] = ["file_id": id.description, "group": id.group, "filename": id.filename, "size": size]
    if let storage = client.sourceStorage(of: id) { object["storage"] = storage.description }
    return object
}

struct Upload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Upload a file and print its new file id.",
        discussion: """
            FILE may be - to read standard input; it (like any pipe given as FILE, e.g. /dev/stdin or \
            <(command)) is spooled to a temporary file in $TMPDIR first because the protocol needs \
            the size up front.
            """
    )

    @Argument(help: "Local file, or - for standard input.") var file: String
    @Option(help: "Extension without the dot, at most 6 characters (default: the file's own).") var ext: String?
    @Option(help: "Group to upload to (default: the tracker chooses).") var group: String?
    @Option(name: .customLong("meta"), help: ArgumentHelp("Metadata to set (repeatable). \(metadataLimitsHelp)", valueName: "key=value")) var meta: [String] = []
    @Flag(help: "Create an appender file (can be appended to, modified, truncated).") var appender = false
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let metadata = try parseMetadata(meta, option: "--meta")
        try await global.withClient { client in
            try await withInput(file) { path, size in
                let ext = self.ext ?? (file == "-" ? "" : FastDFSClient.fileExtension(of: file))
                let id = try await sendFile(path, size: size, label: "upload") { chunks in
                    try await client.upload(stream: chunks, size: size, ext: ext, metadata: metadata, group: group, appender: appender)
                } viaPath: {
                    try await client.upload(filePath: path, ext: ext, metadata: metadata, group: group, appender: appender)
                }
                if global.json { Output.printJSON(uploadResultJSON(id, size: size, client: client)) } else { print(id) }
            }
        }
    }
}

struct UploadSlave: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upload-slave",
        abstract: "Upload a slave file of a master file and print its file id.",
        discussion: "FILE may be - to read standard input (spooled to a temporary file first)."
    )

    @Argument(help: "Local file, or - for standard input.") var file: String
    @Option(help: "The master file id.") var master: String
    @Option(help: "Slave name prefix (1-16 characters of [A-Za-z0-9._-]).") var prefix: String
    @Option(help: "Extension without the dot (default: the file's own).") var ext: String?
    @Option(name: .customLong("meta"), help: ArgumentHelp("Metadata to set (repeatable). \(metadataLimitsHelp)", valueName: "key=value")) var meta: [String] = []
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let masterID = try parseFileID(master)
        let metadata = try parseMetadata(meta, option: "--meta")
        try await global.withClient { client in
            try await withInput(file) { path, size in
                let ext = self.ext ?? (file == "-" ? "" : FastDFSClient.fileExtension(of: file))
                let id = try await sendFile(path, size: size, label: "upload-slave") { chunks in
                    try await client.uploadSlave(stream: chunks, size: size, master: masterID, prefix: prefix, ext: ext, metadata: metadata)
                } viaPath: {
                    try await client.uploadSlave(filePath: path, master: masterID, prefix: prefix, ext: ext, metadata: metadata)
                }
                if global.json {
                    var object = uploadResultJSON(id, size: size, client: client)
                    object["master"] = masterID.description
                    Output.printJSON(object)
                } else {
                    print(id)
                }
            }
        }
    }
}

struct Download: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download a file to OUTPUT, or to standard output when OUTPUT is - or missing.",
        discussion: """
            Without OUTPUT the bytes go to standard output unless it is a terminal (give - to force).
            OUTPUT is created or truncated only once the storage has answered: a failed download \
            (unknown file id, dead server) leaves an existing OUTPUT untouched; one that fails half \
            way removes the partial OUTPUT.
            """
    )

    @Argument(help: "The file id.") var fileID: String
    @Argument(help: "Local file to write, or - for standard output.") var output: String?
    @Option(help: "First byte to read (at or past the end: no bytes, like tail -c).") var offset: Int64 = 0
    @Option(help: "Number of bytes to read (default: to the end; a range past the end is cut at the end).") var length: Int64?
    @Option(help: ArgumentHelp("Read from this storage only (HOST:PORT), e.g. to check what each replica holds; without it any storage that has the file serves it.", valueName: "host:port"))
    var storage: String?
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if let storage, FastDFSConfiguration.parseAddress(storage, defaultPort: 23000) == nil {
            throw ValidationError("--storage must be HOST:PORT, got \(storage)")
        }
        guard offset >= 0 else { throw ValidationError("--offset must not be negative") }
        if let length, length < 0 { throw ValidationError("--length must not be negative") }
    }

    func run() async throws {
        let id = try parseFileID(fileID)
        let toStdout = output == nil || output == "-"
        if toStdout && global.json {
            throw UsageError(message: "--json needs an OUTPUT file (the downloaded bytes go to standard output)")
        }
        if output == nil && isatty(STDOUT_FILENO) == 1 {
            throw UsageError(message: "standard output is a terminal: give OUTPUT, or - to write the bytes there anyway")
        }
        let only = storage.flatMap { FastDFSConfiguration.parseAddress($0, defaultPort: 23000) }
        try await global.withClient { client in
            let progress = try await progressBar(client: client, id: id)
            let stream = client.downloadStream(id, offset: offset, length: length, onlyFrom: only)
            let written: Int64
            if toStdout {
                let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: dup(STDOUT_FILENO))
                defer { try? handle.close() }
                written = try await copy(stream, to: handle, name: "standard output", progress: progress)
            } else {
                written = try await download(stream, to: output!, progress: progress)
            }
            progress?.finish()
            if global.json {
                Output.printJSON(["file_id": id.description, "output": output!, "offset": offset, "bytes": written])
            }
        }
    }

    private func copy(_ stream: FileDownloadStream, to handle: NIOFileHandle, name: String, progress: ProgressBar?) async throws -> Int64 {
        var written: Int64 = 0
        for try await chunk in stream {
            try await write(chunk, to: handle, name: name)
            written += Int64(chunk.readableBytes)
            progress?.advance(by: chunk.readableBytes)
        }
        return written
    }

    /// Downloads into the file at `path`. The output is opened (created or truncated) only once
    /// the storage has answered, so a failed download (unknown id, dead server) leaves an existing
    /// file untouched; a download that fails half way removes the partial file.
    private func download(_ stream: FileDownloadStream, to path: String, progress: ProgressBar?) async throws -> Int64 {
        if LocalFiles.isDirectory(path) {
            throw FastDFSError(
                code: .ioError, message: "cannot write \(path): Is a directory (OUTPUT must be a file path)", errno: EISDIR)
        }
        var chunks = stream.makeAsyncIterator()
        var next = try await chunks.next()
        var removeOnFailure = false
        do {
            return try await LocalFiles.fileIO.withFileHandle(
                _deprecatedPath: path, mode: .write, flags: .posix(flags: O_CREAT | O_TRUNC, mode: 0o644)
            ) { handle in
                // Only a regular file is removed when the download fails: never /dev/stdout, a FIFO...
                removeOnFailure = try handle.withUnsafeFileDescriptor { fd in
                    var st = stat()
                    return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
                }
                var written: Int64 = 0
                while let chunk = next {
                    try await write(chunk, to: handle, name: path)
                    written += Int64(chunk.readableBytes)
                    progress?.advance(by: chunk.readableBytes)
                    next = try await chunks.next()
                }
                return written
            }
        } catch {
            if removeOnFailure { unlink(path) }
            if let e = error as? IOError {
                throw FastDFSError(code: .ioError, message: "cannot write \(path): \(LocalFiles.describe(e))", errno: e.errnoCode)
            }
            throw error
        }
    }

    private func write(_ chunk: ByteBuffer, to handle: NIOFileHandle, name: String) async throws {
        do {
            try await LocalFiles.fileIO.write(fileHandle: handle, buffer: chunk)
        } catch let e as IOError {
            if e.errnoCode == EPIPE { throw ExitCode(1) }
            throw FastDFSError(code: .ioError, message: "cannot write \(name): \(LocalFiles.describe(e))", errno: e.errnoCode)
        }
    }

    /// A bar only for a terminal stderr and more than 4 MiB (asks the size when the id doesn't say it).
    private func progressBar(client: FastDFSClient, id: FileID) async throws -> ProgressBar? {
        guard isatty(STDERR_FILENO) == 1 else { return nil }
        var size = (try? FastDFSClient.decode(id))?.size
        if size == nil { size = try? await client.fileInfo(id).size }
        guard let size else { return nil }
        var total = max(0, size - offset)
        if let length, length > 0 { total = min(total, length) }
        return ProgressBar.make(total: total, label: "download")
    }
}

struct Append: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Append a local file (or - for standard input, spooled first) to an appender file.")

    @Argument(help: "The appender file id.") var fileID: String
    @Argument(help: "Local file, or - for standard input.") var file: String
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let id = try parseFileID(fileID)
        try await global.withClient { client in
            try await withInput(file) { path, size in
                try await sendFile(path, size: size, label: "append") { chunks in
                    try await client.append(stream: chunks, size: size, to: id)
                } viaPath: {
                    try await client.append(filePath: path, to: id)
                }
                if global.json { Output.printJSON(["file_id": id.description, "bytes": size]) }
            }
        }
    }
}

struct Modify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Overwrite part of an appender file with a local file (or - for standard input, spooled first).")

    @Argument(help: "The appender file id.") var fileID: String
    @Argument(help: "Local file, or - for standard input.") var file: String
    @Option(help: "Where to write (at most the current size).") var offset: Int64
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard offset >= 0 else { throw ValidationError("--offset must not be negative") }
    }

    func run() async throws {
        let id = try parseFileID(fileID)
        try await global.withClient { client in
            try await withInput(file) { path, size in
                try await sendFile(path, size: size, label: "modify") { chunks in
                    try await client.modify(stream: chunks, size: size, in: id, at: offset)
                } viaPath: {
                    try await client.modify(filePath: path, in: id, at: offset)
                }
                if global.json { Output.printJSON(["file_id": id.description, "offset": offset, "bytes": size]) }
            }
        }
    }
}
