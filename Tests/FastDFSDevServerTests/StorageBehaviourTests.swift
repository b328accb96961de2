// Raw-protocol tests of the real server's edge cases (reference §7, §8), one per behaviour.

import FastDFSProtocol
import Foundation
import NIOCore
import Testing

@testable import FastDFSDevServer

@Suite("Storage behaviour over raw sockets")
struct StorageBehaviourTests {
    let ten = Req.bytes("hello fdfs")

    @Test("download at or past EOF is EINVAL and the connection closes; a range past EOF is clamped (6.16)")
    func downloadEdges616() async throws {
        try await withDevServer { (server: DevServer) async throws in
            let (g, n) = try await rawUpload(server, ten)
            let s = server.firstStorage
            let clamped = try await rawReply(s, Req.download(g, n, offset: 5, count: 100))
            #expect(clamped.status == 0 && clamped.bodyString == " fdfs")
            for (offset, count) in [(Int64(10), Int64(0)), (20, 5)] {
                try await RawConnection.with(s) { c in
                    let r = try await c.request(Req.download(g, n, offset: offset, count: count))
                    guard case .reply(let reply) = r else { throw TestFailure("no reply") }
                    #expect(reply.status == FDFSErrno.einval.rawValue && reply.body.isEmpty)
                    #expect(try await c.isClosedByServer(), "EINVAL must close the connection")
                }
            }
            // A zero-length file: any download is at EOF.
            let (_, empty) = try await rawUpload(server, [])
            #expect(try await rawReply(s, Req.download(g, empty)).status == FDFSErrno.einval.rawValue)
        }
    }

    @Test("--compat 5: a range past EOF is EINVAL, offset == size gives an empty body")
    func downloadEdgesV5() async throws {
        try await withDevServer(compat: .v5) { (server: DevServer) async throws in
            let (g, n) = try await rawUpload(server, ten)
            let s = server.firstStorage
            #expect(try await rawReply(s, Req.download(g, n, offset: 5, count: 100)).status == FDFSErrno.einval.rawValue)
            let atEOF = try await rawReply(s, Req.download(g, n, offset: 10, count: 0))
            #expect(atEOF.status == 0 && atEOF.body.isEmpty)
            #expect(try await rawReply(s, Req.download(g, n, offset: 20, count: 5)).status == FDFSErrno.einval.rawValue)
            #expect(try await rawReply(s, Req.download(g, n, offset: 2, count: 5)).bodyString == "llo f")
        }
    }

    @Test("append, modify, truncate on an appender; modify at EOF extends, past EOF is EINVAL")
    func appenderOperations() async throws {
        try await withDevServer { (server: DevServer) async throws in
            let s = server.firstStorage
            let (g, n) = try await rawUpload(server, Req.bytes("0123456789"), appender: true)
            #expect(try await rawReply(s, Req.append(n, Req.bytes("ABCDE"))).status == 0)
            #expect(try await rawReply(s, Req.modify(n, offset: 2, Req.bytes("xy"))).status == 0)
            #expect(try await rawReply(s, Req.download(g, n)).bodyString == "01xy456789ABCDE")
            #expect(try await rawReply(s, Req.modify(n, offset: 15, Req.bytes("QQ"))).status == 0)
            #expect(try await rawReply(s, Req.download(g, n)).bodyString == "01xy456789ABCDEQQ")
            #expect(try await rawReply(s, Req.modify(n, offset: 30, Req.bytes("ZZ"))).status == FDFSErrno.einval.rawValue)
            #expect(try await rawReply(s, Req.truncate(n, to: 4)).status == 0)
            #expect(try await rawReply(s, Req.truncate(n, to: 6)).status == 0)
            #expect(try await rawReply(s, Req.download(g, n)).body == Req.bytes("01xy") + [0, 0])
            #expect(try await rawReply(s, Req.append(n, [])).status == 0)
        }
    }

    @Test("append, modify, truncate of a normal file are EINVAL")
    func appendToNormalFile() async throws {
        try await withDevServer { (server: DevServer) async throws in
            let s = server.firstStorage
            let (_, n) = try await rawUpload(server, ten)
            #expect(try await rawReply(s, Req.append(n, Req.bytes("x"))).status == FDFSErrno.einval.rawValue)
            #expect(try await rawReply(s, Req.modify(n, offset: 0, Req.bytes("x"))).status == FDFSErrno.einval.rawValue)
            #expect(try await rawReply(s, Req.truncate(n, to: 1)).status == FDFSErrno.einval.rawValue)
        }
    }

    @Test("metadata: ENOENT without metadata, overwrite replaces, merge merges, empty overwrite deletes")
    func metadataSemantics() async throws {
        try await withDevServer { (server: DevServer) async throws in
            let s = server.firstStorage
            let (g, n) = try await rawUpload(server, ten)
            #expect(try await rawReply(s, Req.groupAndName(15, g, n)).status == FDFSErrno.enoent.rawValue)
            let meta1 = Req.bytes("width\u{02}1024\u{01}height\u{02}768")
            #expect(try await rawReply(s, Req.setMetadata(g, n, meta1)).status == 0)
            #expect(try await rawReply(s, Req.groupAndName(15, g, n)).bodyString == "height\u{02}768\u{01}width\u{02}1024")
            let meta2 = Req.bytes("height\u{02}600\u{01}color\u{02}red")
            #expect(try await rawReply(s, Req.setMetadata(g, n, meta2, mode: 0x4D)).status == 0)
            #expect(
                try await rawReply(s, Req.groupAndName(15, g, n)).bodyString
                    == "color\u{02}red\u{01}height\u{02}600\u{01}width\u{02}1024")
            #expect(try await rawReply(s, Req.setMetadata(g, n, [], mode: 0x4D)).status == 0)
            #expect(try await rawReply(s, Req.groupAndName(15, g, n)).body.count == 31)
            #expect(try await rawReply(s, Req.setMetadata(g, n, Req.bytes("a\u{02}b"))).status == 0)
            #expect(try await rawReply(s, Req.groupAndName(15, g, n)).bodyString == "a\u{02}b")
            #expect(try await rawReply(s, Req.setMetadata(g, n, [])).status == 0)
            #expect(try await rawReply(s, Req.groupAndName(15, g, n)).status == FDFSErrno.enoent.rawValue)
            #expect(try await rawReply(s, Req.setMetadata(g, n, [], mode: 0x58)).status == FDFSErrno.einval.rawValue)
            // The -m file beside the data file holds the packed, sorted form.
            #expect(try await rawReply(s, Req.setMetadata(g, n, Req.bytes("z\u{02}1\u{01}a\u{02}2"))).status == 0)
            let dir = server.storageDirectory(server.storageIDs[0])!
            let onDisk = FileManager.default.contents(atPath: "\(dir)/data/\(n.dropFirst(4))-m")
            #expect(onDisk.map { Array($0) } == Req.bytes("a\u{02}2\u{01}z\u{02}1"))
        }
    }

    @Test("unknown file ids are ENOENT, a foreign group or a malformed name is EINVAL")
    func unknownAndInvalidIDs() async throws {
        try await withDevServer { (server: DevServer) async throws in
            let s = server.firstStorage
            let (g, n) = try await rawUpload(server, ten)
            let missing = String(n.dropLast(8)) + "0000.txt"
            for cmd: UInt8 in [12, 15, 22] {
                #expect(try await rawReply(s, Req.groupAndName(cmd, g, missing)).status == FDFSErrno.enoent.rawValue)
            }
            #expect(try await rawReply(s, Req.download(g, missing)).status == FDFSErrno.enoent.rawValue)
            #expect(try await rawReply(s, Req.groupAndName(22, "group2", n)).status == FDFSErrno.einval.rawValue)
            #expect(try await rawReply(s, Req.groupAndName(22, g, "M00/zz/00/abc")).status == FDFSErrno.einval.rawValue)
            #expect(try await rawReply(s, Req.groupAndName(22, g, "M01/00/00/" + n.dropFirst(10))).status == FDFSErrno.einval.rawValue)
            #expect(try await rawReply(s, Req.groupAndName(22, g, "short")).status == FDFSErrno.einval.rawValue)
        }
    }

    @Test("slave upload: name from master + prefix + ext; empty prefix EINVAL; missing master ENOENT; existing EEXIST")
    func slaveUpload() async throws {
        try await withDevServer { (server: DevServer) async throws in
            let s = server.firstStorage
            let (g, master) = try await rawUpload(server, ten, ext: "jpg")
            let r = try await rawReply(s, Req.slave(master: master, prefix: "_150x150", ext: "jpg", Req.bytes("thumb")))
            #expect(r.status == 0)
            let slave = String(decoding: r.body.dropFirst(16), as: UTF8.self)
            #expect(slave == String(master.dropLast(4)) + "_150x150.jpg")
            #expect(try await rawReply(s, Req.download(g, slave)).bodyString == "thumb")
            #expect(try await rawReply(s, Req.slave(master: master, prefix: "", ext: "jpg", [1])).status == FDFSErrno.einval.rawValue)
            #expect(
                try await rawReply(s, Req.slave(master: master, prefix: "_150x150", ext: "jpg", [1])).status
                    == FDFSErrno.eexist.rawValue)
            let missing = String(master.dropLast(8)) + "0000.jpg"
            #expect(try await rawReply(s, Req.slave(master: missing, prefix: "_s", ext: "jpg", [1])).status == FDFSErrno.enoent.rawValue)
            // Query info of a slave computes its CRC on 6.16.
            let info = try await rawReply(s, Req.groupAndName(22, g, slave))
            #expect(Array(info.body[20..<24]) == withUnsafeBytes(of: CRC32.checksum(Req.bytes("thumb")).bigEndian) { Array($0) })
        }
    }

    @Test("query file info: name CRC for normal files, computed for appenders, 0 with the no-CRC flag")
    func queryFileInfoFlags() async throws {
        try await withDevServer { (server: DevServer) async throws in
            let s = server.firstStorage
            let (g, n) = try await rawUpload(server, Req.bytes("0123456789"), appender: true)
            #expect(try await rawReply(s, Req.append(n, Req.bytes("X"))).status == 0)
            let computed = try await rawReply(s, Req.groupAndName(22, g, n))
            let info = try decodeInfo(computed)
            #expect(info.size == 11 && info.crc32 == CRC32.checksum(Req.bytes("0123456789X")))
            #expect(info.sourceIP == s.host && computed.body.count == 40)
            let noCRC = try await rawReply(s, Req.groupAndName(22, g, n, status: 1))
            #expect(try decodeInfo(noCRC).crc32 == 0)
            let silent = try await rawReply(s, Req.groupAndName(22, g, String(n.dropLast(8)) + "0000.txt", status: 2))
            #expect(silent.status == FDFSErrno.enoent.rawValue)
        }
    }

    @Test("regenerate turns an appender into a normal file under a new name (6.16), EINVAL on 5.12")
    func regenerate() async throws {
        try await withDevServer { (server: DevServer) async throws in
            let s = server.firstStorage
            let (g, n) = try await rawUpload(server, Req.bytes("abc"), appender: true)
            let r = try await rawReply(s, Req.regenerate(n))
            #expect(r.status == 0)
            let new = String(decoding: r.body.dropFirst(16), as: UTF8.self)
            let info = try FileIDInfo.decode(filename: new)
            #expect(info.kind == .normal && info.size == 3 && info.crc32 == CRC32.checksum(Req.bytes("abc")))
            #expect(new.hasSuffix(String(n.suffix(7))))
            #expect(try await rawReply(s, Req.download(g, n)).status == FDFSErrno.enoent.rawValue)
            #expect(try await rawReply(s, Req.download(g, new)).bodyString == "abc")
        }
        try await withDevServer(compat: .v5) { (server: DevServer) async throws in
            let (_, n) = try await rawUpload(server, Req.bytes("abc"), appender: true)
            try await RawConnection.with(server.firstStorage) { c in
                guard case .reply(let r) = try await c.request(Req.regenerate(n)) else { throw TestFailure("no reply") }
                #expect(r.status == FDFSErrno.einval.rawValue)
                #expect(try await c.isClosedByServer())
            }
        }
    }

    @Test("QUIT gets no reply and the connection closes; ACTIVE_TEST with a body is EINVAL")
    func quitAndActiveTest() async throws {
        try await withDevServer { (server: DevServer) async throws -> Void in
            for address in [server.trackerAddress, server.firstStorage] {
                #expect(try await rawRequest(address, Req.packet(82)) == .closed(partial: []))
                #expect(try await rawReply(address, Req.packet(111)).status == 0)
                #expect(try await rawReply(address, Req.packet(111, [1])).status == FDFSErrno.einval.rawValue)
            }
        }
    }

    @Test("unknown commands are EINVAL and close the storage connection")
    func unknownCommand() async throws {
        try await withDevServer { (server: DevServer) async throws in
            try await RawConnection.with(server.firstStorage) { c in
                guard case .reply(let r) = try await c.request(Req.packet(99)) else { throw TestFailure("no reply") }
                #expect(r.status == FDFSErrno.einval.rawValue)
                #expect(try await c.isClosedByServer())
            }
        }
    }

    @Test("ENOSPC when the reserved space would be crossed, from the storage and the tracker")
    func reservedSpace() async throws {
        try await withDevServer(reservedSpaceMB: 1 << 40) { (server: DevServer) async throws in
            #expect(try await rawReply(server.firstStorage, Req.upload(ten)).status == FDFSErrno.enospc.rawValue)
            #expect(try await rawReply(server.trackerAddress, Req.packet(101)).status == FDFSErrno.enospc.rawValue)
            // The connection stays usable after a non-EINVAL error.
            try await RawConnection.with(server.firstStorage) { c in
                guard case .reply(let r) = try await c.request(Req.upload(ten)) else { throw TestFailure("closed") }
                #expect(r.status == FDFSErrno.enospc.rawValue)
                guard case .reply(let a) = try await c.request(Req.packet(111)) else { throw TestFailure("closed") }
                #expect(a.status == 0)
            }
        }
    }

    @Test("file ids: real format, local decoding gives source IP, size, CRC; appender flag set")
    func fileIDFormat() async throws {
        try await withDevServer { (server: DevServer) async throws in
            let (_, n) = try await rawUpload(server, ten)
            #expect(n.utf8.count == 44 && n.hasPrefix("M00/"))
            let info = try FileIDInfo.decode(filename: n)
            // The storage's own address (127.0.0.2: the tracker keeps 127.0.0.1).
            #expect(info.source == .ipv4(server.firstStorage.host) && server.firstStorage.host == "127.0.0.2")
            #expect(info.size == 10 && info.crc32 == CRC32.checksum(ten) && info.kind == .normal)
            let (_, a) = try await rawUpload(server, ten, appender: true)
            #expect(try FileIDInfo.decode(filename: a).kind == .appender)
            let (_, noExt) = try await rawUpload(server, ten, ext: "")
            #expect(noExt.utf8.count == 44 && !noExt.suffix(7).contains("."))
        }
    }

    @Test("absurd lengths are EINVAL, never a crash")
    func absurdLengths() async throws {
        try await withDevServer(compat: .v5) { (server: DevServer) async throws in
            let s = server.firstStorage
            let (g, n) = try await rawUpload(server, ten)
            #expect(try await rawReply(s, Req.download(g, n, offset: 1, count: Int64.max)).status == FDFSErrno.einval.rawValue)
            #expect(try await rawReply(s, Req.download(g, n, offset: Int64.max, count: 0)).status == FDFSErrno.einval.rawValue)
            // Upload announcing Int64.max content bytes in a small packet.
            let bogus = Req.packet(11, [0] + Req.int64(Int64.max) + Req.fixed("txt", 6))
            #expect(try await rawReply(s, bogus).status == FDFSErrno.einval.rawValue)
            let meta = Req.packet(13, Req.int64(Int64(n.utf8.count)) + Req.int64(Int64.max) + [0x4F] + Req.fixed(g, 16) + Req.bytes(n))
            #expect(try await rawReply(s, meta).status == FDFSErrno.einval.rawValue)
            #expect(try await rawReply(s, Req.packet(111)).status == 0)
        }
    }

    @Test("several requests on one connection, and 64 concurrent connections")
    func concurrency() async throws {
        try await withDevServer { (server: DevServer) async throws in
            try await RawConnection.with(server.firstStorage) { c in
                for i in 0..<5 {
                    guard case .reply(let r) = try await c.request(Req.upload(Req.bytes("item \(i)"))) else {
                        throw TestFailure("closed")
                    }
                    #expect(r.status == 0)
                }
            }
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0..<64 {
                    group.addTask {
                        let payload = Req.bytes("concurrent \(i) ") + [UInt8](repeating: UInt8(i), count: 100_000)
                        let (g, n) = try await rawUpload(server, payload)
                        let back = try await rawReply(server.firstStorage, Req.download(g, n))
                        return back.body == payload
                    }
                }
                var ok = 0
                for try await r in group where r { ok += 1 }
                #expect(ok == 64)
            }
        }
    }
}

func decodeInfo(_ reply: RawReply) throws -> QueryFileInfoResponse {
    var b = ByteBuffer(bytes: reply.body)
    return try QueryFileInfoResponse.decode(body: &b)
}
