// delete, truncate, regenerate, info, meta get/set.

import ArgumentParser
import FastDFS
import Foundation

struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a file (its slaves are not touched).")
    @Argument(help: "The file id.") var fileID: String
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let id = try parseFileID(fileID)
        try await global.withClient { client in
            try await client.delete(id)
            if global.json { Output.printJSON(["file_id": id.description, "deleted": true]) }
        }
    }
}

struct Truncate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Set the size of an appender file (a larger size pads with zeros).")
    @Argument(help: "The appender file id.") var fileID: String
    @Argument(help: "The new size in bytes.") var size: Int64
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard size >= 0 else { throw ValidationError("SIZE must not be negative") }
    }

    func run() async throws {
        let id = try parseFileID(fileID)
        try await global.withClient { client in
            try await client.truncate(id, to: size)
            if global.json { Output.printJSON(["file_id": id.description, "size": size]) }
        }
    }
}

struct Regenerate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn an appender file into a normal file and print its new file id (FastDFS 6.02+).")
    @Argument(help: "The appender file id.") var fileID: String
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let id = try parseFileID(fileID)
        try await global.withClient { client in
            let newID = try await client.regenerateAppenderFilename(id)
            if global.json {
                Output.printJSON(["file_id": newID.description, "old_file_id": id.description, "group": newID.group, "filename": newID.filename])
            } else {
                print(newID)
            }
        }
    }
}

struct Info: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a file's source storage, create time, size and crc32, and what the storage says.",
        discussion: """
            The first lines are what fdfs_file_info prints (source, create time, size, crc32), taken
            from the file id like the C client does, or from the storage for appender and slave files
            (whose ids cannot tell them). The storage_* lines are always asked of the storage.

            The storage computes the CRC32 of an appender or slave file by reading all of it, which
            takes minutes for large files, so it is asked only with --crc (otherwise crc32 shows - for
            them). Servers older than 6.15.1 always compute it; if they take longer than
            network_timeout, raise it in client.conf.
            """)
    @Argument(help: "The file id.") var fileID: String
    @Flag(help: "Have the storage compute the CRC32 of an appender or slave file (reads the whole file there).")
    var crc = false
    @Option(help: ArgumentHelp("Ask this storage (HOST:PORT) instead of the one the tracker names.", valueName: "host:port"))
    var storage: String?
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if let storage, FastDFSConfiguration.parseAddress(storage, defaultPort: 23000) == nil {
            throw ValidationError("--storage must be HOST:PORT, got \(storage)")
        }
    }

    func run() async throws {
        let id = try parseFileID(fileID)
        // Ids too short to decode (a slave uploaded without an extension) are still asked about.
        let decoded = try? FastDFSClient.decode(id)
        let only = storage.flatMap { FastDFSConfiguration.parseAddress($0, defaultPort: 23000) }
        let crcFromStorage = crc && decoded?.kind != .normal && decoded?.kind != .trunk
        try await global.withClient { client in
            var server: FileInfo
            do {
                server = try await client.fileInfo(id, calculateCRC32: false, storage: only)
                if crcFromStorage {
                    FileHandle.standardError.write(Data("fdfs: asking the storage for the CRC32 of \(server.size) bytes (it reads the whole file)\n".utf8))
                    server = try await client.fileInfo(id, calculateCRC32: true, storage: only)
                }
            } catch let error as FastDFSError where error.code == .timeout {
                var e = error
                e.message += "; servers older than 6.15.1 compute the CRC32 of the whole file for every QUERY_FILE_INFO: for large files raise network_timeout in client.conf"
                throw e
            }
            let crcKnown = crcFromStorage || decoded?.kind == .normal || decoded?.kind == .trunk
            let kind: String
            switch decoded?.kind {
            case .normal: kind = "normal"
            case .appender: kind = "appender"
            case .slave: kind = "slave"
            case .trunk: kind = "trunk"
            case nil: kind = "unknown"
            }
            var source = server.sourceIP.isEmpty ? "-" : server.sourceIP
            var sourceJSON: [String: Any] = server.sourceIP.isEmpty ? [:] : ["ip": server.sourceIP]
            switch decoded?.source {
            case .ipv4(let ip):
                source = ip
                sourceJSON = ["ip": ip]
            case .storageID(let sid):
                let mapped = client.sourceAddress(of: id)
                source = "storage id \(sid)" + (mapped.map { " (\($0))" } ?? "")
                sourceJSON = ["storage_id": Int(sid)]
                if let mapped { sourceJSON["ip"] = mapped }
            case nil: break
            }
            // Like fdfs_get_file_info: the id's values for normal files, the storage's otherwise.
            let fromID = decoded?.kind == .normal || decoded?.kind == .trunk
            let size = decoded?.size ?? server.size
            let createTime = decoded?.createTime ?? server.modifyTime
            let crc32 = fromID ? decoded!.crc32 : server.crc32
            if global.json {
                let object: [String: Any] = [
                    "file_id": id.description, "group": id.group, "filename": id.filename, "kind": kind,
                    "source": sourceJSON, "create_time": createTime, "size": size, "crc32": Int(crc32),
                    "store_path_index": decoded.map { $0.storePathIndex as Any } ?? NSNull(),
                    "storage": [
                        "size": server.size, "modify_time": server.modifyTime, "crc32": Int(server.crc32),
                        "source_ip": server.sourceIP,
                    ] as [String: Any],
                ]
                Output.printJSON(object)
                return
            }
            let lines: [(String, String)] = [
                ("file_id", id.description),
                ("group", id.group),
                ("kind", kind),
                ("source", source),
                ("create_time", "\(Output.time(createTime)) (\(createTime))"),
                ("size", "\(size)"),
                ("crc32", crcKnown ? "\(crc32) (\(Output.crc(crc32)))" : "- (not computed; --crc asks the storage)"),
                ("storage_size", "\(server.size)"),
                ("storage_modify_time", "\(Output.time(server.modifyTime)) (\(server.modifyTime))"),
                ("storage_crc32", crcKnown || server.crc32 != 0 ? "\(server.crc32) (\(Output.crc(server.crc32)))" : "- (not computed)"),
                ("storage_source_ip", server.sourceIP.isEmpty ? "-" : server.sourceIP),
            ]
            for (key, value) in lines { print("\(key): \(value)") }
        }
    }
}

struct Meta: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read or write a file's metadata.", subcommands: [Get.self, Set.self])

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a file's metadata as KEY=VALUE lines.")
        @Argument(help: "The file id.") var fileID: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let id = try parseFileID(fileID)
            try await global.withClient { client in
                let metadata = try await client.metadata(of: id)
                if global.json {
                    var dict: [String: String] = [:]
                    for (k, v) in metadata.entries { dict[k] = v }
                    Output.printJSON(["file_id": id.description, "metadata": dict])
                } else {
                    for (k, v) in metadata.entries { print("\(k)=\(v)") }
                }
            }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a file's metadata (default: replace all of it).")
        @Argument(help: "The file id.") var fileID: String
        @Argument(help: ArgumentHelp("Metadata items. \(metadataLimitsHelp)", valueName: "key=value")) var items: [String] = []
        @Flag(help: "Add or replace only the given keys.") var merge = false
        @Flag(help: "Replace all metadata with the given items (default; no items deletes all).") var overwrite = false
        @OptionGroup var global: GlobalOptions

        func validate() throws {
            if merge && overwrite { throw ValidationError("--merge and --overwrite exclude each other") }
        }

        func run() async throws {
            let id = try parseFileID(fileID)
            let metadata = try parseMetadata(items, option: "item")
            try await global.withClient { client in
                try await client.setMetadata(metadata, for: id, mode: merge ? .merge : .overwrite)
                if global.json {
                    var dict: [String: String] = [:]
                    for (k, v) in metadata.entries { dict[k] = v }
                    Output.printJSON(["file_id": id.description, "mode": merge ? "merge" : "overwrite", "metadata": dict])
                }
            }
        }
    }
}
