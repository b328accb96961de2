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
        abstract: "Show what a file id says (source, create time, size, crc32, kind) and what the storage says.")
    @Argument(help: "The file id.") var fileID: String
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let id = try parseFileID(fileID)
        let decoded: FileIDInfo
        do {
            decoded = try FastDFSClient.decode(id)
        } catch {
            throw UsageError(message: "\"\(fileID)\" is not a FastDFS file id: \(error.message)")
        }
        try await global.withClient { client in
            let server = try await client.fileInfo(id, calculateCRC32: true)
            let kind: String
            switch decoded.kind {
            case .normal: kind = "normal"
            case .appender: kind = "appender"
            case .slave: kind = "slave"
            case .trunk: kind = "trunk"
            }
            let source: String
            var sourceJSON: [String: Any] = [:]
            switch decoded.source {
            case .ipv4(let ip):
                source = ip
                sourceJSON["ip"] = ip
            case .storageID(let sid):
                let mapped = client.configuration.storageIDs[sid]?.host
                source = "storage id \(sid)" + (mapped.map { " (\($0))" } ?? "")
                sourceJSON["storage_id"] = Int(sid)
                if let mapped { sourceJSON["ip"] = mapped }
            }
            if global.json {
                var object: [String: Any] = [
                    "file_id": id.description, "group": id.group, "filename": id.filename, "kind": kind,
                    "source": sourceJSON, "create_time": decoded.createTime, "crc32": Int(decoded.crc32),
                    "store_path_index": decoded.storePathIndex,
                    "storage": [
                        "size": server.size, "modify_time": server.modifyTime, "crc32": Int(server.crc32),
                        "source_ip": server.sourceIP,
                    ] as [String: Any],
                ]
                object["size"] = decoded.size.map { $0 as Any } ?? NSNull()
                Output.printJSON(object)
                return
            }
            let lines: [(String, String)] = [
                ("file_id", id.description),
                ("group", id.group),
                ("kind", kind),
                ("source", source),
                ("create_time", "\(Output.time(decoded.createTime)) (\(decoded.createTime))"),
                ("size", decoded.size.map { "\($0)" } ?? "unknown from the id (\(kind) file)"),
                ("crc32", Output.crc(decoded.crc32)),
                ("storage_size", "\(server.size)"),
                ("storage_modify_time", "\(Output.time(server.modifyTime)) (\(server.modifyTime))"),
                ("storage_crc32", Output.crc(server.crc32)),
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
        @Argument(help: ArgumentHelp("Metadata items.", valueName: "key=value")) var items: [String] = []
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
