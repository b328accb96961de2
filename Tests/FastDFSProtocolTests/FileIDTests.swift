// File ids: parsing, local decoding (§5 of the reference, worked example §5.5), classification,
// malformed names, and the generation helpers the dev server uses.
import Foundation
import NIOCore
import Testing
@testable import FastDFSProtocol

@Suite("File ids")
struct FileIDTests {
    // §5.5: 192.168.1.104, 1700000000, "123456789" (CRC 0xCBF43926), random 0x123456, "txt".
    static let exampleB27 = "wKgBaGVT8QCAEjRWAAAACcv0OSY"

    @Test func workedExampleEncode() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        let size = FDFSFilename.makeSizeField(size: 9, appender: false, randomHigh: 0x123456)
        #expect(size == Int64(bitPattern: 0x8012_3456_0000_0009))
        let ip = try! #require(FDFSFilename.sourceField(ipv4: "192.168.1.104"))
        #expect(ip == 0xC0A8_0168)
        #expect(FDFSFilename.encode20(source: ip, timestamp: 1_700_000_000, sizeField: size, crc32: 0xCBF4_3926) == Self.exampleB27)
        // ID mode: storage ID 100001 is stored little-endian.
        #expect(FDFSFilename.encode20(source: FDFSFilename.sourceField(storageID: 100_001), timestamp: 1_700_000_000,
                                      sizeField: size, crc32: 0xCBF4_3926) == "oYYBAGVT8QCAEjRWAAAACcv0OSY")
        // Appender, M (6.12+): random high word | 2^58, low word 0.
        let appender = FDFSFilename.makeSizeField(size: 9, appender: true, randomHigh: 0x123456)
        #expect(appender == Int64(bitPattern: 0x8412_3456_0000_0000))
        #expect(FDFSFilename.encode20(source: ip, timestamp: 1_700_000_000, sizeField: appender, crc32: 0xCBF4_3926)
                == "wKgBaGVT8QCEEjRWAAAAAMv0OSY")
        #expect(FDFSFilename.encode20(source: ip, timestamp: 1_700_000_000, sizeField: 1 << 58, crc32: 0xCBF4_3926)
                == "wKgBaGVT8QAEAAAAAAAAAMv0OSY")
    }

    @Test func workedExampleDecode() throws {
        let info = try FileIDInfo.decode(filename: "M00/00/00/\(Self.exampleB27)123.txt")
        #expect(info.source == .ipv4("192.168.1.104"))
        #expect(info.createTime == 1_700_000_000)
        #expect(info.size == 9)
        #expect(info.sizeField == Int64(bitPattern: 0x8012_3456_0000_0009))
        #expect(info.crc32 == 0xCBF4_3926)
        #expect(info.kind == .normal)
        #expect(info.storePathIndex == 0 && info.subdirectory1 == 0 && info.subdirectory2 == 0)

        let id = try FileIDInfo.decode(filename: "M02/1A/FF/oYYBAGVT8QCAEjRWAAAACcv0OSY123.txt")
        #expect(id.source == .storageID(100_001))
        #expect(id.storePathIndex == 2 && id.subdirectory1 == 0x1A && id.subdirectory2 == 0xFF)
        #expect(id.size == 9)

        let appenderM = try FileIDInfo.decode(filename: "M00/00/00/wKgBaGVT8QCEEjRWAAAAAMv0OSY123.txt")
        #expect(appenderM.kind == .appender)
        #expect(appenderM.size == nil)
        #expect(appenderM.sizeField == Int64(bitPattern: 0x8412_3456_0000_0000))
        let appenderOld = try FileIDInfo.decode(filename: "M00/00/00/wKgBaGVT8QAEAAAAAAAAAMv0OSY123.txt")
        #expect(appenderOld.kind == .appender)
        #expect(appenderOld.sizeField == 1 << 58)
        #expect(appenderOld.crc32 == 0xCBF4_3926)
    }

    @Test func sourceEdgeCases() throws {
        // An IPv4 source ending in .0 reads as a storage ID (documented C behaviour).
        let zeroLast = FDFSFilename.encode20(source: FDFSFilename.sourceField(ipv4: "10.0.1.0")!, timestamp: 1, sizeField: 5, crc32: 0)
        #expect(try FileIDInfo.decode(filename: "M00/00/00/\(zeroLast)1234567").source == .storageID(0x01_000A))
        // 0.0.0.0 (v = 0) is not an ID.
        let zero = FDFSFilename.encode20(source: 0, timestamp: 1, sizeField: 5, crc32: 0)
        #expect(try FileIDInfo.decode(filename: "M00/00/00/\(zero)1234567").source == .ipv4("0.0.0.0"))
        // The largest ID.
        let maxID = FDFSFilename.encode20(source: FDFSFilename.sourceField(storageID: 16_777_215), timestamp: 1, sizeField: 5, crc32: 0)
        #expect(try FileIDInfo.decode(filename: "M00/00/00/\(maxID)1234567").source == .storageID(16_777_215))
        // Timestamps past 2038 stay positive.
        let late = FDFSFilename.encode20(source: 0x7F00_0001, timestamp: 0xF000_0000, sizeField: 5, crc32: 0)
        #expect(try FileIDInfo.decode(filename: "M00/00/00/\(late)1234567").createTime == 0xF000_0000)
        // ≥ 4 GiB: plain size, no random bits.
        let big: Int64 = 5 << 32 | 7
        #expect(FDFSFilename.makeSizeField(size: big, appender: false, randomHigh: 0xFFFF_FFFF) == big)
        let bigName = FDFSFilename.encode20(source: 0x7F00_0001, timestamp: 1, sizeField: big, crc32: 0)
        #expect(try FileIDInfo.decode(filename: "M00/00/00/\(bigName)1234567").size == big)
        // Only 23 random bits are used.
        #expect(FDFSFilename.makeSizeField(size: 1, appender: false, randomHigh: 0xFFFF_FFFF) == Int64(bitPattern: 0x807F_FFFF_0000_0001))
    }

    @Test func slaveAndTrunkClassification() throws {
        let master = "M00/00/00/\(Self.exampleB27)123.jpg"
        let slave = try FDFSFilename.slaveFilename(master: master, prefix: "_150x150", ext: "jpg")
        #expect(slave == "M00/00/00/\(Self.exampleB27)123_150x150.jpg")
        let slaveInfo = try FileIDInfo.decode(filename: slave)
        #expect(slaveInfo.kind == .slave && slaveInfo.size == nil)
        #expect(slaveInfo.crc32 == 0xCBF4_3926 && slaveInfo.createTime == 1_700_000_000)

        // Trunk: 60 characters (B27 + 16 chars of trunk info + EXT7) with the trunk bit.
        let trunkSize = FDFSLimits.trunkFlag | 12345
        let trunkB27 = FDFSFilename.encode20(source: 0xC0A8_0168, timestamp: 1_700_000_000, sizeField: trunkSize, crc32: 7)
        let trunkInfo = FDFSBase64.encode([0, 0, 0, 1, 0, 0, 0x10, 0, 0, 0, 0x30, 0x39])
        #expect(trunkInfo.count == 16)
        let trunk = "M00/00/00/\(trunkB27)\(trunkInfo)123.txt"
        #expect(trunk.count == 60)
        let t = try FileIDInfo.decode(filename: trunk)
        #expect(t.kind == .trunk)
        #expect(t.size == 12345)
        // M-style trunk: random high word | 2^59.
        let mTrunk = Int64(bitPattern: 0x8812_3456_0000_3039)
        let mB27 = FDFSFilename.encode20(source: 0xC0A8_0168, timestamp: 1, sizeField: mTrunk, crc32: 7)
        #expect(try FileIDInfo.decode(filename: "M00/00/00/\(mB27)\(trunkInfo)123.txt").size == 12345)
        // 60 characters without the trunk bit: a slave.
        let plain = FDFSFilename.encode20(source: 0xC0A8_0168, timestamp: 1, sizeField: 10, crc32: 7)
        #expect(try FileIDInfo.decode(filename: "M00/00/00/\(plain)\(trunkInfo)123.txt").kind == .slave)
        // Longer than 60: a slave even with the trunk bit (slave of a trunk master).
        #expect(try FileIDInfo.decode(filename: "M00/00/00/\(trunkB27)\(trunkInfo)123_s.txt").kind == .slave)
        // 45–59 characters with the trunk bit: treated as a normal file by the C rules.
        #expect(try FileIDInfo.decode(filename: "M00/00/00/\(trunkB27)123_s.txt").kind == .normal)
        // Appender wins over everything.
        let app = FDFSFilename.encode20(source: 1, timestamp: 1, sizeField: FDFSLimits.appenderFlag, crc32: 0)
        #expect(try FileIDInfo.decode(filename: "M00/00/00/\(app)123_s.txt").kind == .appender)
    }

    @Test func fileIDsFromTheVectors() throws {
        var seen = Set<String>()
        for v in try VectorStore.all() {
            for id in [v.fileID, v.resultFileID].compactMap({ $0 }) where seen.insert(id.description).inserted {
                #expect(id.group == "group1" || id.group == "group9")
                try FileIDInfo.validate(filename: id.filename)
                let info = try FileIDInfo.decode(filename: id.filename)
                guard case .ipv4(let ip) = info.source else {
                    Issue.record("\(id): source should be an IP in IP mode")
                    continue
                }
                #expect(ip.hasPrefix("127.0.0."), "\(id)")
                #expect(info.createTime > 1_790_000_000, "\(id)")
                switch info.kind {
                case .normal:
                    #expect(info.size == 10 || info.size == 8, "\(id)")
                case .slave:
                    #expect(id.filename.contains("_small"))
                case .appender:
                    #expect(info.crc32 == CRC32.checksum(Array("0123456789".utf8)))
                case .trunk:
                    Issue.record("\(id): trunk files are disabled in the captures")
                }
                #expect(FileID(id.description) == id)
            }
        }
        #expect(seen.count == 14, "5 distinct ids in 6.16.1 and 6.06, 4 in 5.12 (no regenerate)")
    }

    @Test(arguments: [
        ("M00/00/00/wKgBaGVT8QCAEjRWAAAACcv0OSY123.tx", "too short (43)"),
        ("", "empty"),
        ("M00/00/00/wKgBaGVT8QCAEjRWAAAACcv0OS+123.txt", "'+' is not in the alphabet"),
        ("M00/00/00/wKgBaGVT8QCAEjRWAAAACcv0O=Y123.txt", "'=' is not in the alphabet"),
        ("M00/00/00/wKgBaGVT8QCAEjRW AAACcv0OSY123.txt", "space"),
        ("X00/00/00/wKgBaGVT8QCAEjRWAAAACcv0OSY123.txt", "not M"),
        ("MZZ/00/00/wKgBaGVT8QCAEjRWAAAACcv0OSY123.txt", "bad Mxx"),
        ("M0/00/00/wKgBaGVT8QCAEjRWAAAACcv0OSY1234.txt", "one-digit store path"),
        ("M00-00/00/wKgBaGVT8QCAEjRWAAAACcv0OSY123.txt", "no '/' after Mxx"),
        ("M00/0a/00/wKgBaGVT8QCAEjRWAAAACcv0OSY123.txt", "lowercase subdir"),
        ("M00/00/fF/wKgBaGVT8QCAEjRWAAAACcv0OSY123.txt", "lowercase subdir 2"),
        ("M00/000/0/wKgBaGVT8QCAEjRWAAAACcv0OSY123.txt", "misplaced '/'"),
        ("M00/00/00/wKgBaGVT8QCA\u{00e9}jRWAAAACcv0OSY123.txt", "non-ASCII inside base64"),
    ])
    func malformedNamesThrow(name: String, why: String) {
        #expect(throws: FDFSProtocolError.self, "\(why)") { _ = try FileIDInfo.decode(filename: name) }
        do {
            _ = try FileIDInfo.decode(filename: name)
        } catch {
            guard case .invalidFileID(let id, let reason) = error else {
                Issue.record("\(why): wrong error \(error)")
                return
            }
            #expect(id == name && !reason.isEmpty)
        }
    }

    @Test func lowercaseStorePathIsTolerated() throws {
        // The storage parses Mxx with strtol, so lowercase hex works there (but not in XX/YY).
        #expect(try FileIDInfo.decode(filename: "M0a/00/00/\(Self.exampleB27)123.txt").storePathIndex == 10)
        try FileIDInfo.validate(filename: "M0a/00/00/\(Self.exampleB27)123.txt")
    }

    @Test func validateFollowsServerRules() throws {
        try FileIDInfo.validate(filename: "M00/00/00/\(Self.exampleB27)123.txt")
        try FileIDInfo.validate(filename: "M00/00/00/x")  // > 10 characters is all §8.3 asks
        for bad in ["M00/00/00/", "M00/00/0/xx", "M00/00/00/abc/def", "M00/AB/cd/xyz", "N00/00/00/xyz",
                    "M00/00/00/" + String(repeating: "a", count: 118), "M00/00/00/a\u{0}b"] {
            #expect(throws: FDFSProtocolError.self, "\(bad)") { try FileIDInfo.validate(filename: bad) }
        }
        try FileIDInfo.validate(filename: "M00/00/00/" + String(repeating: "a", count: 117))  // 127 bytes
    }

    @Test func fileIDParsing() throws {
        let id = try FileID.parse("group1/M00/00/00/abc/def")
        #expect(id.group == "group1" && id.filename == "M00/00/00/abc/def", "split at the first '/'")
        #expect(id.description == "group1/M00/00/00/abc/def")
        #expect(FileID("group1/M00/x") == FileID(group: "group1", filename: "M00/x"))
        #expect(FileID("1234567890123456/M00/x")?.group == "1234567890123456")
        for bad in ["nogroup", "/M00/00/00/x", "group1/", "12345678901234567/M00/x", ""] {
            #expect(FileID(bad) == nil, "\(bad)")
            #expect(throws: FDFSProtocolError.self) { _ = try FileID.parse(bad) }
        }
        let json = try JSONEncoder().encode([id])
        #expect(String(decoding: json, as: UTF8.self) == #"["group1\/M00\/00\/00\/abc\/def"]"#)
        #expect(try JSONDecoder().decode([FileID].self, from: json) == [id])
        #expect(throws: DecodingError.self) { _ = try JSONDecoder().decode([FileID].self, from: Data(#"["bad"]"#.utf8)) }
    }

    @Test func generationHelpers() throws {
        var rng = SeededRNG(seed: 42)
        for _ in 0..<200 {
            let txt = FDFSFilename.formatExt("txt", randomDigits: &rng)
            #expect(txt.count == 7 && txt.hasSuffix(".txt") && txt.prefix(3).allSatisfy(\.isNumber))
            let none = FDFSFilename.formatExt("", randomDigits: &rng)
            #expect(none.count == 7 && none.allSatisfy(\.isNumber))
        }
        #expect(FDFSFilename.formatExt("tar.gz", randomDigits: SeededRNG(seed: 1)) == ".tar.gz")
        #expect(FDFSFilename.formatExt("jpeg", randomDigits: SeededRNG(seed: 1)).count == 7)
        #expect(FDFSFilename.formatExt("toolongext", randomDigits: SeededRNG(seed: 1)) == ".toolon")
        #expect(FDFSFilename.make(storePathIndex: 0x1F, sub1: 0x0A, sub2: 0xFF, base27: Self.exampleB27, ext7: "123.txt")
                == "M1F/0A/FF/\(Self.exampleB27)123.txt")

        // A whole new name decodes back to what it was made from (normal, appender, ≥ 4 GiB).
        let ip = try #require(FDFSFilename.sourceField(ipv4: "127.0.0.1"))
        for (size, appender) in [(Int64(9), false), (Int64(9), true), (Int64(5) << 32, false)] {
            let name = FDFSFilename.generate(
                source: ip, timestamp: 1_700_000_000, size: size, appender: appender, crc32: 0xCBF4_3926,
                storePathIndex: 0, sub1: 0x0A, sub2: 0xFF, ext7: "123.txt", using: &rng)
            #expect(name.hasPrefix("M00/0A/FF/") && name.hasSuffix("123.txt") && name.utf8.count == 44)
            let info = try FileIDInfo.decode(filename: name)
            #expect(info.source == .ipv4("127.0.0.1") && info.createTime == 1_700_000_000 && info.crc32 == 0xCBF4_3926)
            #expect(info.kind == (appender ? .appender : .normal))
            #expect(info.size == (appender ? nil : size))
        }

        // Slave names (§5.6).
        let b = Self.exampleB27
        #expect(try FDFSFilename.slaveFilename(master: "M00/00/00/\(b).tar.gz", prefix: "_s", ext: "gz") == "M00/00/00/\(b)_s.gz")
        #expect(try FDFSFilename.slaveFilename(master: "M00/00/00/\(b)1234567", prefix: "-x", ext: "") == "M00/00/00/\(b)1234567-x")
        #expect(try FDFSFilename.slaveFilename(master: "M00/00/00/\(b)123.txt", prefix: "_t", ext: "") == "M00/00/00/\(b)123_t")
        #expect(try FDFSFilename.slaveFilename(master: "M00/00/00/\(b)123.txt", prefix: "_t", ext: ".jpg") == "M00/00/00/\(b)123_t.jpg")
        #expect(throws: FDFSProtocolError.self) { _ = try FDFSFilename.slaveFilename(master: "M00/00/00/short.txt", prefix: "_t", ext: "") }
        for (prefix, ext) in [("", "txt"), ("a/b", "txt"), (String(repeating: "p", count: 17), "txt"), ("_s", "toolong"), ("_s", "t/x")] {
            #expect(throws: FDFSProtocolError.self) {
                _ = try FDFSFilename.slaveFilename(master: "M00/00/00/\(b)123.txt", prefix: prefix, ext: ext)
            }
        }
        #expect(FDFSFilename.isValidExt("") && FDFSFilename.isValidExt("tar.gz") && FDFSFilename.isValidExt("a-b_c"))
        #expect(!FDFSFilename.isValidExt("abcdefg") && !FDFSFilename.isValidExt("a b") && !FDFSFilename.isValidExt("é"))
        #expect(FDFSFilename.isValidPrefix("_150x150") && !FDFSFilename.isValidPrefix(""))
    }

    /// Names the generator makes decode back to the inputs, for random inputs.
    @Test func generateDecodeRoundTrip() throws {
        var rng = SeededRNG(seed: 7)
        for _ in 0..<2000 {
            let appender = Bool.random(using: &rng)
            let size = Bool.random(using: &rng) ? Int64.random(in: 0..<(1 << 32), using: &rng) : Int64.random(in: 0..<(1 << 40), using: &rng)
            let ipv4 = (1...4).map { _ in String(UInt8.random(in: 1...255, using: &rng)) }.joined(separator: ".")
            let source = FDFSFilename.sourceField(ipv4: ipv4)!
            let ts = UInt32.random(in: 0...UInt32.max, using: &rng)
            let crc = UInt32.random(in: 0...UInt32.max, using: &rng)
            let field = FDFSFilename.makeSizeField(size: size, appender: appender, randomHigh: .random(in: 0...UInt32.max, using: &rng))
            let ext = ["", "txt", "jpeg", "tar.gz", "a"].randomElement(using: &rng)!
            let (i, s1, s2) = (Int.random(in: 0...255, using: &rng), Int.random(in: 0...255, using: &rng), Int.random(in: 0...255, using: &rng))
            let name = FDFSFilename.make(storePathIndex: i, sub1: s1, sub2: s2,
                                         base27: FDFSFilename.encode20(source: source, timestamp: ts, sizeField: field, crc32: crc),
                                         ext7: FDFSFilename.formatExt(ext, randomDigits: &rng))
            #expect(name.utf8.count == 44)
            try FileIDInfo.validate(filename: name)
            let info = try FileIDInfo.decode(filename: name)
            #expect(info.storePathIndex == i && info.subdirectory1 == s1 && info.subdirectory2 == s2)
            #expect(info.source == .ipv4(ipv4))
            #expect(info.createTime == Int64(ts))
            #expect(info.crc32 == crc)
            #expect(info.sizeField == field)
            #expect(info.kind == (appender ? .appender : .normal))
            #expect(info.size == (appender ? nil : size))
        }
    }
}

/// SplitMix64: a small deterministic generator for reproducible tests.
struct SeededRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
