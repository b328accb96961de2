// Layouts no capture covers, built byte by byte from the reference's tables (§3, §4.2, §7.10):
// storage stats of 600/612/642/644/509/517/487 bytes, 45-byte IP fields (6.11–6.14 and IPv6),
// 70-byte file info, and the QUERY_FETCH_ALL ambiguities of §3.4.
import NIOCore
import Testing
@testable import FastDFSProtocol

/// Builds records field by field, independently of the codec's encoders.
struct RecordBuilder {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func int64(_ v: Int64) { withUnsafeBytes(of: v.bigEndian) { bytes += $0 } }
    mutating func int32(_ v: Int32) { withUnsafeBytes(of: v.bigEndian) { bytes += $0 } }
    mutating func text(_ s: String, _ width: Int) {
        let utf8 = Array(s.utf8.prefix(width))
        bytes += utf8 + [UInt8](repeating: 0, count: width - utf8.count)
    }
    var buffer: ByteBuffer { ByteBuffer(bytes: bytes) }
}

@Suite("Hand-built layouts")
struct HandBuiltLayoutTests {
    /// One storage stat record of `size` bytes laid out per §4.2, with distinct values in every field.
    static func storageRecord(size: Int, seed: Int64) -> [UInt8] {
        var b = RecordBuilder()
        let layoutA = [600, 612, 642, 644].contains(size)
        let ipSize = [600, 612, 487].contains(size) ? 16 : 46
        let versionSize = [600, 612, 642].contains(size) ? 6 : 8
        b.u8(7)                                         // status
        if !layoutA { b.u8(4) }                         // rw_mode (read-only)
        b.text("id\(seed)", 16)
        b.text(ipSize == 46 ? "fd00:1234:5678::\(seed)" : "10.0.0.\(seed)", ipSize)
        if layoutA { b.text("storage\(seed).example.com", 128) }
        b.text("src\(seed)", 16)
        b.text(versionSize == 6 ? "6.11." : "6.16.10", versionSize)
        b.int64(1_700_000_000 + seed)                   // join_time
        b.int64(1_700_000_100 + seed)                   // up_time
        b.int64(500_000 + seed)                         // total_mb
        b.int64(200_000 + seed)                         // free_mb
        if size == 517 || size == 487 { b.int64(1024 + seed) }  // reserved_mb
        b.int64(10 + seed)                              // upload_priority
        b.int64(2)                                      // store_path_count
        b.int64(256)                                    // subdir_count_per_path
        b.int64(1)                                      // current_write_path
        b.int64(23000 + seed)                           // storage_port
        if layoutA { b.int64(8888) }                    // storage_http_port
        if size != 600 {
            b.int32(11); b.int32(12); b.int32(13)      // connection counters
        }
        for i in 0..<42 { b.int64(Int64(i) * 100 + seed) }
        b.u8(1)                                         // if_trunk_server
        precondition(b.bytes.count == size, "builder made \(b.bytes.count) bytes for \(size)")
        return b.bytes
    }

    @Test(arguments: [600, 612, 642, 644, 509, 517, 487])
    func storageStatLayouts(size: Int) throws {
        let bytes = Self.storageRecord(size: size, seed: 1) + Self.storageRecord(size: size, seed: 2)
        var body = ByteBuffer(bytes: bytes)
        let stats = try StorageStat.decodeList(body: &body)
        #expect(stats.count == 2)
        #expect(body.readableBytes == 0)
        for (i, stat) in stats.enumerated() {
            let seed = Int64(i + 1)
            let layoutA = [600, 612, 642, 644].contains(size)
            #expect(stat.layout.recordSize == size)
            #expect(stat.status == 7)
            #expect(stat.rwMode == (layoutA ? 6 : 4))
            #expect(stat.id == "id\(seed)")
            #expect(stat.ipAddress == ([600, 612, 487].contains(size) ? "10.0.0.\(seed)" : "fd00:1234:5678::\(seed)"))
            #expect(stat.domainName == (layoutA ? "storage\(seed).example.com" : ""))
            #expect(stat.sourceID == "src\(seed)")
            #expect(stat.version == ([600, 612, 642].contains(size) ? "6.11." : "6.16.10"), "8 chars, no NUL")
            #expect(stat.joinTime == 1_700_000_000 + seed)
            #expect(stat.upTime == 1_700_000_100 + seed)
            #expect(stat.totalMB == 500_000 + seed)
            #expect(stat.freeMB == 200_000 + seed)
            #expect(stat.reservedMB == (size == 517 || size == 487 ? 1024 + seed : 0))
            #expect(stat.uploadPriority == 10 + seed)
            #expect(stat.storePathCount == 2)
            #expect(stat.subdirCountPerPath == 256)
            #expect(stat.currentWritePath == 1)
            #expect(stat.port == 23000 + seed)
            #expect(stat.httpPort == (layoutA ? 8888 : 0))
            #expect(stat.connectionAllocCount == (size == 600 ? 0 : 11))
            #expect(stat.connectionCurrentCount == (size == 600 ? 0 : 12))
            #expect(stat.connectionMaxCount == (size == 600 ? 0 : 13))
            #expect(stat.counters == (0..<42).map { Int64($0) * 100 + seed })
            #expect(stat.totalUploadCount == seed)
            #expect(stat.successUploadCount == 100 + seed)
            #expect(stat.totalDownloadCount == 1200 + seed)
            #expect(stat.lastSourceUpdate == 3800 + seed)
            #expect(stat.lastSyncUpdate == 3900 + seed)
            #expect(stat.lastSyncedTimestamp == 4000 + seed)
            #expect(stat.lastHeartBeatTime == 4100 + seed)
            #expect(stat.isTrunkServer)
        }
        #expect(encoded { b in stats.forEach { $0.encode(into: &b) } } == bytes, "round trip")
        // A single record decodes on its own too.
        var one = ByteBuffer(bytes: Self.storageRecord(size: size, seed: 3))
        #expect(try StorageStat.decode(body: &one).id == "id3")
    }

    /// With at most 32 servers, no two record sizes give the same body length (§4.2).
    @Test func storageStatSizesNeverCollide() throws {
        for layout in StorageStat.Layout.allCases {
            for n in 1...32 {
                var body = ByteBuffer(repeating: 0, count: layout.recordSize * n)
                let stats = try StorageStat.decodeList(body: &body)
                #expect(stats.count == n && stats.allSatisfy { $0.layout == layout }, "\(layout) × \(n)")
            }
        }
        var odd = ByteBuffer(repeating: 0, count: 613)
        #expect(throws: FDFSProtocolError.self) { _ = try StorageStat.decodeList(body: &odd) }
    }

    @Test func groupStatLayouts() throws {
        for size in [105, 113] {
            var b = RecordBuilder()
            b.text("group7", 17)
            let count = size == 105 ? 11 : 12
            for i in 1...count { b.int64(Int64(i)) }
            var body = b.buffer
            let stat = try GroupStat.decode(body: &body)
            #expect(stat.name == "group7")
            #expect(stat.totalMB == 1 && stat.freeMB == 2)
            if size == 105 {
                #expect(stat.layout == .v105)
                #expect(stat.trunkFreeMB == 3 && stat.storageCount == 4 && stat.storagePort == 5 && stat.httpPort == 6)
                #expect(stat.readableServerCount == 7 && stat.writableServerCount == 7)
                #expect(stat.currentWriteServer == 8 && stat.storePathCount == 9)
                #expect(stat.subdirCountPerPath == 10 && stat.currentTrunkFileID == 11)
                #expect(stat.reservedMB == 0)
            } else {
                #expect(stat.layout == .v113)
                #expect(stat.reservedMB == 3 && stat.trunkFreeMB == 4 && stat.storageCount == 5 && stat.storagePort == 6)
                #expect(stat.readableServerCount == 7 && stat.writableServerCount == 8)
                #expect(stat.currentWriteServer == 9 && stat.storePathCount == 10)
                #expect(stat.subdirCountPerPath == 11 && stat.currentTrunkFileID == 12)
                #expect(stat.httpPort == 0)
            }
            #expect(encoded { stat.encode(into: &$0) } == b.bytes)
        }
    }

    /// 11865 bytes = 105 records of 113 bytes = 113 records of 105 bytes (§4.1).
    @Test func groupStatAmbiguousLength() throws {
        for layout in [GroupStat.Layout.v113, .v105] {
            let count = layout == .v113 ? 105 : 113
            var body = ByteBuffer()
            for i in 0..<count {
                GroupStat(name: "g\(i)", totalMB: 1000, freeMB: 10, storageCount: 1, storagePort: 23000,
                          layout: layout).encode(into: &body)
            }
            #expect(body.readableBytes == 11865)
            let stats = try GroupStat.decodeList(body: &body)
            #expect(stats.count == count)
            #expect(stats.allSatisfy { $0.layout == layout })
            #expect(stats.last?.name == "g\(count - 1)")
        }
    }

    @Test func ipWidth45QueryReplies() throws {
        // QUERY_STORE: group(16) ip(45) port(8) index(1) = 70.
        var b = RecordBuilder()
        b.text("group2", 16); b.text("2001:db8:85a3::8a2e:370:7334", 45); b.int64(23001); b.u8(3)
        var body = b.buffer
        let store = try QueryStoreResponse.decode(body: &body)
        #expect(store.group == "group2")
        #expect(store.server == StorageAddress(host: "2001:db8:85a3::8a2e:370:7334", port: 23001))
        #expect(store.server.description == "[2001:db8:85a3::8a2e:370:7334]:23001")
        #expect(store.storePathIndex == 3)
        #expect(store.ipWidth == 45)
        #expect(encoded { store.encode(into: &$0) } == b.bytes)

        // QUERY_FETCH / UPDATE: 69 bytes.
        b = RecordBuilder()
        b.text("group2", 16); b.text("10.1.2.3", 45); b.int64(23002)
        body = b.buffer
        let fetch = try QueryFetchResponse.decode(body: &body)
        #expect(fetch.server == StorageAddress(host: "10.1.2.3", port: 23002))
        #expect(fetch.ipWidth == 45)
        #expect(encoded { fetch.encode(into: &$0) } == b.bytes)

        // QUERY_STORE_ALL: 16 + 3 × 53 + 1.
        b = RecordBuilder()
        b.text("group2", 16)
        for i in 1...3 { b.text("fd00::\(i)", 45); b.int64(23000 + Int64(i)) }
        b.u8(1)
        body = b.buffer
        let all = try QueryStoreAllResponse.decode(body: &body)
        #expect(all.servers.map(\.description) == ["[fd00::1]:23001", "[fd00::2]:23002", "[fd00::3]:23003"])
        #expect(all.ipWidth == 45 && all.storePathIndex == 1)
        #expect(encoded { all.encode(into: &$0) } == b.bytes)
    }

    @Test func ipWidth45FetchAllBothLayouts() throws {
        // ≥ 6.16: 16 + 2 × (45 + 8).
        var b = RecordBuilder()
        b.text("group3", 16)
        b.text("fd00::a", 45); b.int64(23000)
        b.text("fd00::b", 45); b.int64(23001)
        var body = b.buffer
        var r = try QueryFetchAllResponse.decode(body: &body)
        #expect(r.layout == .portPerServer && r.ipWidth == 45)
        #expect(r.servers == [StorageAddress(host: "fd00::a", port: 23000), StorageAddress(host: "fd00::b", port: 23001)])
        #expect(encoded { r.encode(into: &$0) } == b.bytes)

        // ≤ 6.15 (6.11–6.14 use W = 45): 16 + 45 + 8 + 45, one shared port.
        b = RecordBuilder()
        b.text("group3", 16)
        b.text("fd00::a", 45); b.int64(23000)
        b.text("fd00::b", 45)
        body = b.buffer
        r = try QueryFetchAllResponse.decode(body: &body)
        #expect(r.layout == .sharedPort && r.ipWidth == 45)
        #expect(r.servers == [StorageAddress(host: "fd00::a", port: 23000), StorageAddress(host: "fd00::b", port: 23000)])
        #expect(encoded { r.encode(into: &$0) } == b.bytes)
    }

    /// 69 bytes: old layout W = 15 with 3 servers, or new layout W = 45 with 1 server (§3.4).
    @Test func fetchAllAmbiguous69Bytes() throws {
        var old = RecordBuilder()
        old.text("group1", 16)
        old.text("127.0.0.1", 15); old.int64(23000)
        old.text("127.0.0.2", 15); old.text("127.0.0.3", 15)
        #expect(old.bytes.count == 69)
        var body = old.buffer
        let r1 = try QueryFetchAllResponse.decode(body: &body)
        #expect(r1.layout == .sharedPort && r1.ipWidth == 15)
        #expect(r1.servers.map(\.description) == ["127.0.0.1:23000", "127.0.0.2:23000", "127.0.0.3:23000"])

        var new = RecordBuilder()
        new.text("group1", 16)
        new.text("192.168.100.200", 45); new.int64(23000)
        #expect(new.bytes.count == 69)
        body = new.buffer
        let r2 = try QueryFetchAllResponse.decode(body: &body)
        #expect(r2.ipWidth == 45 && r2.servers == [StorageAddress(host: "192.168.100.200", port: 23000)])

        // Full 15-character IPv4 addresses leave no NUL in a 15-byte field.
        var full = RecordBuilder()
        full.text("group1", 16)
        full.text("255.255.255.254", 15); full.int64(65535)
        full.text("255.255.255.253", 15); full.int64(1)
        body = full.buffer
        let r3 = try QueryFetchAllResponse.decode(body: &body, ipWidthHint: 15)
        #expect(r3.servers.map(\.description) == ["255.255.255.254:65535", "255.255.255.253:1"])
    }

    /// 384 bytes fit three readings (§3.4): ≥ 6.16 W=15 N=16, ≤ 6.15 W=15 N=24, ≤ 6.15 W=45 N=8.
    /// Each genuine body decodes as what it is.
    @Test func fetchAll384BytesThreeReadings() throws {
        func ip(_ i: Int) -> String { "10.0.\(i).\(i + 100)" }
        var new15 = RecordBuilder()
        new15.text("group1", 16)
        for i in 1...16 { new15.text(ip(i), 15); new15.int64(23000 + Int64(i)) }
        var old15 = RecordBuilder()
        old15.text("group1", 16)
        old15.text(ip(1), 15); old15.int64(23000)
        for i in 2...24 { old15.text(ip(i), 15) }
        var old45 = RecordBuilder()
        old45.text("group1", 16)
        old45.text("fd00::1", 45); old45.int64(23000)
        for i in 2...8 { old45.text("fd00::\(i)", 45) }
        for b in [new15, old15, old45] { #expect(b.bytes.count == 384) }

        var body = new15.buffer
        var r = try QueryFetchAllResponse.decode(body: &body)
        #expect(r.layout == .portPerServer && r.ipWidth == 15 && r.servers.count == 16)
        #expect(r.servers.last == StorageAddress(host: ip(16), port: 23016))

        body = old15.buffer
        r = try QueryFetchAllResponse.decode(body: &body)
        #expect(r.layout == .sharedPort && r.ipWidth == 15 && r.servers.count == 24)
        #expect(r.servers.allSatisfy { $0.port == 23000 } && r.servers.last?.host == ip(24))

        body = old45.buffer
        r = try QueryFetchAllResponse.decode(body: &body)
        #expect(r.layout == .sharedPort && r.ipWidth == 45 && r.servers.count == 8)
        #expect(r.servers.last == StorageAddress(host: "fd00::8", port: 23000))
    }

    /// Random genuine replies of every (layout, W, N ≤ 32): the decoder returns exactly what was
    /// encoded, or throws on a true ambiguity — never a different value.
    @Test func fetchAllRandomRepliesNeverMisread() throws {
        var rng = SeededRNG(seed: 2024)
        var ambiguous = 0
        for _ in 0..<3000 {
            let width = Bool.random(using: &rng) ? 15 : 45
            let layout: QueryFetchAllResponse.Layout = Bool.random(using: &rng) ? .portPerServer : .sharedPort
            let count = Int.random(in: 1...32, using: &rng)
            let sharedPort = Int.random(in: 1...65535, using: &rng)
            let servers = (0..<count).map { _ -> StorageAddress in
                let host: String
                if width == 45 && Bool.random(using: &rng) {
                    host = "fd00:" + (0..<Int.random(in: 1...6, using: &rng)).map { _ in
                        String(UInt16.random(in: 0...0xFFFF, using: &rng), radix: 16)
                    }.joined(separator: ":")
                } else {
                    host = (0..<4).map { _ in String(UInt8.random(in: 0...255, using: &rng)) }.joined(separator: ".")
                }
                return StorageAddress(host: host, port: layout == .sharedPort ? sharedPort : Int.random(in: 1...65535, using: &rng))
            }
            let original = QueryFetchAllResponse(group: "group1", servers: servers, ipWidth: width, layout: layout)
            var body = ByteBuffer()
            original.encode(into: &body)
            do {
                let decoded = try QueryFetchAllResponse.decode(body: &body)
                if decoded.servers != original.servers || decoded.ipWidth != width
                    || (count > 1 && decoded.layout != layout) {
                    Issue.record("misread \(original) as \(decoded)")
                }
            } catch {
                ambiguous += 1
                // With the W learned from a 102 reply the ambiguity disappears.
                var again = ByteBuffer()
                original.encode(into: &again)
                let hinted = try QueryFetchAllResponse.decode(body: &again, ipWidthHint: width)
                #expect(hinted.servers == original.servers)
            }
        }
        #expect(ambiguous < 30, "ambiguities should be rare: \(ambiguous)")
    }

    /// A body whose port fields can't be ports throws instead of returning a wrong value.
    @Test func fetchAllRejectsBadPorts() throws {
        var b = RecordBuilder()
        b.text("group1", 16)
        b.text("127.0.0.1", 15); b.int64(70000)
        b.text("127.0.0.2", 15); b.int64(0)
        var body = b.buffer
        #expect(throws: FDFSProtocolError.self) { _ = try QueryFetchAllResponse.decode(body: &body) }
        b = RecordBuilder()
        b.text("group1", 16)
        b.text("127.0.0.1", 15); b.int64(Int64(1) << 40 | 23000)
        body = b.buffer
        #expect(throws: FDFSProtocolError.self) { _ = try QueryFetchAllResponse.decode(body: &body) }
    }

    @Test func fileInfo70Bytes() throws {
        var b = RecordBuilder()
        b.int64(123_456_789_012); b.int64(1_795_842_070); b.int64(-1_862_249_705)  // 0x91005317 sign-extended
        b.text("2001:db8::7", 46)
        var body = b.buffer
        let info = try QueryFileInfoResponse.decode(body: &body)
        #expect(info.size == 123_456_789_012)
        #expect(info.modifyTime == 1_795_842_070)
        #expect(info.crc32 == 0x9100_5317)
        #expect(info.sourceIP == "2001:db8::7")
        #expect(info.ipFieldWidth == 46)
        #expect(encoded { info.encode(into: &$0) } == b.bytes)
        var wrong = ByteBuffer(repeating: 0, count: 41)
        #expect(throws: FDFSProtocolError.invalidLength(command: "QUERY_FILE_INFO response", length: 41, expected: "40 or 70")) {
            _ = try QueryFileInfoResponse.decode(body: &wrong)
        }
    }
}
