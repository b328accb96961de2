// Routing as the C client does it (§10.1): which tracker query precedes each storage command,
// the group sent with 104, and the store path index from the tracker's reply carried into the
// upload head.

import FastDFSProtocol
import Foundation
import NIOCore
import Testing

@testable import FastDFS

@Suite("Routing (fake server)")
struct RoutingTests {
    let vectors: ProtocolVectors
    init() throws { vectors = try ProtocolVectors.load("6.16.1") }

    /// Tracker replies name this server with store path index 3; storage commands get the
    /// 6.16.1 captures' replies.
    func script() -> @Sendable (FakeFDFSServer.Request) -> FakeFDFSServer.Reply {
        let vectors = self.vectors
        return { request in
            switch request.command {
            case .trackerQueryStoreWithoutGroupOne, .trackerQueryStoreWithGroupOne:
                var group = request.body
                let name = request.body.readableBytes == 16 ? group.readFDFSFixedString(width: 16) ?? "?" : "group1"
                var body = ByteBuffer()
                QueryStoreResponse(group: name, server: request.server, storePathIndex: 3).encode(into: &body)
                return .ok(body)
            case .trackerQueryFetchOne, .trackerQueryUpdate:
                return .send(TrackerReplies.queryFetch(request.server))
            case .storageUploadFile: return .canned(vectors["storage_upload_file"].response)
            case .storageUploadSlaveFile: return .canned(vectors["storage_upload_slave_file"].response)
            case .storageQueryFileInfo: return .canned(vectors["storage_query_file_info"].response)
            case .storageDownloadFile: return .canned(vectors["storage_download_file"].response)
            case .storageGetMetadata: return .canned(vectors["storage_get_metadata"].response)
            case .storageSetMetadata, .storageDeleteFile: return .ok()
            default: return .status(.einval)
            }
        }
    }

    func uploadHead(_ request: FakeFDFSServer.Request) throws -> UploadRequestHead {
        var body = request.body
        return try #require(try UploadRequestHead.decode(head: &body, bodyLength: Int64(request.body.readableBytes)))
    }

    @Test func eachOperationAsksTheTrackerTheCClientsQuestion() async throws {
        let server = try await FakeFDFSServer.start(script: script())
        var config = FastDFSConfiguration(trackers: [server.address])
        config.readStallTimeout = .seconds(3600)  // these tests count requests: no hedging on a loaded machine
        config.storageConnectRetries = 0
        let client = FastDFSClient(configuration: config)

        // Upload without a group: 101, and the head carries the tracker's store path index.
        let id = try await client.upload(ByteBuffer(string: "hello fdfs"), ext: "txt")
        #expect(server.commands == [101, 11])
        let first = try #require(server.requests.last { $0.command == .storageUploadFile })
        #expect(try uploadHead(first).storePathIndex == 3)

        // Upload into a group: 104 with the group name.
        _ = try await client.upload(ByteBuffer(string: "hello fdfs"), ext: "txt", group: "group7")
        #expect(Array(server.commands.suffix(2)) == [104, 11])
        var query = try #require(server.requests.last { $0.command == .trackerQueryStoreWithGroupOne }).body
        #expect(try QueryStoreRequest.decode(body: &query).group == "group7")

        // Reads ask 102 (fetch); writes to an existing file and slave uploads ask 103 (update).
        func after(_ body: () async throws -> Void) async throws -> [UInt8] {
            let before = server.commands.count
            try await body()
            return Array(server.commands.dropFirst(before))
        }
        // The first read also asks for the group's storage list once (92, cached), to go straight
        // to a file's source storage when it is listed ACTIVE; this fake tracker refuses it.
        #expect(try await after { _ = try await client.download(id) } == [92, 102, 14])
        #expect(try await after { _ = try await client.fileInfo(id) } == [102, 22])
        #expect(try await after { _ = try await client.metadata(of: id) } == [103, 15])
        #expect(try await after { try await client.setMetadata(["a": "b"], for: id) } == [103, 13])
        #expect(
            try await after {
                _ = try await client.uploadSlave(ByteBuffer(string: "s"), master: id, prefix: "_s", ext: "txt")
            } == [103, 21])
        #expect(try await after { try await client.delete(id) } == [103, 12])

        await client.shutdown()
        await server.stop()
    }
}
