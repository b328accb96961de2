// ProtocolVectorSupport: the one loader of the captured FastDFS exchanges in
// Tests/ProtocolVectors (request and reply bytes of real V6.16.1, V6.06 and V5.12
// servers, with notes), used by the codec, client and dev server tests. A missing directory or
// file throws (the test fails with what to do): the vectors are required, never skipped.

import Foundation

/// One captured request/response pair.
public struct CapturedExchange: Sendable, Hashable, CustomStringConvertible {
    /// "6.16.1", "6.06" or "5.12".
    public var version: String
    public var op: String
    /// "tracker" or "storage".
    public var server: String
    public var cmd: Int
    public var requestHex: String
    /// Empty when the server sent nothing (QUIT).
    public var responseHex: String
    public var notes: String
    /// The captured server's "ip:port".
    public var serverAddress: String
    /// The reply status; nil when there was no reply.
    public var status: Int?

    public var request: [UInt8] { ProtocolVectorFiles.bytes(hex: requestHex) }
    public var response: [UInt8] { ProtocolVectorFiles.bytes(hex: responseHex) }
    /// "6.16.1 storage_upload_file".
    public var description: String { "\(version) \(op)" }
}

public enum ProtocolVectorFiles {
    public static let versions = ["6.16.1", "6.06", "5.12"]
    /// Records in each capture file (a truncated file is an error, not fewer tests).
    public static let recordsPerFile = 52

    public struct Missing: Error, CustomStringConvertible {
        public var description: String
    }

    /// `<package root>/Tests/ProtocolVectors`, found from this file's path (test data of the
    /// package: nothing outside the repository is read).
    public static var directory: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // ProtocolVectorSupport
            .deletingLastPathComponent()  // Tests
            .appendingPathComponent("ProtocolVectors")
            .standardizedFileURL
    }

    private struct Record: Decodable {
        var op: String
        var server: String
        var cmd: Int
        var request_hex: String
        var response_hex: String
        var notes: String
        var server_addr: String
        var status: Int?
    }

    /// The records of `fastdfs-VERSION.jsonl`, in capture order.
    public static func load(version: String) throws -> [CapturedExchange] {
        let dir = directory
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw Missing(description: "protocol vectors directory \(dir.path) is missing; it is part of the repository (restore it with git checkout -- Tests/ProtocolVectors)")
        }
        let file = dir.appendingPathComponent("fastdfs-\(version).jsonl")
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw Missing(description: "vector file \(file.path) is missing or unreadable")
        }
        let decoder = JSONDecoder()
        var out: [CapturedExchange] = []
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            let r = try decoder.decode(Record.self, from: Data(line))
            out.append(CapturedExchange(
                version: version, op: r.op, server: r.server, cmd: r.cmd, requestHex: r.request_hex,
                responseHex: r.response_hex, notes: r.notes, serverAddress: r.server_addr, status: r.status))
        }
        guard out.count == recordsPerFile else {
            throw Missing(description: "\(file.path) has \(out.count) records, expected \(recordsPerFile)")
        }
        return out
    }

    /// Every record of the three captures.
    public static func all() throws -> [CapturedExchange] {
        try versions.flatMap { try load(version: $0) }
    }

    /// Hex text to bytes (either case; other characters are skipped).
    public static func bytes(hex: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8?
        for c in hex.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): v = c - UInt8(ascii: "A") + 10
            default: continue
            }
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return out
    }
}
