// --trunk (use_trunk_file = true): small uploads packed into trunk files with the real slot
// header, 60-character names, everything a client can do on them, replication, the trunk server.

import FastDFSProtocol
import Foundation
import NIOCore
import Testing

@testable import FastDFSDevServer

extension DevServer {
    /// The bytes of one trunk file of a storage (`data/XX/YY/<6-digit id>`).
    func trunkFile(_ storage: StorageNodeID, sub1: Int, sub2: Int, id: UInt32) -> [UInt8]? {
        let file = TrunkFileID(id: id, sub1: sub1, sub2: sub2)
        return FileManager.default.contents(atPath: storageDirectory(storage)! + "/data/" + file.relativePath).map { Array($0) }
    }
}

func withTrunkServer<T>(
    storagesPerGroup: Int = 1, parameters: TrunkParameters = TrunkParameters(), _ body: (DevServer) async throws -> T
) async throws -> T {
    try await withDevServer(storagesPerGroup: storagesPerGroup, configure: { $0.trunk = parameters }, body)
}

@Suite("Trunk files")
struct TrunkTests {
    @Test("small uploads get 60-character names and a slot with the real header; downloads, info, metadata work")
    func smallUpload() async throws {
        try await withTrunkServer { (server: DevServer) async throws in
            let s = server.firstStorage
            let content = [UInt8]((0..<100).map { UInt8($0) })
            let (g, n) = try await rawUpload(server, content, ext: "bin")
            #expect(n.utf8.count == 60)
            let info = try FileIDInfo.decode(filename: n)
            #expect(info.kind == .trunk && info.size == 100 && info.crc32 == CRC32.checksum(content))
            #expect(info.sizeField & FDFSLimits.trunkFlag != 0)
            let slot = try #require(FDFSTrunkSlot(trunkFilename: n))
            #expect(slot == FDFSTrunkSlot(trunkID: 1, offset: 0, size: 256))  // 24 + 100, at least slot_min_size
            // data/XX/YY/000001: 64 MiB (sparse), the header, then the content.
            let trunk = try #require(server.trunkFile(server.storageIDs[0], sub1: info.subdirectory1, sub2: info.subdirectory2, id: 1))
            #expect(trunk.count == 64 << 20)
            var header: [UInt8] = [UInt8(ascii: "F")]
            for v in [UInt32(256), 100, CRC32.checksum(content), UInt32(info.createTime)] {
                withUnsafeBytes(of: v.bigEndian) { header += $0 }
            }
            header += Array(n.suffix(7).utf8)
            #expect(Array(trunk[0..<24]) == header)
            #expect(Array(trunk[24..<124]) == content)
            // Everything a client does on a normal file.
            #expect(try await rawReply(s, Req.download(g, n)).body == content)
            #expect(try await rawReply(s, Req.download(g, n, offset: 10, count: 5)).body == Array(content[10..<15]))
            #expect(try await rawReply(s, Req.download(g, n, offset: 100)).status == FDFSErrno.einval.rawValue)
            let fileInfo = try decodeInfo(try await rawReply(s, Req.groupAndName(22, g, n)))
            #expect(fileInfo.size == 100 && fileInfo.crc32 == CRC32.checksum(content) && fileInfo.modifyTime == info.createTime)
            #expect(try await rawReply(s, Req.setMetadata(g, n, Req.bytes("k\u{02}v"))).status == 0)
            #expect(try await rawReply(s, Req.groupAndName(15, g, n)).bodyString == "k\u{02}v")
            // Appender operations refuse it like any non-appender.
            #expect(try await rawReply(s, Req.append(n, [1])).status == FDFSErrno.einval.rawValue)
            // The next slot follows, rounded up to trunk_alloc_alignment_size.
            let (_, second) = try await rawUpload(server, [UInt8](repeating: 7, count: 300))
            #expect(FDFSTrunkSlot(trunkFilename: second) == FDFSTrunkSlot(trunkID: 1, offset: 256, size: 512))
            // Tracker: use_trunk_file=1, current trunk file id, the trunk server.
            let t = server.trackerAddress
            let params = try decode(try await rawReply(t, Req.packet(75))) { try ParameterResponse.decode(body: &$0) }
            #expect(params.parameters["use_trunk_file"] == "1" && params.parameters["slot_max_size"] == "1048576")
            let group = try decode(try await rawReply(t, Req.packet(90, Req.fixed("group1", 16)))) {
                try GroupStat.decodeList(body: &$0)
            }
            #expect(group[0].currentTrunkFileID == 1 && group[0].trunkFreeMB == 63)
            let stats = try decode(try await rawReply(t, Req.packet(92, Req.fixed("group1", 16)))) {
                try StorageStat.decodeList(body: &$0)
            }
            #expect(stats.map(\.isTrunkServer) == [true])
        }
    }

    @Test("delete frees the slot (free header, zeros) and the next upload reuses it")
    func deleteFreesSlot() async throws {
        try await withTrunkServer { (server: DevServer) async throws in
            let s = server.firstStorage
            let (g, n) = try await rawUpload(server, Req.bytes("short lived"))
            let info = try FileIDInfo.decode(filename: n)
            #expect(try await rawReply(s, Req.setMetadata(g, n, Req.bytes("a\u{02}b"))).status == 0)
            #expect(try await rawReply(s, Req.groupAndName(12, g, n)).status == 0)
            #expect(try await rawReply(s, Req.download(g, n)).status == FDFSErrno.enoent.rawValue)
            #expect(try await rawReply(s, Req.groupAndName(12, g, n)).status == FDFSErrno.enoent.rawValue)
            let trunk = try #require(server.trunkFile(server.storageIDs[0], sub1: info.subdirectory1, sub2: info.subdirectory2, id: 1))
            #expect(Array(trunk[0..<5]) == [0, 0, 0, 1, 0] && trunk[5..<256].allSatisfy { $0 == 0 })
            let (_, again) = try await rawUpload(server, Req.bytes("reuses the slot"))
            #expect(FDFSTrunkSlot(trunkFilename: again) == FDFSTrunkSlot(trunkID: 1, offset: 0, size: 256))
        }
    }

    @Test("slaves of a trunk master are normal files with names longer than 60; appenders and big files never trunk")
    func slavesAppendersBigFiles() async throws {
        try await withTrunkServer { (server: DevServer) async throws in
            let s = server.firstStorage
            let (g, master) = try await rawUpload(server, Req.bytes("master"), ext: "jpg")
            let r = try await rawReply(s, Req.slave(master: master, prefix: "_150x150", ext: "jpg", Req.bytes("thumb")))
            #expect(r.status == 0)
            let slave = String(decoding: r.body.dropFirst(16), as: UTF8.self)
            #expect(slave.utf8.count > 60 && slave == String(master.dropLast(4)) + "_150x150.jpg")
            #expect(try FileIDInfo.decode(filename: slave).kind == .slave)
            #expect(try await rawReply(s, Req.download(g, slave)).bodyString == "thumb")
            #expect(server.bytesOnDisk(server.storageIDs[0], slave) == "thumb")
            #expect(try await rawReply(s, Req.slave(master: master, prefix: "_150x150", ext: "jpg", [1])).status == FDFSErrno.eexist.rawValue)
            let (_, appender) = try await rawUpload(server, Req.bytes("tiny"), appender: true)
            let appenderKind = try FileIDInfo.decode(filename: appender).kind
            #expect(appender.utf8.count == 44 && appenderKind == .appender)
            let limit = (1 << 20) - 24
            let (_, fits) = try await rawUpload(server, [UInt8](repeating: 1, count: limit))
            #expect(fits.utf8.count == 60)
            let (_, big) = try await rawUpload(server, [UInt8](repeating: 1, count: limit + 1))
            let bigKind = try FileIDInfo.decode(filename: big).kind
            #expect(big.utf8.count == 44 && bigKind == .normal)
        }
    }

    @Test("trunk files replicate slot for slot; deletes too; a storage asks storage1 (the trunk server) for slots")
    func replication() async throws {
        try await withTrunkServer(storagesPerGroup: 2) { (server: DevServer) async throws in
            let (s1, s2) = (server.storageIDs[0], server.storageIDs[1])
            let (a1, a2) = (server.storageAddress(s1)!, server.storageAddress(s2)!)
            let (g, n) = try await rawUpload(server, Req.bytes("on storage2"), storage: a2)
            let (_, m) = try await rawUpload(server, Req.bytes("on storage1"), storage: a1)
            // One allocator for the group: different slots.
            #expect(FDFSTrunkSlot(trunkFilename: n)!.offset != FDFSTrunkSlot(trunkFilename: m)!.offset)
            try await server.waitForReplication()
            let info = try FileIDInfo.decode(filename: n)
            let t1 = server.trunkFile(s1, sub1: info.subdirectory1, sub2: info.subdirectory2, id: 1)!
            let t2 = server.trunkFile(s2, sub1: info.subdirectory1, sub2: info.subdirectory2, id: 1)!
            #expect(Array(t1[0..<512]) == Array(t2[0..<512]))
            #expect(try await rawReply(a1, Req.download(g, n)).bodyString == "on storage2")
            #expect(try await rawReply(a2, Req.groupAndName(12, g, n)).status == 0)
            try await server.waitForReplication()
            #expect(try await rawReply(a1, Req.download(g, n)).status == FDFSErrno.enoent.rawValue)
            #expect(try await rawReply(a1, Req.download(g, m)).bodyString == "on storage1")
            // The trunk server down: small uploads elsewhere cannot get a slot (EAGAIN); big ones can.
            try await server.stopStorage(s1)
            #expect(try await rawReply(a2, Req.upload(Req.bytes("small"))).status == FDFSErrno.eagain.rawValue)
            #expect(try await rawReply(a2, Req.upload([UInt8](repeating: 2, count: 1 << 20))).status == 0)
        }
    }

    @Test("the allocator: best fit, split, aligned sizes, a new trunk file when full, kept across restarts")
    func allocator() throws {
        let dir = makeTemporaryDirectory("trunk")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let parameters = TrunkParameters(trunkFileSize: 2 << 20)
        let a = TrunkAllocator(path: dir + "/trunk.dat", parameters: parameters)
        var rotation = 0
        let next = { () -> (Int, Int) in
            rotation += 1
            return (0, rotation)
        }
        #expect(a.slotSize(for: 1) == 256 && a.slotSize(for: 232) == 256 && a.slotSize(for: 233) == 512)
        let first = try a.allocate(size: 1_000_000, newTrunkDirectories: next)
        #expect(first.file == TrunkFileID(id: 1, sub1: 0, sub2: 1) && first.offset == 0 && first.size == 1_000_192)
        let second = try a.allocate(size: 1_000_000, newTrunkDirectories: next)
        #expect(second.file.id == 1 && second.offset == 1_000_192)
        let third = try a.allocate(size: 1_000_000, newTrunkDirectories: next)
        #expect(third.file == TrunkFileID(id: 2, sub1: 0, sub2: 2) && third.offset == 0)
        #expect(a.currentTrunkFileID == 2)
        a.release(second)
        // Best fit: the smallest free slot that is large enough.
        let small = try a.allocate(size: 100, newTrunkDirectories: next)
        #expect(small.file.id == 1 && small.offset == 2_000_384 && small.size == 256)
        let reused = try a.allocate(size: 1_000_000, newTrunkDirectories: next)
        #expect(reused.file.id == 1 && reused.offset == 1_000_192 && reused.size == 1_000_192)
        let reloaded = TrunkAllocator(path: dir + "/trunk.dat", parameters: parameters)
        reloaded.load()
        #expect(reloaded.currentTrunkFileID == 2 && reloaded.freeBytes == a.freeBytes)
    }
}
