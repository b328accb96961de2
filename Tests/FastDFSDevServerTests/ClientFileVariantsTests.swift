// The client's local-file, stream and selection variants end to end against the dev server:
// slave and appender uploads from a path (with metadata), append / modify from a path, slave
// upload and modify from a stream, download into a file with a range, listing one storage,
// query-store-all, and the local-file errors.

import FastDFS
import FastDFSProtocol
import Foundation
import NIOCore
import Testing

@testable import FastDFSDevServer

@Suite("Client end to end: file-path variants")
struct ClientFileVariantsTests {
    static func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test("path variants of slave, appender, append, modify; ranged download to a file")
    func pathVariants() async throws {
        let dir = makeTemporaryDirectory("variants")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write("master content", to: dir + "/master.txt")
        try Self.write("slave content", to: dir + "/thumb.png")
        try Self.write("0123", to: dir + "/log.txt")
        try Self.write("4567", to: dir + "/more.txt")
        try Self.write("xy", to: dir + "/patch.txt")
        try await withDevServer(storagesPerGroup: 2) { (server: DevServer) async throws in
            try await withClient(server) { (client: FastDFSClient) async throws in
                let master = try await client.upload(filePath: dir + "/master.txt", group: "group1")
                #expect(master.group == "group1" && master.filename.hasSuffix(".txt"))

                // Slave from a path: the extension comes from the local name, metadata is set.
                let slave = try await client.uploadSlave(
                    filePath: dir + "/thumb.png", master: master, prefix: "_s", metadata: ["w": "150"])
                #expect(slave.filename == String(master.filename.dropLast(4)) + "_s.png")
                #expect(String(buffer: try await client.download(slave)) == "slave content")
                #expect(try await client.metadata(of: slave) == ["w": "150"])

                // Appender from a path, then append and modify from paths.
                let log = try await client.upload(filePath: dir + "/log.txt", ext: "log", appender: true)
                #expect(try FastDFSClient.decode(log).kind == .appender)
                try await client.append(filePath: dir + "/more.txt", to: log)
                try await client.modify(filePath: dir + "/patch.txt", in: log, at: 2)
                #expect(String(buffer: try await client.download(log)) == "01xy4567")

                // Stream variants (what `fdfs` uses when it draws a progress bar).
                let chunks = [ByteBuffer(string: "stre"), ByteBuffer(string: "amed")]
                let streamedSlave = try await client.uploadSlave(
                    stream: AsyncStream { c in chunks.forEach { c.yield($0) }; c.finish() }, size: 8, master: master,
                    prefix: "_st", ext: "bin", metadata: ["k": "v"])
                #expect(String(buffer: try await client.download(streamedSlave)) == "streamed")
                #expect(try await client.metadata(of: streamedSlave) == ["k": "v"])
                try await client.modify(
                    stream: AsyncStream { c in c.yield(ByteBuffer(string: "AB")); c.finish() }, size: 2, in: log, at: 0)
                #expect(String(buffer: try await client.download(log)) == "ABxy4567")
                await #expect(throws: FastDFSError.self) {
                    // A stream shorter than announced is refused, not sent short.
                    try await client.modify(
                        stream: AsyncStream { c in c.yield(ByteBuffer(string: "A")); c.finish() }, size: 2, in: log, at: 0)
                }
                #expect(String(buffer: try await client.download(log)) == "ABxy4567")
                try await client.modify(ByteBuffer(string: "01"), in: log, at: 0)

                // Ranged download into a file.
                let out = dir + "/range.out"
                #expect(try await client.download(log, toFile: out, offset: 2, length: 4) == 4)
                #expect(try String(contentsOfFile: out, encoding: .utf8) == "xy45")

                // One storage of a group, by id; query-store-all lists every storage.
                let all = try await client.listStorages(group: "group1")
                #expect(all.count == 2)
                let one = try await client.listStorages(group: "group1", storageID: all[1].id)
                #expect(one.map(\.id) == [all[1].id])
                let stores = try await client.queryStoreAll(group: "group1")
                #expect(Set(stores.servers) == Set(server.storageIDs.compactMap(server.storageAddress)))

                for id in [slave, streamedSlave, log, master] { try await client.delete(id) }
            }
        }
    }

    @Test("local-file errors name the path and carry the errno")
    func localFileErrors() async throws {
        let dir = makeTemporaryDirectory("variants-errors")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await withDevServer { (server: DevServer) async throws in
            try await withClient(server) { (client: FastDFSClient) async throws in
                let missing = dir + "/missing.bin"
                do {
                    _ = try await client.upload(filePath: missing)
                    Issue.record("upload of a missing file succeeded")
                } catch let error as FastDFSError {
                    #expect(error.code == .ioError && error.errno == LinuxErrno.ENOENT, "\(error)")
                    #expect(error.description == "cannot open \(missing): No such file or directory")
                }
                let id = try await client.upload(ByteBuffer(string: "x"))
                // A download that fails at once leaves an existing file alone.
                let keep = dir + "/keep.txt"
                try Self.write("keep me", to: keep)
                try await client.delete(id)
                await #expect(throws: FastDFSError.self) { _ = try await client.download(id, toFile: keep) }
                #expect(try String(contentsOfFile: keep, encoding: .utf8) == "keep me")
                let id2 = try await client.upload(ByteBuffer(string: "y"))
                do {
                    _ = try await client.download(id2, toFile: dir + "/no/such/dir/out")
                    Issue.record("download into a missing directory succeeded")
                } catch let error as FastDFSError {
                    #expect(error.code == .ioError && error.errno == LinuxErrno.ENOENT, "\(error)")
                    #expect(error.description == "cannot write \(dir)/no/such/dir/out: No such file or directory")
                }
            }
        }
    }
}
