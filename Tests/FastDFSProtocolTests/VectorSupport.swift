// The captured protocol vectors (loaded by ProtocolVectorSupport) with helpers to split their
// packets and parse their `notes` text.
import Foundation
import NIOCore
import ProtocolVectorSupport
import Testing
@testable import FastDFSProtocol

/// The codec tests' name for a captured exchange, with the field spellings of the capture files.
typealias ProtocolVector = CapturedExchange

extension CapturedExchange {
    var request_hex: String { requestHex }
    var response_hex: String { responseHex }
    var server_addr: String { serverAddress }
    var isOld: Bool { version != "6.16.1" }
    var requestBytes: [UInt8] { request }
    var responseBytes: [UInt8] { response }

    /// The request split into header and body.
    func request() throws -> (FDFSHeader, ByteBuffer) {
        var buffer = ByteBuffer(bytes: requestBytes)
        let header = try #require(try FDFSHeader.decode(from: &buffer), "\(self): request shorter than a header")
        #expect(Int64(buffer.readableBytes) == header.bodyLength, "\(self): request body length mismatch")
        return (header, buffer)
    }

    /// The response split into header and body (nil when there was none, e.g. QUIT).
    func response() throws -> (FDFSHeader, ByteBuffer)? {
        if response_hex.isEmpty { return nil }
        var buffer = ByteBuffer(bytes: responseBytes)
        let header = try #require(try FDFSHeader.decode(from: &buffer), "\(self): response shorter than a header")
        #expect(Int64(buffer.readableBytes) == header.bodyLength, "\(self): response body length mismatch")
        return (header, buffer)
    }

    /// A successful response body (checks cmd 100 and status 0).
    func okBody() throws -> ByteBuffer {
        let (header, body) = try #require(try response(), "\(self): no response")
        #expect(header.command == FDFSCommand.response.rawValue)
        #expect(header.status == 0, "\(self): status \(header.status)")
        return body
    }

    // MARK: notes parsing

    /// The value after `key=`: quoted text for `key='...'`, otherwise up to a space, ';' or ','.
    func note(_ key: String) -> String? {
        guard let range = notes.range(of: key + "=") else { return nil }
        // Make sure the key starts a word (so "group=" does not match inside "storage_group=").
        if range.lowerBound > notes.startIndex {
            let before = notes[notes.index(before: range.lowerBound)]
            if before.isLetter || before == "_" || before == "." { return note(key, after: range.upperBound) }
        }
        return readValue(from: range.upperBound)
    }

    private func note(_ key: String, after index: String.Index) -> String? {
        guard let range = notes[index...].range(of: key + "=") else { return nil }
        let before = notes[notes.index(before: range.lowerBound)]
        if before.isLetter || before == "_" || before == "." { return note(key, after: range.upperBound) }
        return readValue(from: range.upperBound)
    }

    private func readValue(from start: String.Index) -> String? {
        var rest = notes[start...]
        if rest.first == "'" {
            rest.removeFirst()
            guard let end = rest.firstIndex(of: "'") else { return nil }
            return String(rest[..<end])
        }
        let end = rest.firstIndex(where: { $0 == " " || $0 == ";" || $0 == "," }) ?? rest.endIndex
        return String(rest[..<end])
    }

    func noteInt(_ key: String) -> Int64? { note(key).flatMap { Int64($0) } }

    /// The first match of a regex's first capture group.
    func capture(_ pattern: String) -> String? {
        guard let regex = try? Regex(pattern), let match = notes.firstMatch(of: regex),
              match.output.count > 1, let sub = match.output[1].substring else { return nil }
        return String(sub)
    }

    /// All "a.b.c.d:port" addresses after the first "->".
    var resultAddresses: [StorageAddress] {
        guard let arrow = notes.range(of: "->") else { return [] }
        let text = notes[arrow.upperBound...]
        return text.matches(of: /(\d+\.\d+\.\d+\.\d+):(\d+)/).map {
            StorageAddress(host: String($0.output.1), port: Int($0.output.2)!)
        }
    }

    /// The file id in `file=` / `appender=`.
    var fileID: FileID? { (note("file") ?? note("appender")).flatMap(FileID.init) }

    /// The file id produced by the operation ("-> group1/M00/...").
    var resultFileID: FileID? { capture(#"-> (group\d+/M[^\s;]+)"#).flatMap(FileID.init) }
}

func hexBytes(_ hex: String) -> [UInt8] { ProtocolVectorFiles.bytes(hex: hex) }

extension ByteBuffer {
    var bytes: [UInt8] { getBytes(at: readerIndex, length: readableBytes) ?? [] }
}

func encoded(_ write: (inout ByteBuffer) -> Void) -> [UInt8] {
    var buffer = ByteBuffer()
    write(&buffer)
    return buffer.bytes
}

func packet<R: FDFSRequest>(_ request: R, content: [UInt8] = []) -> [UInt8] {
    FDFSPacket.encode(request).bytes + content
}

enum VectorStore {
    static let versions = ProtocolVectorFiles.versions

    /// Every record of all three files (throws, failing the test, when they are missing).
    static func all() throws -> [ProtocolVector] { try ProtocolVectorFiles.all() }

    static func load(version: String) throws -> [ProtocolVector] { try ProtocolVectorFiles.load(version: version) }

    /// Records of the given commands in all versions.
    static func records(cmds: Set<Int>) throws -> [ProtocolVector] {
        try all().filter { cmds.contains($0.cmd) }
    }

    /// Checks an error response: cmd 100, the recorded status, empty body.
    static func expectError(_ v: ProtocolVector) throws {
        let (header, body) = try #require(try v.response(), "\(v): no response")
        #expect(header.command == 100, "\(v)")
        #expect(Int(header.status) == v.status, "\(v)")
        #expect(header.status != 0, "\(v)")
        #expect(body.readableBytes == 0, "\(v): error reply must be empty")
        let errno = FDFSErrno(rawValue: header.status)
        if let stated = v.capture(#"returned errno (\d+)"#) {
            #expect(Int(errno.rawValue) == Int(stated), "\(v)")
        }
        #expect(errno.name == (header.status == 2 ? "ENOENT" : "EINVAL"), "\(v)")
        // The packet builder produces the same bytes.
        #expect(FDFSPacket.response(status: header.status).bytes == v.responseBytes, "\(v)")
    }
}
