// Captured vectors of the tracker query commands 101–107 in 6.16.1, 6.06 and 5.12.
import NIOCore
import Testing
@testable import FastDFSProtocol

@Suite("Vectors: tracker queries (101–107)")
struct TrackerQueryVectorTests {
    @Test func queryStoreOne() throws {
        let records = try VectorStore.records(cmds: [101, 104])
        #expect(records.count == 6)
        for v in records {
            // Request: deterministic from the notes.
            let group: String? = v.cmd == 104 ? .some(try #require(v.note("group"))) : nil
            let request = QueryStoreRequest(group: group)
            #expect(packet(request) == v.requestBytes, "\(v)")
            var (header, reqBody) = try v.request()
            #expect(header.command == UInt8(v.cmd))
            #expect(try QueryStoreRequest.decode(body: &reqBody, command: FDFSCommand(rawValue: header.command)!) == request)

            var body = try v.okBody()
            let original = body
            let response = try QueryStoreResponse.decode(body: &body)
            #expect(body.readableBytes == 0)
            #expect(response.group == "group1", "\(v)")
            #expect(response.ipWidth == 15)
            let stated = try #require(v.note("storage"))
            #expect(response.server.description == stated, "\(v)")
            #expect(Int64(response.storePathIndex) == v.noteInt("store_path_index"), "\(v)")
            #expect(encoded { response.encode(into: &$0) } == original.bytes, "\(v)")
            #expect(FDFSPacket.response(status: 0, body: original).bytes == v.responseBytes)
        }
    }

    @Test func queryStoreAll() throws {
        let records = try VectorStore.records(cmds: [106, 107])
        #expect(records.count == 6)
        for v in records {
            let group: String? = v.cmd == 107 ? .some(try #require(v.note("group"))) : nil
            let request = QueryStoreAllRequest(group: group)
            #expect(packet(request) == v.requestBytes, "\(v)")
            var (_, reqBody) = try v.request()
            #expect(try QueryStoreAllRequest.decode(body: &reqBody) == request)

            var body = try v.okBody()
            let original = body
            let response = try QueryStoreAllResponse.decode(body: &body)
            let count = try #require(v.capture(#"-> (\d+) storages"#).flatMap { Int($0) })
            #expect(response.servers.count == count, "\(v)")
            #expect(response.servers.first?.description == v.note("first"), "\(v)")
            #expect(Int64(response.storePathIndex) == v.noteInt("store_path_index"))
            #expect(response.group == "group1")
            // Every server listed carries the cluster's storage port.
            let port = try #require(v.note("first")?.split(separator: ":").last.flatMap { Int($0) })
            #expect(response.servers.allSatisfy { $0.port == port })
            #expect(encoded { response.encode(into: &$0) } == original.bytes, "\(v)")
        }
    }

    @Test func queryFetchOneAndUpdate() throws {
        let records = try VectorStore.records(cmds: [102, 103])
        #expect(records.count == 9)
        for v in records {
            let fileID = try #require(v.fileID, "\(v): no file id in notes")
            let kind: QueryFetchKind = v.cmd == 102 ? .fetchOne : .update
            let request = QueryFetchRequest(kind: kind, fileID: fileID)
            #expect(packet(request) == v.requestBytes, "\(v)")
            var (_, reqBody) = try v.request()
            #expect(try QueryFetchRequest.decode(body: &reqBody, kind: kind) == request)

            if v.status != 0 {
                try VectorStore.expectError(v)
                continue
            }
            var body = try v.okBody()
            let original = body
            let response = try QueryFetchResponse.decode(body: &body)
            #expect(response.group == fileID.group)
            #expect([response.server] == v.resultAddresses, "\(v)")
            #expect(response.ipWidth == 15)
            #expect(encoded { response.encode(into: &$0) } == original.bytes)
        }
    }

    @Test func queryFetchAllBothLayouts() throws {
        let records = try VectorStore.records(cmds: [105])
        #expect(records.count == 6)
        for v in records {
            let fileID = try #require(v.fileID)
            let request = QueryFetchRequest(kind: .fetchAll, fileID: fileID)
            #expect(packet(request) == v.requestBytes, "\(v)")
            var (_, reqBody) = try v.request()
            #expect(try QueryFetchRequest.decode(body: &reqBody, kind: .fetchAll) == request)

            var body = try v.okBody()
            let original = body
            let response = try QueryFetchAllResponse.decode(body: &body)
            let count = try #require(v.capture(#"-> (\d+) storage"#).flatMap { Int($0) })
            #expect(response.servers.count == count, "\(v)")
            #expect(response.servers == v.resultAddresses, "\(v)")
            if count > 1 {
                // 6.16.1 repeats the port (62 bytes); 6.06/5.12 share one port (54 bytes).
                #expect(response.layout == (v.isOld ? .sharedPort : .portPerServer), "\(v)")
                #expect(original.readableBytes == (v.isOld ? 54 : 62))
            }
            #expect(encoded { response.encode(into: &$0) } == original.bytes, "\(v)")
            // With the W hint learned from a 102 reply the result is the same.
            var hinted = original
            #expect(try QueryFetchAllResponse.decode(body: &hinted, ipWidthHint: 15) == response)
        }
    }
}
