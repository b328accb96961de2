// client.conf reader with the syntax of libfastcommon's ini reader (§9 of the reference):
// trimmed lines, `#` comments, `#include <file>` (relative to the including file's directory),
// `[section]` headers (ignored: client keys are global), `key = value`, repeatable keys,
// booleans true/yes/on/1. Every error names the file, the line and the key.

import FastDFSProtocol
import SystemPackage

struct ClientConfigParser {
    struct Entry {
        var key: String
        var value: String
        var file: String
        var line: Int
    }

    private(set) var entries: [Entry] = []
    static let maxIncludeDepth = 8

    mutating func parse(_ text: String, path: String, depth: Int) throws(FastDFSError) {
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = String(rawLine).trimmingWhitespace()
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                if line.hasPrefix("#include") {
                    let rest = String(line.dropFirst("#include".count))
                    guard rest.first == " " || rest.first == "\t" else { continue }  // e.g. "#includes" is a comment
                    var target = rest.trimmingWhitespace()
                    if target.count >= 2, target.first == "\"" || target.first == "<",
                        target.last == "\"" || target.last == ">"
                    {
                        target = String(target.dropFirst().dropLast())
                    }
                    guard !target.isEmpty else {
                        throw Self.error("#include without a file name", file: path, line: lineNumber, key: nil)
                    }
                    guard depth < Self.maxIncludeDepth else {
                        throw Self.error(
                            "#include nested more than \(Self.maxIncludeDepth) levels (include loop?)",
                            file: path, line: lineNumber, key: nil)
                    }
                    let resolved = Self.resolve(target, relativeTo: path)
                    let included = try Self.readFile(resolved, includedFrom: (path, lineNumber))
                    try parse(included, path: resolved, depth: depth + 1)
                }
                continue
            }
            if line.hasPrefix("[") && line.hasSuffix("]") { continue }  // section header
            guard let eq = line.firstIndex(of: "=") else {
                throw Self.error("expected \"key = value\", got \"\(line)\"", file: path, line: lineNumber, key: nil)
            }
            let key = String(line[..<eq]).trimmingWhitespace()
            let value = String(line[line.index(after: eq)...]).trimmingWhitespace()
            guard !key.isEmpty else {
                throw Self.error("missing key before '='", file: path, line: lineNumber, key: nil)
            }
            entries.append(Entry(key: key, value: value, file: path, line: lineNumber))
        }
    }

    func makeConfiguration(mainPath: String, requireTrackers: Bool = true) throws(FastDFSError) -> FastDFSConfiguration {
        var config = FastDFSConfiguration(trackers: [])
        config.useConnectionPool = false  // client.conf default
        var trackerEntries: [Entry] = []
        var storageIDsFile: Entry?
        var useStorageID: Entry?
        for entry in entries {
            switch entry.key {
            case "tracker_server":
                switch StorageAddress.parse(entry.value, defaultPort: 22122) {
                case .success(let address):
                    trackerEntries.append(entry)
                    config.trackers.append(address)
                case .failure(let failure):
                    throw Self.error(failure.reason, entry: entry)
                }
            case "connect_timeout":
                if let s = try Self.seconds(entry) { config.connectTimeout = .seconds(s) }
            case "network_timeout":
                if let s = try Self.seconds(entry) { config.networkTimeout = .seconds(s) }
            case "use_connection_pool":
                config.useConnectionPool = Self.bool(entry.value)
            case "connection_pool_max_idle_time":
                guard let s = try Self.seconds(entry) else {
                    throw Self.error("must be a positive number of seconds, got \"\(entry.value)\"", entry: entry)
                }
                config.connectionPoolMaxIdleTime = .seconds(s)
            case "connection_pool_max_connections", "max_connections_per_server":
                // Not a C client key; accepted so the mount's own conf can bound the pool.
                guard let n = Int(entry.value), n > 0 else {
                    throw Self.error("must be a positive integer, got \"\(entry.value)\"", entry: entry)
                }
                config.maxConnectionsPerServer = n
            case "use_storage_id":
                useStorageID = entry
            case "storage_ids_filename":
                storageIDsFile = entry
            case "load_fdfs_parameters_from_tracker":
                config.loadParametersFromTracker = Self.bool(entry.value)
            default:
                continue  // base_path, log_level, http.*, connect_first_by...: no effect here
            }
        }
        if config.trackers.isEmpty && requireTrackers {
            throw FastDFSError(
                code: .configuration,
                message: "\(mainPath): key tracker_server: missing; add a line like \"tracker_server = 127.0.0.1:22122\"",
                errno: LinuxErrno.EINVAL)
        }
        if config.trackers.count > 16 {
            throw Self.error("more than 16 tracker_server lines (FastDFS allows at most 16)", entry: trackerEntries[16])
        }
        // As in the C client: use_storage_id is only read when parameters don't come from the tracker.
        if !config.loadParametersFromTracker, let useStorageID, Self.bool(useStorageID.value) {
            config.useStorageID = true
            guard let storageIDsFile, !storageIDsFile.value.isEmpty else {
                throw Self.error(
                    "use_storage_id is true but storage_ids_filename is not set",
                    file: useStorageID.file, line: useStorageID.line, key: "storage_ids_filename")
            }
            let idsPath = Self.resolve(storageIDsFile.value, relativeTo: mainPath)
            let text = try Self.readFile(idsPath, includedFrom: (storageIDsFile.file, storageIDsFile.line))
            let table = try StorageIDTable.parse(text, path: idsPath)
            config.storageIDs = table.addresses
            config.storageIDGroups = table.groups
        }
        return config
    }

    // MARK: - Values

    /// true/yes/on/1 (any case) are true, anything else is false (libfastcommon's rule).
    static func bool(_ value: String) -> Bool {
        ["true", "yes", "on", "1"].contains(value.lowercased())
    }

    /// Whole seconds; nil for values ≤ 0 (the C client then keeps its default).
    private static func seconds(_ entry: Entry) throws(FastDFSError) -> Int64? {
        guard let n = Int64(entry.value) else {
            throw error("expected a whole number of seconds, got \"\(entry.value)\"", entry: entry)
        }
        return n > 0 ? n : nil
    }

    // MARK: - Files

    static func resolve(_ path: String, relativeTo file: String) -> String {
        if path.hasPrefix("/") { return path }
        guard let slash = file.lastIndex(of: "/") else { return path }
        return String(file[...slash]) + path
    }

    /// Reads a small text file (configuration files only; called at startup, not on hot paths).
    static func readFile(_ path: String, includedFrom: (file: String, line: Int)?) throws(FastDFSError) -> String {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(path), .readOnly)
        } catch {
            let code = error as? Errno
            var where_ = ""
            if let includedFrom { where_ = "\(includedFrom.file):\(includedFrom.line): " }
            throw FastDFSError(
                code: .configuration,
                message: "\(where_)cannot read configuration file \(path): \(error)",
                errno: code == .noSuchFileOrDirectory ? LinuxErrno.ENOENT : (code == .permissionDenied ? LinuxErrno.EACCES : LinuxErrno.EIO))
        }
        defer { try? fd.close() }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n: Int
            do {
                n = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) }
            } catch {
                throw FastDFSError(code: .configuration, message: "cannot read configuration file \(path): \(error)", errno: LinuxErrno.EIO)
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            if bytes.count > 16 << 20 {
                throw FastDFSError(code: .configuration, message: "configuration file \(path) is larger than 16 MiB", errno: LinuxErrno.EINVAL)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Errors

    static func error(_ reason: String, entry: Entry) -> FastDFSError {
        error(reason, file: entry.file, line: entry.line, key: entry.key)
    }

    static func error(_ reason: String, file: String, line: Int, key: String?) -> FastDFSError {
        let keyPart = key.map { "key \($0): " } ?? ""
        return FastDFSError(code: .configuration, message: "\(file):\(line): \(keyPart)\(reason)", errno: LinuxErrno.EINVAL)
    }
}
