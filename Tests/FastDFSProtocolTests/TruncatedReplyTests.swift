// Every captured fixed-layout reply, one byte short or one byte long, is rejected with a clean
// error; cut to every shorter length it never traps.
import NIOCore
import Testing
@testable import FastDFSProtocol

@Suite("Truncated and oversized replies")
struct TruncatedReplyTests {
    typealias Decode = @Sendable (inout ByteBuffer) throws -> Void

    /// Reply decoder per command, for replies whose length is fixed by the layout.
    static let fixedLayout: [Int: Decode] = [
        101: { _ = try QueryStoreResponse.decode(body: &$0) },
        104: { _ = try QueryStoreResponse.decode(body: &$0) },
        106: { _ = try QueryStoreAllResponse.decode(body: &$0) },
        107: { _ = try QueryStoreAllResponse.decode(body: &$0) },
        102: { _ = try QueryFetchResponse.decode(body: &$0) },
        103: { _ = try QueryFetchResponse.decode(body: &$0) },
        105: { _ = try QueryFetchAllResponse.decode(body: &$0) },
        90: { _ = try GroupStat.decode(body: &$0) },
        91: { _ = try GroupStat.decodeList(body: &$0) },
        92: { _ = try StorageStat.decodeList(body: &$0) },
        98: { _ = try VolumeStatResponse.decode(body: &$0) },
        22: { _ = try QueryFileInfoResponse.decode(body: &$0) },
    ]

    @Test func offByOne() throws {
        var checked = 0
        for v in try VectorStore.all() where v.status == 0 {
            guard let decode = Self.fixedLayout[v.cmd] else { continue }
            let body = try v.okBody()
            var exact = body
            try decode(&exact)
            for variant in [Array(body.bytes.dropLast()), body.bytes + [0], body.bytes + [0x31]] {
                var buffer = ByteBuffer(bytes: variant)
                #expect(throws: FDFSProtocolError.self, "\(v) with \(variant.count) bytes") { try decode(&buffer) }
            }
            checked += 1
        }
        #expect(checked == 3 * 14 + 1, "every fixed-layout reply in all three captures (+ VOLUME_STAT in 6.16.1)")
    }

    @Test func everyShorterLength() throws {
        for v in try VectorStore.all() where v.status == 0 {
            guard let decode = Self.fixedLayout[v.cmd] else { continue }
            let bytes = try v.okBody().bytes
            for length in 0..<bytes.count {
                var buffer = ByteBuffer(bytes: bytes[..<length])
                do {
                    try decode(&buffer)
                    // Single-record layouts have one valid length. (List and multi-server replies
                    // can be cut at a record boundary into a shorter valid reply; only traps and
                    // foreign errors matter there.)
                    if [101, 104, 102, 103, 22, 98].contains(v.cmd) {  // (90: a 113-byte stat cut to 105 is a valid old record)
                        Issue.record("\(v): \(length)-byte prefix decoded")
                    }
                } catch {
                    if !(error is FDFSProtocolError) { Issue.record("\(v): \(error)") }
                }
            }
        }
    }

    @Test func variableLengthReplies() throws {
        // Upload-style replies need more than the 16-byte group.
        for length in 0...16 {
            var b = ByteBuffer(repeating: 0x41, count: length)
            #expect(throws: FDFSProtocolError.self) { _ = try UploadResponse.decode(body: &b) }
        }
        var tooLong = ByteBuffer(string: "group1" + String(repeating: "\0", count: 10) + String(repeating: "x", count: 128))
        #expect(throws: FDFSProtocolError.self) { _ = try UploadResponse.decode(body: &tooLong) }
        var noGroup = ByteBuffer(string: String(repeating: "\0", count: 16) + "M00/00/00/x")
        #expect(throws: FDFSProtocolError.self) { _ = try UploadResponse.decode(body: &noGroup) }
        // Empty-body replies reject any body.
        var one = ByteBuffer(bytes: [0])
        #expect(throws: FDFSProtocolError.invalidLength(command: "empty response", length: 1, expected: "0")) {
            _ = try EmptyResponse.decode(body: &one)
        }
    }
}
