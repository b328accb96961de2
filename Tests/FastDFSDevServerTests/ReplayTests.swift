// Replays the captured request/response pairs of real FastDFS servers against the dev server:
// the same requests in the same order (with the captured file ids replaced by the ones the dev
// server generated), checking status, reply layout (length) and, where the reply does not depend
// on time, addresses or disk numbers, the exact bytes.

import FastDFSProtocol
import Foundation
import ProtocolVectorSupport
import Testing

@testable import FastDFSDevServer

extension Array where Element == UInt8 {
    /// Replaces every occurrence of `pattern` by `replacement` (same length expected).
    func replacingBytes(_ pattern: [UInt8], with replacement: [UInt8]) -> [UInt8] {
        guard !pattern.isEmpty, count >= pattern.count else { return self }
        var out: [UInt8] = []
        var i = 0
        while i < count {
            if i + pattern.count <= count, Array(self[i..<(i + pattern.count)]) == pattern {
                out += replacement
                i += pattern.count
            } else {
                out.append(self[i])
                i += 1
            }
        }
        return out
    }
}

@Suite("Replay of real server captures")
struct ReplayTests {
    /// Ops whose whole reply (header and body) must match the capture byte for byte.
    static let exactOps: Set<String> = [
        "tracker_active_test", "storage_active_test",
        "storage_download_file", "storage_download_file_range", "storage_download_appender",
        "storage_download_range_past_eof", "storage_download_offset_at_eof", "storage_download_offset_beyond_eof",
        "storage_download_after_truncate_extend", "storage_download_appender_after_edges",
        "storage_set_metadata_overwrite", "storage_set_metadata_merge", "storage_get_metadata",
        "storage_get_metadata_after_merge", "storage_append_file", "storage_modify_file", "storage_truncate_file",
        "storage_modify_at_eof", "storage_modify_beyond_eof", "storage_truncate_extend", "storage_truncate_back",
        "storage_append_to_normal_file", "storage_delete_file_slave", "storage_delete_file",
        "storage_delete_file_regenerated", "storage_download_deleted_file", "storage_delete_missing_file",
        "storage_query_file_info_missing", "tracker_list_one_group_unknown", "tracker_query_fetch_one_unknown_group",
        "tracker_volume_stat_unsupported", "tracker_get_leader_unsupported",
        "storage_regenerate_appender_filename_unsupported",
    ]

    func replay(_ version: String, compat: CompatLevel) async throws {
        let vectors = try ProtocolVectorFiles.load(version: version)
        #expect(vectors.count >= 50)
        // Two storages like the capture; a lag so the first fetch-all sees only the source.
        try await withDevServer(storagesPerGroup: 2, replicationLag: 3, compat: compat) { (server: DevServer) async throws in
            var renames: [(captured: [UInt8], ours: [UInt8])] = []
            var exactChecks = 0
            for v in vectors {
                var request = v.request
                let expected = v.response
                for r in renames { request = request.replacingBytes(r.captured, with: r.ours) }
                if v.op == "tracker_list_servers_one" {
                    // The filter is the storage id, which names the capture's second storage.
                    let id = TrackerHandler(cluster: server.cluster).storageID(server.cluster.allNodes[1])
                    request = Req.packet(92, Req.fixed("group1", 16) + Req.bytes(id))
                }
                if v.op == "tracker_query_fetch_all_replicated" {
                    // The real tracker lists a replica for a new file once the replica's synced
                    // timestamp is later than the file's (tracker_mem.c): the capture had later
                    // operations reach the replica before this query. Do the same: a record from
                    // a later second (the clock is waited for, not slept on blindly).
                    let name = String(decoding: request.dropFirst(10 + 16), as: UTF8.self)
                    let fileSecond = try FileIDInfo.decode(filename: name).createTime
                    while WallClock.seconds() <= fileSecond { try await Task.sleep(for: .milliseconds(50)) }
                    _ = try await rawUpload(server, Req.bytes("a later record"))
                    try await server.waitForReplication()
                }
                let address = v.server == "tracker" ? server.trackerAddress : server.firstStorage
                let outcome = try await RawConnection.with(address) { conn -> RawOutcome in
                    try await conn.send(request)
                    return try await conn.receive()
                }
                guard let status = v.status else {
                    #expect(outcome == .closed(partial: []), "\(v.op): QUIT must get no reply")
                    continue
                }
                guard case .reply(let reply) = outcome else {
                    Issue.record("\(v.op): connection closed, expected status \(status)")
                    continue
                }
                #expect(Int(reply.status) == status, "\(v.op): status")
                #expect(reply.body.count == expected.count - 10, "\(v.op): reply length")
                let body = Array(expected.dropFirst(10))
                if Self.exactOps.contains(v.op) || status != 0 {
                    #expect(reply.packet == expected, "\(v.op): bytes")
                    exactChecks += 1
                } else if reply.body.count == body.count {
                    checkDeterministicParts(v, reply: reply.body, expected: body)
                }
                if [11, 21, 23, 38].contains(v.cmd), reply.status == 0, reply.body.count == body.count {
                    renames.append((Array(body.dropFirst(16)), Array(reply.body.dropFirst(16))))
                }
            }
            #expect(exactChecks >= 30, "byte-exact comparisons made: \(exactChecks)")
            #expect(renames.count >= 3, "file ids mapped: \(renames.count)")
        }
    }

    func checkDeterministicParts(_ v: CapturedExchange, reply: [UInt8], expected: [UInt8]) {
        switch v.cmd {
        case 101, 104, 106, 107, 102, 103, 105, 11, 21, 23, 38:
            #expect(Array(reply.prefix(16)) == Array(expected.prefix(16)), "\(v.op): group field")
            if [101, 104, 106, 107].contains(v.cmd) {
                #expect(reply.last == expected.last, "\(v.op): store path index")
            }
            if [11, 21, 23, 38].contains(v.cmd) {
                #expect(Array(reply.suffix(4)) == Array(expected.suffix(4)), "\(v.op): extension")
                #expect(Array(reply[16..<26]) == Array(expected[16..<26]), "\(v.op): M00/XX/YY/")
            }
            if v.cmd == 21 {
                #expect(Array(reply.suffix(10)) == Array(expected.suffix(10)), "\(v.op): slave suffix")
            }
        case 22:
            #expect(Array(reply[0..<8]) == Array(expected[0..<8]), "\(v.op): size")
            #expect(Array(reply[16..<24]) == Array(expected[16..<24]), "\(v.op): crc32")
        case 90, 91:
            #expect(Array(reply.prefix(17)) == Array(expected.prefix(17)), "\(v.op): group name")
        case 95:
            #expect(!reply.isEmpty)
        default:
            break
        }
    }

    @Test("FastDFS 6.16.1 captures against the default (6.16) emulation")
    func replay616() async throws {
        try await replay("6.16.1", compat: .v6_16)
    }

    @Test("FastDFS 5.12 captures against --compat 5")
    func replay512() async throws {
        try await replay("5.12", compat: .v5)
    }
}
