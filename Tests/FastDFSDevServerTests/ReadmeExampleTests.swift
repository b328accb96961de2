// Keeps README.md's library example true. The lines between README-BEGIN and README-END below
// are the README's ```swift block (minus its imports, with the config path and the local photo
// path as parameters): one test checks the two texts agree, the other compiles and runs the
// example against an in-process dev server and checks what it produced. Edit both together.

import FastDFS
import Foundation
import NIOCore
import Testing

@testable import FastDFSDevServer

@Suite("README library example")
struct ReadmeExampleTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// What the example produced, checked after it ran.
    struct Results {
        var id: FileID, head: ByteBuffer, streamed: Int, thumb: FileID, normal: FileID
        var meta: FDFSMetadata, info: FileIDInfo, remote: FileInfo, groups: [GroupStat], storages: [StorageStat]
    }

    static func readmeExample(conf: String, photo: String) async throws -> Results {
        let thumbBytes = ByteBuffer(string: "a thumbnail")
        var streamed = 0
        func consume(_ chunk: ByteBuffer) { streamed += chunk.readableBytes }

        // README-BEGIN
        let config = try FastDFSConfiguration.load(path: conf)  // or FastDFSConfiguration(trackers: [...])
        let client = FastDFSClient(configuration: config)

        let id = try await client.upload(filePath: photo, metadata: ["width": "800"])   // streamed from disk
        let head = try await client.download(id, offset: 0, length: 1024)                      // ByteBuffer
        for try await chunk in client.downloadStream(id) { consume(chunk) }                    // bounded memory
        let thumb = try await client.uploadSlave(thumbBytes, master: id, prefix: "_150x150", ext: "jpg")

        let log = try await client.upload(ByteBuffer(string: "a\n"), ext: "log", appender: true)
        try await client.append(ByteBuffer(string: "b\n"), to: log)
        try await client.modify(ByteBuffer(string: "A"), in: log, at: 0)
        try await client.truncate(log, to: 1)
        let normal = try await client.regenerateAppenderFilename(log)

        try await client.setMetadata(["author": "bob"], for: id, mode: .merge)
        let meta = try await client.metadata(of: id)
        let info = try FastDFSClient.decode(id)          // local: source, create time, size, crc32, kind
        let remote = try await client.fileInfo(id)       // QUERY_FILE_INFO
        let groups = try await client.listGroups()
        let storages = try await client.listStorages(group: "group1")
        try await client.delete(thumb)
        await client.shutdown()
        // README-END

        return Results(
            id: id, head: head, streamed: streamed, thumb: thumb, normal: normal, meta: meta, info: info,
            remote: remote, groups: groups, storages: storages)
    }

    /// The README's block with the substitutions this file makes (`imports`: its import lines).
    static func readmeBlock() throws -> (imports: [String], body: [String]) {
        let readme = try String(contentsOfFile: packageRoot + "/README.md", encoding: .utf8)
        let lines = readme.components(separatedBy: "\n")
        let section = try #require(lines.firstIndex(of: "## FastDFS: the Swift library"))
        let start = try #require(lines[section...].firstIndex(of: "```swift"))
        let end = try #require(lines[(start + 1)...].firstIndex(of: "```"))
        let block = lines[(start + 1)..<end]
        let imports = block.filter { $0.hasPrefix("import ") }.map { String($0.split(separator: " ")[1]) }
        let body = block.filter { !$0.hasPrefix("import ") }
            .drop { $0.isEmpty }
            .map {
                $0.replacingOccurrences(of: "\"/etc/fdfs/client.conf\"", with: "conf")
                    .replacingOccurrences(of: "\"photo.jpg\"", with: "photo")
            }
        return (imports, Array(body))
    }

    /// The lines between the markers above, unindented.
    static func testedBlock() throws -> [String] {
        let source = try String(contentsOfFile: #filePath, encoding: .utf8).components(separatedBy: "\n")
        let begin = try #require(source.firstIndex { $0.hasSuffix("// README-BEGIN") })
        let end = try #require(source.firstIndex { $0.hasSuffix("// README-END") })
        return source[(begin + 1)..<end].map { $0.hasPrefix("        ") ? String($0.dropFirst(8)) : $0 }
    }

    @Test("the README's swift block is the example tested here")
    func readmeMatches() throws {
        let readme = try Self.readmeBlock()
        let tested = try Self.testedBlock()
        #expect(readme.body == tested, "README.md's library example and ReadmeExampleTests.readmeExample differ: update both")
        // The README imports exactly what this file needs for the example (besides test machinery).
        #expect(readme.imports == ["FastDFS", "NIOCore"])
    }

    @Test("the README's example runs against a dev server")
    func readmeRuns() async throws {
        try await withDevServer { (server: DevServer) async throws in
            let dir = makeTemporaryDirectory("readme")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let conf = dir + "/client.conf"
            try "tracker_server = \(server.trackerAddress)\nnetwork_timeout = 30\n".write(
                toFile: conf, atomically: true, encoding: .utf8)
            let photo = dir + "/photo.jpg"
            let photoBytes = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            try Data(photoBytes).write(to: URL(fileURLWithPath: photo))

            let r = try await Self.readmeExample(conf: conf, photo: photo)

            #expect(r.id.filename.hasSuffix(".jpg"))
            #expect(Array(r.head.readableBytesView) == Array(photoBytes.prefix(1024)))
            #expect(r.streamed == photoBytes.count)
            #expect(r.meta == ["width": "800", "author": "bob"])
            #expect(r.info.size == Int64(photoBytes.count) && r.info.kind == .normal)
            #expect(r.remote.size == Int64(photoBytes.count) && r.remote.crc32 == CRC32.checksum(photoBytes))
            #expect(r.groups.map(\.name) == ["group1"])
            #expect(r.storages.count == 1)
            #expect(r.thumb.filename.hasSuffix("_150x150.jpg"))

            // What the example left behind, seen by a fresh client.
            try await withClient(server) { (client: FastDFSClient) async throws in
                let normal = try await client.download(r.normal)
                #expect(String(buffer: normal) == "A")
                await #expect(throws: FastDFSError.self) { _ = try await client.download(r.thumb) }
            }
        }
    }
}
