// Metadata pack/unpack/merge (§6), CRC-32 and the base64 variant (§5.2).
import NIOCore
import Testing
@testable import FastDFSProtocol

@Suite("Metadata")
struct MetadataTests {
    @Test func packAndUnpack() {
        let m: FDFSMetadata = ["width": "100", "author": "bob"]
        #expect(m.packed() == Array("author\u{2}bob\u{1}width\u{2}100".utf8), "sorted by key")
        #expect(m.packed(sorted: false) == Array("width\u{2}100\u{1}author\u{2}bob".utf8), "caller order")
        #expect(FDFSMetadata.unpack(m.packed()) == m)
        #expect(FDFSMetadata.unpack([UInt8]()).isEmpty)
        #expect(FDFSMetadata().packed().isEmpty)
        // Records without 0x02 are dropped; a second 0x02 stays in the value; empty values are kept.
        let odd = FDFSMetadata.unpack(Array("a\u{2}1\u{1}junk\u{1}b\u{2}x\u{2}y\u{1}c\u{2}\u{1}\u{1}".utf8))
        #expect(odd.entries.map(\.key) == ["a", "b", "c"])
        #expect(odd["b"] == "x\u{2}y")
        #expect(odd["c"] == "")
        #expect(odd["junk"] == nil)
    }

    @Test func hashableIgnoresOrder() {
        let a = FDFSMetadata(entries: [(key: "x", value: "1"), (key: "y", value: "2")])
        let b = FDFSMetadata(entries: [(key: "y", value: "2"), (key: "x", value: "1")])
        #expect(a == b)
        #expect(Set([a, b]).count == 1)
        #expect(a != FDFSMetadata(entries: [(key: "x", value: "1")]))
        #expect(FDFSMetadata(["k": "v"]) == ["k": "v"])
    }

    @Test func subscriptAndDictionary() {
        var m = FDFSMetadata()
        m["a"] = "1"
        m["b"] = "2"
        m["a"] = "3"
        #expect(m.entries.map(\.key) == ["a", "b"] && m["a"] == "3")
        m["a"] = nil
        #expect(m.dictionary == ["b": "2"])
        #expect(Array(m).count == 1)
    }

    @Test func mergeSemantics() {
        let old: FDFSMetadata = ["width": "1024", "height": "768"]
        let merged = old.merging(["height": "600", "color": "red"])
        #expect(merged.entries.map(\.key) == ["color", "height", "width"], "sorted")
        #expect(merged["height"] == "600" && merged["width"] == "1024" && merged["color"] == "red")
        #expect(old.merging(FDFSMetadata()) == old, "empty merge is a no-op")
        #expect(FDFSMetadata().merging(["b": "1", "a": "2"]).entries.map(\.key) == ["a", "b"])
        // Byte-wise order: uppercase before lowercase, shorter prefix first.
        let m = FDFSMetadata(["b": "", "B": "", "ba": "", "a": ""])
        #expect(m.entries.map(\.key) == ["B", "a", "b", "ba"])
    }

    @Test func limits() {
        let long = FDFSMetadata(entries: [(key: String(repeating: "k", count: 70), value: String(repeating: "v", count: 300))])
        let cut = long.truncatedToLimits()
        #expect(cut.entries[0].key.utf8.count == FDFSMetadata.maxKeyLength)
        #expect(cut.entries[0].value.utf8.count == FDFSMetadata.maxValueLength)
    }
}

@Suite("CRC32 and base64")
struct ChecksumTests {
    @Test func knownValues() {
        #expect(CRC32.checksum([UInt8]()) == 0)
        #expect(CRC32().value == 0)
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum(Array("hello fdfs".utf8)) == 1_866_976_883)  // from the 6.16.1 capture
        #expect(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)) == 0x414F_A339)
    }

    /// Bit-by-bit reference implementation, independent of the tables.
    static func bitwise(_ data: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in data {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return c ^ 0xFFFF_FFFF
    }

    @Test func matchesBitwiseReference() {
        var rng = SeededRNG(seed: 9)
        for length in Array(0..<40) + [255, 256, 1000, 4097] {
            let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(CRC32.checksum(data) == Self.bitwise(data), "length \(length)")
            #expect(CRC32.checksum(AnySequence(data)) == Self.bitwise(data), "non-contiguous, length \(length)")
        }
    }

    @Test func incremental() {
        var rng = SeededRNG(seed: 3)
        for _ in 0..<100 {
            let data = (0..<Int.random(in: 0...3000, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let whole = CRC32.checksum(data)
            var parts = CRC32()
            var i = 0
            while i < data.count {
                let n = min(data.count - i, Int.random(in: 1...200, using: &rng))
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: data[i..<(i + n)].withUnsafeBytes { parts.update($0) }
                case 1: parts.update(ByteBuffer(bytes: data[i..<(i + n)]))
                default: parts.update(bytes: data[i..<(i + n)])
                }
                i += n
            }
            #expect(parts.value == whole)
        }
    }

    @Test func base64RoundTrip() {
        var rng = SeededRNG(seed: 5)
        for length in 0..<64 {
            let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let text = FDFSBase64.encode(data)
            #expect(text.count == (length * 4 + 2) / 3)
            #expect(!text.contains("+") && !text.contains("/") && !text.contains("="))
            #expect(FDFSBase64.decode(Substring(text)) == data)
            #expect(FDFSBase64.decode(Substring(text + (length % 3 == 0 ? "" : "."))) == data, "'.' padding tolerated")
        }
        #expect(FDFSBase64.encode([0xFB, 0xFF]) == "-_8")
        #expect(FDFSBase64.decode("a") == nil, "impossible length")
        #expect(FDFSBase64.decode("ab+d") == nil)
        #expect(FDFSBase64.decode("ab/d") == nil)
        #expect(FDFSBase64.decode("") == [])
    }
}
