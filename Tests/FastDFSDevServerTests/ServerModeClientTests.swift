// The client library against the two real-world server modes (issue 9): storage ids in file ids
// (`use_storage_id`, `id_type_in_filename = id`) and trunk files (small files packed into trunk
// files, 60-character remote names). Every call works; appender changes still go to the source
// only, found through the storage id; a source outage is refused, not sent to the replica.

import FastDFS
import FastDFSProtocol
import Foundation
import NIOCore
import Testing

@testable import FastDFSDevServer

enum ServerMode: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case storageIDs, trunk
    var testDescription: String { rawValue }
    func configure(_ c: inout DevServerConfiguration) {
        switch self {
        case .storageIDs: c.useStorageIDs = true
        case .trunk: c.trunk = TrunkParameters()
        }
    }
}

@Suite("Client against storage-id and trunk servers")
struct ServerModeClientTests {
    @Test("every client call", arguments: ServerMode.allCases)
    func everyCall(mode: ServerMode) async throws {
        try await withDevServer(storagesPerGroup: 2, configure: mode.configure) { (server: DevServer) async throws in
            try await withClient(server) { client in
                let id = try await client.upload(ByteBuffer(string: "hello fdfs"), ext: "txt", metadata: ["a": "1"])
                let info = try FastDFSClient.decode(id)
                switch mode {
                case .storageIDs:
                    guard case .storageID(let n) = info.source else { Issue.record("\(id): not an id source"); return }
                    #expect((100001...100002).contains(n))
                    #expect(info.kind == .normal)
                case .trunk:
                    #expect(info.kind == .trunk && id.filename.count == 60, "\(id)")
                }
                #expect(info.size == 10)
                #expect(String(buffer: try await client.download(id)) == "hello fdfs")
                #expect(String(buffer: try await client.download(id, offset: 2, length: 5)) == "llo f")
                #expect(try await client.metadata(of: id) == ["a": "1"])
                #expect(try await client.fileInfo(id).size == 10)
                let slave = try await client.uploadSlave(ByteBuffer(string: "thumb"), master: id, prefix: "_t", ext: "txt")
                #expect(String(buffer: try await client.download(slave)) == "thumb")
                #expect(try FastDFSClient.decode(slave).kind == .slave)

                let app = try await client.upload(ByteBuffer(string: "0123"), ext: "log", appender: true)
                #expect(try FastDFSClient.decode(app).kind == .appender, "appender files are never trunk files")
                try await client.append(ByteBuffer(string: "4567"), to: app)
                try await client.modify(ByteBuffer(string: "xy"), in: app, at: 1)
                try await client.truncate(app, to: 6)
                #expect(String(buffer: try await client.download(app)) == "0xy345")
                #expect(try await client.listedSource(of: app) != nil, "the source is found from the file id")

                try await server.waitForReplication()
                for storage in server.storageIDs.compactMap(server.storageAddress) {
                    let held = try await client.download(id, storage: storage)
                    #expect(String(buffer: held) == "hello fdfs", "\(storage)")
                }
                try await client.delete(slave)
                try await client.delete(id)
                try await client.delete(app)
            }
        }
    }

    @Test("an appender change during a source outage is refused, never sent to the replica", arguments: ServerMode.allCases)
    func sourceOutage(mode: ServerMode) async throws {
        try await withDevServer(storagesPerGroup: 2, configure: mode.configure) { (server: DevServer) async throws in
            try await withClient(server) { client in
                let app = try await client.upload(ByteBuffer(string: "abc"), ext: "log", appender: true)
                try await server.waitForReplication()
                let source = try #require(await client.listedSource(of: app))
                let node = try #require(server.storageIDs.first { server.storageAddress($0) == source.address })
                try await server.stopStorage(node)
                let error = await #expect(throws: FastDFSError.self) { try await client.append(ByteBuffer(string: "def"), to: app) }
                #expect(error?.code == .sourceUnavailable && error?.errno == LinuxErrno.EIO)
                try await server.startStorage(node)
                try await client.append(ByteBuffer(string: "def"), to: app)
                try await server.waitForReplication()
                for storage in server.storageIDs.compactMap(server.storageAddress) {
                    #expect(String(buffer: try await client.download(app, storage: storage)) == "abcdef", "\(storage)")
                }
            }
        }
    }
}
