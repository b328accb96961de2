// What a real cluster does when the copies of a group differ, end to end over sockets: an append
// sent to a lagging replica while the source is down, replication that refuses to reconcile the
// copies afterwards, storage status across stops and restarts, the sync-resume delay. Each step
// checks the bytes on each storage's disk directly.

import FastDFSProtocol
import Foundation
import NIOCore
import Testing

@testable import FastDFSDevServer

extension DevServer {
    /// The bytes of `name` on one storage's disk (nil when it has no copy).
    func bytesOnDisk(_ storage: StorageNodeID, _ name: String) -> String? {
        guard let dir = storageDirectory(storage) else { return nil }
        return FileManager.default.contents(atPath: "\(dir)/data/\(name.dropFirst(4))").map {
            String(decoding: $0, as: UTF8.self)
        }
    }

    /// The storage the tracker names for a query (102 fetch one, 103 update).
    func trackerAnswer(_ command: UInt8, _ group: String, _ name: String) async throws -> StorageAddress {
        try decode(try await rawReply(trackerAddress, Req.queryFetch(command, group, name))) {
            try QueryFetchResponse.decode(body: &$0).server
        }
    }

    /// The tracker's status codes of a group's storages, by address.
    func listedStatus(_ group: String) async throws -> [StorageAddress: UInt8] {
        let stats = try decode(try await rawReply(trackerAddress, Req.packet(92, Req.fixed(group, 16)))) {
            try StorageStat.decodeList(body: &$0)
        }
        return Dictionary(uniqueKeysWithValues: stats.map { (StorageAddress(host: $0.ipAddress, port: Int($0.port)), $0.status) })
    }
}

@Suite("Copies that differ, as on a real cluster")
struct DivergenceTests {
    @Test("an append during a source outage lands on the replica's lagging copy and the copies stay different")
    func appendDuringOutage() async throws {
        try await withDevServer(storagesPerGroup: 2, replicationLag: 0.2, syncResumeDelay: 0.3) { (server: DevServer) async throws in
            let (s1, s2) = (server.storageIDs[0], server.storageIDs[1])
            let (a1, a2) = (server.storageAddress(s1)!, server.storageAddress(s2)!)
            // 1. An appender file on storage1, replicated to storage2.
            let (g, n) = try await rawUpload(server, Req.bytes("abc"), appender: true, storage: a1)
            try await server.waitForReplication()
            #expect(server.bytesOnDisk(s2, n) == "abc")
            // 2. storage2 falls behind: an append reaches the source while storage2 is down (a
            //    stop instead of a long lag, so no timing decides the outcome). Then the source
            //    stops and storage2 comes back: its copy stays behind, nobody can sync it.
            try await server.stopStorage(s2)
            #expect(try await server.trackerAnswer(103, g, n) == a1)
            #expect(try await rawReply(a1, Req.append(n, Req.bytes("def"))).status == 0)
            try await server.stopStorage(s1)
            try await server.startStorage(s2)
            #expect(server.bytesOnDisk(s1, n) == "abcdef" && server.bytesOnDisk(s2, n) == "abc")
            let status = try await server.listedStatus(g)
            #expect(status[a1] == 5 && status[a2] == 7)  // OFFLINE, ACTIVE
            // 3. QUERY_UPDATE now names storage2; an append there goes to the end of its copy.
            #expect(try await server.trackerAnswer(103, g, n) == a2)
            #expect(try await rawReply(a2, Req.append(n, Req.bytes("XYZ"))).status == 0)
            #expect(server.bytesOnDisk(s2, n) == "abcXYZ")
            // Reads of the appender go to the store server now: storage2's copy.
            #expect(try await server.trackerAnswer(102, g, n) == a2)
            #expect(try await rawReply(a2, Req.download(g, n)).bodyString == "abcXYZ")
            // 4. storage1 comes back: ACTIVE, and after the resume delay each append is offered to
            //    the other side, which skips it (its copy no longer ends at offset 3).
            try await server.startStorage(s1)
            #expect(try await server.listedStatus(g)[a1] == 7)
            #expect(try await server.waitForReplication(timeout: 20))
            #expect(server.bytesOnDisk(s1, n) == "abcdef")
            #expect(server.bytesOnDisk(s2, n) == "abcXYZ")
            // The source is handed out again, with its own copy.
            #expect(try await server.trackerAnswer(103, g, n) == a1)
            #expect(try await rawReply(a1, Req.download(g, n)).bodyString == "abcdef")
        }
    }

    @Test("during a source outage a replica without a copy answers ENOENT to append, modify and truncate")
    func replicaWithoutCopy() async throws {
        try await withDevServer(storagesPerGroup: 2, replicationLag: 3600) { (server: DevServer) async throws in
            let (s1, s2) = (server.storageIDs[0], server.storageIDs[1])
            let a2 = server.storageAddress(s2)!
            let (g, n) = try await rawUpload(server, Req.bytes("abc"), appender: true, storage: server.storageAddress(s1)!)
            try await server.stopStorage(s1)
            #expect(try await server.trackerAnswer(103, g, n) == a2)
            #expect(try await rawReply(a2, Req.append(n, Req.bytes("d"))).status == FDFSErrno.enoent.rawValue)
            #expect(try await rawReply(a2, Req.modify(n, offset: 0, Req.bytes("d"))).status == FDFSErrno.enoent.rawValue)
            #expect(try await rawReply(a2, Req.truncate(n, to: 1)).status == FDFSErrno.enoent.rawValue)
            #expect(try await server.trackerAnswer(102, g, n) == a2)
            #expect(try await rawReply(a2, Req.download(g, n)).status == FDFSErrno.enoent.rawValue)
            #expect(server.bytesOnDisk(s2, n) == nil)
        }
    }

    @Test("on a replica, MODIFY past its copy's end is EINVAL; a modify there replicates by the same rules")
    func modifyOnReplica() async throws {
        try await withDevServer(storagesPerGroup: 2, syncResumeDelay: 0.2) { (server: DevServer) async throws in
            let (s1, s2) = (server.storageIDs[0], server.storageIDs[1])
            let (a1, a2) = (server.storageAddress(s1)!, server.storageAddress(s2)!)
            let (g, n) = try await rawUpload(server, Req.bytes("0123"), appender: true, storage: a1)
            try await server.waitForReplication()
            // storage2 misses an append; then the source is down and storage2 back.
            try await server.stopStorage(s2)
            #expect(try await rawReply(a1, Req.append(n, Req.bytes("4567"))).status == 0)
            try await server.stopStorage(s1)
            try await server.startStorage(s2)
            // storage2's copy is "0123": offset 6 is past its end.
            #expect(try await rawReply(a2, Req.modify(n, offset: 6, Req.bytes("x"))).status == FDFSErrno.einval.rawValue)
            #expect(try await rawReply(a2, Req.modify(n, offset: 1, Req.bytes("AB"))).status == 0)
            #expect(server.bytesOnDisk(s2, n) == "0AB3")
            try await server.startStorage(s1)
            #expect(try await server.waitForReplication(timeout: 20))
            // storage2's modify (offset 1, inside storage1's copy) is written on storage1 with the
            // bytes storage2 has now; storage1's append (offset 4) fits storage2's 4-byte copy
            // and is written there too: here the copies happen to converge.
            #expect(server.bytesOnDisk(s1, n) == "0AB34567")
            #expect(server.bytesOnDisk(s2, n) == "0AB34567")
            #expect(try await server.trackerAnswer(103, g, n) == a1)
        }
    }

    @Test("a truncate the peer cannot apply (no copy: ENOENT) blocks that peer's sync until it can, as the real sync thread retries")
    func truncateRetried() async throws {
        try await withDevServer(storagesPerGroup: 2, syncResumeDelay: 0.1) { (server: DevServer) async throws in
            let (s1, s2) = (server.storageIDs[0], server.storageIDs[1])
            let a1 = server.storageAddress(s1)!
            let (_, n) = try await rawUpload(server, Req.bytes("01234"), appender: true, storage: a1)
            try await server.waitForReplication()
            try await server.stopStorage(s2)
            #expect(try await rawReply(a1, Req.truncate(n, to: 2)).status == 0)
            // storage2's copy is lost while it is down.
            let copy = server.storageDirectory(s2)! + "/data/" + n.dropFirst(4)
            try FileManager.default.removeItem(atPath: copy)
            try await server.startStorage(s2)
            #expect(try await server.waitForReplication(timeout: 1.5) == false)
            #expect((server.pendingReplicationBytes(from: s1, to: s2) ?? 0) > 0)
            // Once the copy is back with the size before the truncate, the retry succeeds.
            try Data("01234".utf8).write(to: URL(fileURLWithPath: copy))
            #expect(try await server.waitForReplication(timeout: 10))
            #expect(server.bytesOnDisk(s2, n) == "01")
        }
    }

    @Test("an append cut off mid-content is rolled back and nothing of it replicates")
    func brokenAppend() async throws {
        try await withDevServer(storagesPerGroup: 2) { (server: DevServer) async throws in
            let (s1, s2) = (server.storageIDs[0], server.storageIDs[1])
            let a1 = server.storageAddress(s1)!
            let (_, n) = try await rawUpload(server, Req.bytes("abc"), appender: true, storage: a1)
            try await server.waitForReplication()
            let before = server.logs[s1]!.currentSize
            await server.inject(Fault(target: .storage(group: "group1", index: 1), kind: .dropAfter(bytes: 3), times: 1))
            let outcome = try await rawRequest(a1, Req.append(n, Req.bytes("0123456789")))
            #expect(outcome == .closed(partial: []))
            // dio_append_finish_clean_up: the file is cut back to its size before the append.
            #expect(server.bytesOnDisk(s1, n) == "abc")
            #expect(server.logs[s1]!.currentSize == before)
            try await server.waitForReplication()
            #expect(server.bytesOnDisk(s2, n) == "abc")
        }
    }

    @Test("a restarted storage is ACTIVE at once but receives nothing before the sync-resume delay")
    func syncResumeDelay() async throws {
        try await withDevServer(storagesPerGroup: 2, syncResumeDelay: 1.0) { (server: DevServer) async throws in
            let (s1, s2) = (server.storageIDs[0], server.storageIDs[1])
            try await server.stopStorage(s2)
            let (g, n) = try await rawUpload(server, Req.bytes("while away"), storage: server.storageAddress(s1)!)
            try await Task.sleep(for: .milliseconds(200))
            #expect(server.bytesOnDisk(s2, n) == nil)
            let started = WallClock.milliseconds()
            try await server.startStorage(s2)
            #expect(try await server.listedStatus(g)[server.storageAddress(s2)!] == 7)
            // The copy appears on storage2 only once the delay has passed (polled, so a busy
            // machine can only make it appear later, never earlier).
            while server.bytesOnDisk(s2, n) == nil { try await Task.sleep(for: .milliseconds(10)) }
            #expect(WallClock.milliseconds() - started >= 1000, "replication resumed before the delay")
            #expect(server.bytesOnDisk(s2, n) == "while away")
        }
    }

    @Test("a crash the tracker has not noticed: still ACTIVE and handed out, connections refused")
    func unnoticedCrash() async throws {
        try await withDevServer(storagesPerGroup: 2) { (server: DevServer) async throws in
            let s1 = server.storageIDs[0]
            let a1 = server.storageAddress(s1)!
            let (g, n) = try await rawUpload(server, Req.bytes("x"), appender: true, storage: a1)
            try await server.stopStorage(s1, markOffline: false)
            #expect(try await server.listedStatus(g)[a1] == 7)
            #expect(try await server.trackerAnswer(103, g, n) == a1)
            await #expect(throws: (any Error).self) { _ = try await rawRequest(a1, Req.packet(111)) }
            #expect(server.storageStatus(s1)! == (status: 7, running: false))
        }
    }
}
