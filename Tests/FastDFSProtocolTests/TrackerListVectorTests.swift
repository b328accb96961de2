// Captured vectors of LIST_ONE_GROUP (90), LIST_ALL_GROUPS (91), LIST_STORAGE (92),
// VOLUME_STAT (98), GET_LEADER (95), and the tracker's ACTIVE_TEST / QUIT.
import NIOCore
import Testing
@testable import FastDFSProtocol

@Suite("Vectors: tracker lists and admin (90–98, 111, 82)")
struct TrackerListVectorTests {
    @Test func listGroups() throws {
        let records = try VectorStore.records(cmds: [90, 91])
        #expect(records.count == 9)
        for v in records {
            if v.cmd == 91 {
                #expect(packet(ListGroupsRequest()) == v.requestBytes, "\(v)")
                var (_, reqBody) = try v.request()
                _ = try ListGroupsRequest.decode(body: &reqBody)
            } else {
                let request = ListOneGroupRequest(group: try #require(v.note("group")))
                #expect(packet(request) == v.requestBytes, "\(v)")
                var (_, reqBody) = try v.request()
                #expect(try ListOneGroupRequest.decode(body: &reqBody) == request)
            }
            if v.status != 0 {
                try VectorStore.expectError(v)
                continue
            }
            var body = try v.okBody()
            let original = body
            let stats: [GroupStat]
            if v.cmd == 91 {
                stats = try GroupStat.decodeList(body: &body)
                let count = try #require(v.capture(#"-> (\d+) group"#).flatMap { Int($0) })
                #expect(stats.count == count)
                #expect(stats.first?.name == v.capture(#"\[0\]=(\w+)"#))
                #expect(stats.first?.storagePort == v.noteInt("port"), "\(v)")
            } else {
                stats = [try GroupStat.decode(body: &body)]
                #expect(stats[0].name == v.note("group"))
            }
            #expect(body.readableBytes == 0)
            let stat = try #require(stats.first)
            #expect(stat.storageCount == v.noteInt("storage_count"), "\(v)")
            #expect(stat.layout == (v.isOld ? .v105 : .v113), "\(v)")
            if v.isOld {
                // 105 bytes: one active_count, an http port (8888 in the capture), no reserved_mb.
                #expect(stat.readableServerCount == v.noteInt("active"), "\(v)")
                #expect(stat.writableServerCount == stat.readableServerCount)
                #expect(stat.httpPort == 8888)
                #expect(stat.reservedMB == 0)
            } else {
                #expect(stat.readableServerCount == v.noteInt("readable"), "\(v)")
                #expect(stat.reservedMB == 1024, "reserved_storage_space = 1 GB")
                #expect(stat.currentTrunkFileID == -1, "trunking is off")
            }
            #expect(stat.storePathCount == 1)
            #expect(stat.subdirCountPerPath == 256)
            #expect(stat.totalMB > stat.freeMB && stat.freeMB > 0)
            #expect(encoded { buffer in stats.forEach { $0.encode(into: &buffer) } } == original.bytes, "\(v)")
        }
    }

    @Test func listStorage() throws {
        let records = try VectorStore.records(cmds: [92])
        #expect(records.count == 6)
        for v in records {
            let request = ListStorageRequest(group: try #require(v.note("group")), storageID: v.note("storage_id"))
            #expect(packet(request) == v.requestBytes, "\(v)")
            var (_, reqBody) = try v.request()
            #expect(try ListStorageRequest.decode(body: &reqBody) == request)

            var body = try v.okBody()
            let original = body
            let stats = try StorageStat.decodeList(body: &body)
            if let id = v.note("storage_id") {
                #expect(stats.count == 1)
                #expect(stats.first?.ipAddress == id)
                #expect(stats.first?.id == id, "IP mode: the ID is the IP string")
            } else {
                let ips = try #require(v.capture(#"storages: ([\d. ]+);"#))
                #expect(stats.map(\.ipAddress) == ips.split(separator: " ").map(String.init), "\(v)")
            }
            let port = Int64(v.server_addr.split(separator: ":").last.map(String.init) ?? "") ?? -1
            for stat in stats {
                #expect(stat.layout == (v.isOld ? .v612 : .v487), "\(v)")
                #expect(stat.status == 7, "ACTIVE")
                #expect(stat.rwMode == 6)
                #expect(stat.version == v.version, "\(v)")
                #expect(stat.storePathCount == 1)
                #expect(stat.subdirCountPerPath == 256)
                #expect(stat.totalMB > 0)
                #expect(stat.domainName == "")
                #expect(stat.port == (v.isOld ? port + 1000 : 23000), "\(v)")  // storages use tracker port + 1000 in the old clusters
                #expect(stat.counters.count == 42)
                #expect(stat.joinTime > 1_700_000_000 && stat.upTime >= stat.joinTime)
                #expect(stat.lastHeartBeatTime >= stat.upTime, "\(v): heartbeat \(stat.lastHeartBeatTime)")
                #expect(stat.successUploadCount <= stat.totalUploadCount)
                #expect(!stat.isTrunkServer)
                if v.isOld { #expect(stat.reservedMB == 0) } else { #expect(stat.reservedMB == 1024) }
            }
            #expect(encoded { buffer in stats.forEach { $0.encode(into: &buffer) } } == original.bytes, "\(v)")
        }
    }

    @Test func volumeStatAndLeader() throws {
        let records = try VectorStore.records(cmds: [95, 98])
        #expect(records.count == 6)
        for v in records {
            if v.cmd == 98 {
                #expect(packet(VolumeStatRequest()) == v.requestBytes, "\(v)")
                var (_, reqBody) = try v.request()
                #expect(try VolumeStatRequest.decode(body: &reqBody) == VolumeStatRequest(filter: 0))
            } else {
                #expect(packet(GetLeaderRequest()) == v.requestBytes, "\(v)")
            }
            if v.isOld {
                try VectorStore.expectError(v)  // not supported before 6.15.5: EINVAL, header only
                continue
            }
            var body = try v.okBody()
            let original = body
            if v.cmd == 98 {
                let stat = try VolumeStatResponse.decode(body: &body)
                #expect(stat.groups.count == 1)
                let g = try #require(stat.groups.first)
                #expect(g.name == "group1", "field holds garbage after the NUL; it must be cut")
                #expect(g.totalMB == v.noteInt("total_mb"))
                #expect(g.freeMB == v.noteInt("free_mb"))
                #expect(g.reservedMB == v.noteInt("reserved_mb"))
                #expect(g.availableMB == v.noteInt("avail_mb"))
                // Re-encoding matches except the leftover bytes after the group name's NUL.
                var expected = original.bytes
                for i in (5 + 7)..<(5 + 17) { expected[i] = 0 }
                #expect(encoded { stat.encode(into: &$0) } == expected)
            } else {
                let leader = try GetLeaderResponse.decode(body: &body)
                #expect(leader.leader.description == v.capture(#"leader (\S+);"#))
                #expect(encoded { leader.encode(into: &$0) } == original.bytes)
            }
        }
    }

    @Test func activeTestAndQuit() throws {
        let records = try VectorStore.records(cmds: [111, 82])
        #expect(records.count == 12)
        for v in records {
            if v.cmd == 111 {
                #expect(packet(ActiveTestRequest()) == v.requestBytes, "\(v)")
                var (_, reqBody) = try v.request()
                _ = try ActiveTestRequest.decode(body: &reqBody)
                var body = try v.okBody()
                _ = try EmptyResponse.decode(body: &body)
                #expect(FDFSPacket.response(status: 0).bytes == v.responseBytes)
            } else {
                #expect(packet(QuitRequest()) == v.requestBytes, "\(v)")
                #expect(v.status == nil)
                #expect(try v.response() == nil, "QUIT gets no reply")
            }
        }
    }
}
