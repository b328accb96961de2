// Robustness: random and mutated bytes into every decoder (seeded, thousands of iterations).
// Decoders may only return a value or throw FDFSProtocolError — never trap (integer overflow,
// negative or huge lengths, Int conversions) — and whole-body decoders consume the whole body.
import NIOCore
import Testing
@testable import FastDFSProtocol

@Suite("Fuzz: decoders never trap")
struct FuzzTests {
    typealias Decode = @Sendable (inout ByteBuffer) throws -> Void

    /// Decoders that must consume the whole body on success.
    static let wholeBody: [(String, Decode)] = [
        ("QueryStoreRequest", { _ = try QueryStoreRequest.decode(body: &$0) }),
        ("QueryStoreRequest/104", { _ = try QueryStoreRequest.decode(body: &$0, command: .trackerQueryStoreWithGroupOne) }),
        ("QueryStoreResponse", { _ = try QueryStoreResponse.decode(body: &$0) }),
        ("QueryStoreAllRequest", { _ = try QueryStoreAllRequest.decode(body: &$0) }),
        ("QueryStoreAllResponse", { _ = try QueryStoreAllResponse.decode(body: &$0) }),
        ("QueryStoreAllResponse/45", { _ = try QueryStoreAllResponse.decode(body: &$0, ipWidthHint: 45) }),
        ("QueryFetchRequest", { _ = try QueryFetchRequest.decode(body: &$0) }),
        ("QueryFetchResponse", { _ = try QueryFetchResponse.decode(body: &$0) }),
        ("QueryFetchAllResponse", { _ = try QueryFetchAllResponse.decode(body: &$0) }),
        ("QueryFetchAllResponse/15", { _ = try QueryFetchAllResponse.decode(body: &$0, ipWidthHint: 15) }),
        ("QueryFetchAllResponse/-7", { _ = try QueryFetchAllResponse.decode(body: &$0, ipWidthHint: -7) }),
        ("ListGroupsRequest", { _ = try ListGroupsRequest.decode(body: &$0) }),
        ("ListOneGroupRequest", { _ = try ListOneGroupRequest.decode(body: &$0) }),
        ("ListStorageRequest", { _ = try ListStorageRequest.decode(body: &$0) }),
        ("GroupStat", { _ = try GroupStat.decode(body: &$0) }),
        ("GroupStat.list", { _ = try GroupStat.decodeList(body: &$0) }),
        ("StorageStat", { _ = try StorageStat.decode(body: &$0) }),
        ("StorageStat.list", { _ = try StorageStat.decodeList(body: &$0) }),
        ("ActiveTestRequest", { _ = try ActiveTestRequest.decode(body: &$0) }),
        ("QuitRequest", { _ = try QuitRequest.decode(body: &$0) }),
        ("EmptyResponse", { _ = try EmptyResponse.decode(body: &$0) }),
        ("GetLeaderRequest", { _ = try GetLeaderRequest.decode(body: &$0) }),
        ("GetLeaderResponse", { _ = try GetLeaderResponse.decode(body: &$0) }),
        ("VolumeStatRequest", { _ = try VolumeStatRequest.decode(body: &$0) }),
        ("VolumeStatResponse", { _ = try VolumeStatResponse.decode(body: &$0) }),
        ("ParameterRequest", { _ = try ParameterRequest.decode(body: &$0) }),
        ("ParameterResponse", { _ = try ParameterResponse.decode(body: &$0) }),
        ("FetchStorageIDsRequest", { _ = try FetchStorageIDsRequest.decode(body: &$0) }),
        ("FetchStorageIDsResponse", { _ = try FetchStorageIDsResponse.decode(body: &$0) }),
        ("UploadResponse", { _ = try UploadResponse.decode(body: &$0) }),
        ("DeleteRequest", { _ = try DeleteRequest.decode(body: &$0) }),
        ("GetMetadataRequest", { _ = try GetMetadataRequest.decode(body: &$0) }),
        ("QueryFileInfoRequest", { _ = try QueryFileInfoRequest.decode(body: &$0, headerStatus: 3) }),
        ("SetMetadataRequest", { _ = try SetMetadataRequest.decode(body: &$0) }),
        ("GetMetadataResponse", { _ = try GetMetadataResponse.decode(body: &$0) }),
        ("DownloadRequest", { _ = try DownloadRequest.decode(body: &$0) }),
        ("QueryFileInfoResponse", { _ = try QueryFileInfoResponse.decode(body: &$0) }),
        ("TruncateRequest", { _ = try TruncateRequest.decode(body: &$0) }),
        ("RegenerateAppenderRequest", { _ = try RegenerateAppenderRequest.decode(body: &$0) }),
    ]

    /// Head decoders that leave the streamed content behind.
    static let heads: [(String, Decode)] = [
        ("UploadRequestHead", { _ = try UploadRequestHead.decode(body: &$0) }),
        ("UploadRequestHead/23", { _ = try UploadRequestHead.decode(body: &$0, command: .storageUploadAppenderFile) }),
        ("UploadSlaveRequestHead", { _ = try UploadSlaveRequestHead.decode(body: &$0) }),
        ("AppendRequestHead", { _ = try AppendRequestHead.decode(body: &$0) }),
        ("ModifyRequestHead", { _ = try ModifyRequestHead.decode(body: &$0) }),
    ]

    /// Server-side streaming head decoders: (buffer, declared body length) → value or nil.
    typealias StreamDecode = @Sendable (inout ByteBuffer, Int64) throws -> Bool
    static let streamHeads: [(String, StreamDecode)] = [
        ("UploadRequestHead", { try UploadRequestHead.decode(head: &$0, bodyLength: $1) != nil }),
        ("UploadSlaveRequestHead", { try UploadSlaveRequestHead.decode(head: &$0, bodyLength: $1) != nil }),
        ("AppendRequestHead", { try AppendRequestHead.decode(head: &$0, bodyLength: $1) != nil }),
        ("ModifyRequestHead", { try ModifyRequestHead.decode(head: &$0, bodyLength: $1) != nil }),
    ]

    static let interestingLengths = [0, 1, 4, 5, 8, 10, 15, 16, 17, 24, 33, 37, 38, 39, 40, 44, 54, 60, 62, 63, 64,
                                     69, 70, 105, 113, 143, 487, 509, 517, 600, 612, 642, 644, 974, 1224]

    static let extremes: [Int64] = [.max, .min, -1, 0, 1, 15, 16, 37, 38, 127, 128, Int64(Int32.max), 1 << 32, .max - 10]

    static func randomBytes(_ rng: inout SeededRNG, length: Int) -> [UInt8] {
        (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    /// Random bytes, sometimes with plausible text and extreme int64 fields mixed in.
    static func randomBody(_ rng: inout SeededRNG) -> [UInt8] {
        let length = Bool.random(using: &rng)
            ? interestingLengths.randomElement(using: &rng)!
            : Int.random(in: 0...300, using: &rng)
        var bytes = randomBytes(&rng, length: length)
        if length >= 8, Bool.random(using: &rng) {
            // Put an extreme value in a random 8-byte slot (length fields, sizes, ports).
            let at = Int.random(in: 0...(length - 8), using: &rng)
            withUnsafeBytes(of: extremes.randomElement(using: &rng)!.bigEndian) { bytes.replaceSubrange(at..<(at + 8), with: $0) }
        }
        if length >= 16, Bool.random(using: &rng) {
            let text = Array("group1\0\0\0\0\0\0\0\0\0\0127.0.0.1".utf8)
            let at = Int.random(in: 0...(length - 1), using: &rng)
            for (i, b) in text.enumerated() where at + i < length { bytes[at + i] = b }
        }
        return bytes
    }

    /// Every captured body, then mutated: bytes flipped, 8-byte fields set to extremes,
    /// truncated or extended.
    static func mutatedVectorBody(_ bodies: [[UInt8]], _ rng: inout SeededRNG) -> [UInt8] {
        var bytes = bodies.randomElement(using: &rng)!
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            switch Int.random(in: 0..<5, using: &rng) {
            case 0 where !bytes.isEmpty:
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
            case 1 where bytes.count >= 8:
                let at = Int.random(in: 0...(bytes.count - 8), using: &rng)
                withUnsafeBytes(of: extremes.randomElement(using: &rng)!.bigEndian) { bytes.replaceSubrange(at..<(at + 8), with: $0) }
            case 2 where !bytes.isEmpty:
                bytes.removeLast(Int.random(in: 1...bytes.count, using: &rng))
            case 3:
                bytes += randomBytes(&rng, length: Int.random(in: 1...40, using: &rng))
            default:
                if bytes.count >= 8 {
                    // Aligned 8-byte fields (lengths sit at 0 and 8 in most heads).
                    let slot = Int.random(in: 0..<(bytes.count / 8), using: &rng) * 8
                    withUnsafeBytes(of: extremes.randomElement(using: &rng)!.bigEndian) { bytes.replaceSubrange(slot..<(slot + 8), with: $0) }
                }
            }
        }
        return bytes
    }

    static func vectorBodies() throws -> [[UInt8]] {
        try VectorStore.all().flatMap { v -> [[UInt8]] in
            let request = Array(v.requestBytes.dropFirst(10))
            let response = v.response_hex.isEmpty ? [] : Array(v.responseBytes.dropFirst(10))
            return [request, response]
        }
    }

    static func exercise(_ bytes: [UInt8], _ rng: inout SeededRNG) {
        for (name, decode) in wholeBody {
            var buffer = ByteBuffer(bytes: bytes)
            do {
                try decode(&buffer)
                if buffer.readableBytes != 0 {
                    Issue.record("\(name) left \(buffer.readableBytes) bytes of \(bytes.count)")
                }
            } catch {
                if !(error is FDFSProtocolError) { Issue.record("\(name): unexpected error \(error)") }
            }
        }
        for (name, decode) in heads {
            var buffer = ByteBuffer(bytes: bytes)
            do { try decode(&buffer) } catch where !(error is FDFSProtocolError) { Issue.record("\(name): \(error)") } catch {}
        }
        for (name, decode) in streamHeads {
            var buffer = ByteBuffer(bytes: bytes)
            let declared: Int64 = Bool.random(using: &rng)
                ? extremes.randomElement(using: &rng)!
                : Int64(bytes.count + Int.random(in: -5...50, using: &rng))
            do {
                if try !decode(&buffer, declared), buffer.readableBytes != bytes.count {
                    Issue.record("\(name): nil must leave the reader index alone")
                }
            } catch {
                if !(error is FDFSProtocolError) { Issue.record("\(name): unexpected error \(error)") }
                if buffer.readableBytes != bytes.count { Issue.record("\(name): a throw must leave the reader index alone") }
            }
        }
        var header = ByteBuffer(bytes: bytes)
        _ = try? FDFSHeader.decode(from: &header)
        let text = String(decoding: bytes, as: UTF8.self)
        _ = try? FileIDInfo.decode(filename: text)
        _ = try? FileIDInfo.validate(filename: text)
        _ = try? FileID.parse(text)
        _ = FDFSBase64.decode(Substring(text))
        _ = FDFSMetadata.unpack(bytes).packed()
    }

    @Test func randomBytesIntoEveryDecoder() {
        var rng = SeededRNG(seed: 0xF00D)
        for _ in 0..<2000 {
            Self.exercise(Self.randomBody(&rng), &rng)
        }
    }

    @Test func mutatedVectorsIntoEveryDecoder() throws {
        let bodies = try Self.vectorBodies()
        var rng = SeededRNG(seed: 0xBEEF)
        for body in bodies { Self.exercise(body, &rng) }
        for _ in 0..<3000 {
            Self.exercise(Self.mutatedVectorBody(bodies, &rng), &rng)
        }
    }

    /// File-id-shaped strings with random characters in random places.
    @Test func mutatedFileIDs() {
        var rng = SeededRNG(seed: 99)
        let base = Array("M00/00/00/wKgBaGVT8QCAEjRWAAAACcv0OSY123.txt".utf8)
        let alphabet = Array("M0123456789ABCDEFabcdef/-_.+=:é\u{0}".utf8)
        for _ in 0..<5000 {
            var bytes = base
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[Int.random(in: 0..<bytes.count, using: &rng)] = alphabet.randomElement(using: &rng)!
                case 1: bytes.insert(alphabet.randomElement(using: &rng)!, at: Int.random(in: 0...bytes.count, using: &rng))
                default: if bytes.count > 1 { bytes.remove(at: Int.random(in: 0..<bytes.count, using: &rng)) }
                }
            }
            let name = String(decoding: bytes, as: UTF8.self)
            do {
                let info = try FileIDInfo.decode(filename: name)
                if name.utf8.count < 44 || !(0...255).contains(info.storePathIndex) || (info.size ?? 0) < 0 {
                    Issue.record("\(name) decoded to \(info)")
                }
            } catch {
                guard case .invalidFileID = error else {
                    Issue.record("unexpected error \(error)")
                    continue
                }
            }
        }
    }

    /// Random byte streams into the frame decoder in random chunks: parts or FDFSProtocolError only.
    @Test func randomStreamsIntoFrameDecoder() {
        var rng = SeededRNG(seed: 1234)
        for _ in 0..<2000 {
            var stream = Self.randomBytes(&rng, length: Int.random(in: 0...200, using: &rng))
            if Bool.random(using: &rng) {
                // A plausible header with a small length so frames actually complete.
                var header = ByteBuffer()
                FDFSHeader(bodyLength: Int64.random(in: 0...50, using: &rng), command: 100).encode(into: &header)
                stream = header.bytes + stream
            }
            let processor = NIOSingleStepByteToMessageProcessor(FDFSFrameDecoder())
            var i = 0
            do {
                while i < stream.count {
                    let n = min(stream.count - i, Int.random(in: 1...16, using: &rng))
                    try processor.process(buffer: ByteBuffer(bytes: stream[i..<(i + n)])) { _ in }
                    i += n
                }
                try processor.finishProcessing(seenEOF: true) { _ in }
            } catch where !(error is FDFSProtocolError) {
                Issue.record("unexpected error type \(error)")
            } catch {}
        }
    }

    /// Streaming heads fed one byte more each time: nil until complete, then the value, never a trap.
    @Test func headsAcrossPartialBuffers() throws {
        let records = try VectorStore.all().filter { [11, 21, 23, 24, 34].contains($0.cmd) }
        for v in records {
            let (header, body) = try v.request()
            for cut in 0...body.readableBytes {
                var partial = body.getSlice(at: body.readerIndex, length: cut)!
                let result: Bool
                switch v.cmd {
                case 11, 23: result = try UploadRequestHead.decode(head: &partial, bodyLength: header.bodyLength) != nil
                case 21: result = try UploadSlaveRequestHead.decode(head: &partial, bodyLength: header.bodyLength) != nil
                case 24: result = try AppendRequestHead.decode(head: &partial, bodyLength: header.bodyLength) != nil
                default: result = try ModifyRequestHead.decode(head: &partial, bodyLength: header.bodyLength) != nil
                }
                if !result { #expect(partial.readableBytes == cut, "\(v) cut \(cut)") }
            }
            // Inconsistent declared lengths throw.
            for delta: Int64 in [-1, 1, 1000] {
                var copy = body
                #expect(throws: FDFSProtocolError.self, "\(v) delta \(delta)") {
                    switch v.cmd {
                    case 11, 23: _ = try UploadRequestHead.decode(head: &copy, bodyLength: header.bodyLength + delta)
                    case 21: _ = try UploadSlaveRequestHead.decode(head: &copy, bodyLength: header.bodyLength + delta)
                    case 24: _ = try AppendRequestHead.decode(head: &copy, bodyLength: header.bodyLength + delta)
                    default: _ = try ModifyRequestHead.decode(head: &copy, bodyLength: header.bodyLength + delta)
                    }
                }
            }
        }
    }
}

@Suite("Fuzz: encoders and generators never trap")
struct EncoderFuzzTests {
    static let pieces = ["", "a", "é", "日本", "🦄", "\u{0}", "/", ".", "M00/00/00/", "group1", "-_",
                         String(repeating: "x", count: 40), "\u{1}", "\u{2}"]

    static func randomString(_ rng: inout SeededRNG) -> String {
        (0..<Int.random(in: 0...6, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
    }

    @Test func randomArguments() throws {
        var rng = SeededRNG(seed: 77)
        for _ in 0..<2000 {
            let s1 = Self.randomString(&rng), s2 = Self.randomString(&rng), s3 = Self.randomString(&rng)
            let n = [Int64.min, -1, 0, 1, 1 << 32, .max].randomElement(using: &rng)!
            let ext7 = FDFSFilename.formatExt(s1, randomDigits: &rng)
            #expect(ext7.utf8.count <= 7)
            _ = FDFSFilename.make(storePathIndex: Int(truncatingIfNeeded: n), sub1: -1, sub2: 300, base27: s2, ext7: ext7)
            _ = try? FDFSFilename.slaveFilename(master: s1 + s2, prefix: s2, ext: s3)
            _ = FDFSFilename.makeSizeField(size: n, appender: Bool.random(using: &rng), randomHigh: .random(in: 0...UInt32.max, using: &rng))
            _ = FDFSFilename.sourceField(ipv4: s1)
            _ = FDFSFilename.isValidExt(s1) || FDFSFilename.isValidPrefix(s2)
            let id = FileID(group: s1, filename: s2)
            let metadata = FDFSMetadata(entries: [(key: s1, value: s2), (key: s3, value: s1)])
            let requests: [any FDFSRequest] = [
                QueryStoreRequest(group: s1), QueryStoreAllRequest(group: s2), QueryFetchRequest(kind: .fetchAll, fileID: id),
                ListOneGroupRequest(group: s1), ListStorageRequest(group: s1, storageID: s2),
                UploadRequestHead(storePathIndex: 0xFF, fileSize: n, ext: s1, appender: true),
                UploadSlaveRequestHead(masterFilename: s1, fileSize: n, prefix: s2, ext: s3),
                DeleteRequest(fileID: id), GetMetadataRequest(fileID: id), QueryFileInfoRequest(fileID: id, flags: [.noCRC32]),
                SetMetadataRequest(fileID: id, mode: .merge, metadata: metadata),
                DownloadRequest(fileID: id, offset: n, length: n), AppendRequestHead(filename: s1, length: n),
                ModifyRequestHead(filename: s1, offset: n, length: n), TruncateRequest(filename: s2, newSize: n),
                RegenerateAppenderRequest(filename: s3), VolumeStatRequest(filter: 7), FetchStorageIDsRequest(startIndex: -1),
            ]
            for request in requests {
                let packet = FDFSPacket.encode(request)
                #expect(packet.readableBytes >= 10)
            }
            var b = ByteBuffer()
            QueryStoreResponse(group: s1, server: StorageAddress(host: s2, port: -5), storePathIndex: 1).encode(into: &b, ipWidth: 999)
            QueryFetchAllResponse(group: s1, servers: [StorageAddress(host: s3, port: 1)]).encode(into: &b, ipWidth: -1, layout: .sharedPort)
            QueryFileInfoResponse(size: n, modifyTime: n, crc32: 1, sourceIP: s1).encode(into: &b, ipFieldWidth: 0)
            GroupStat(name: s1, layout: .v105).encode(into: &b)
            StorageStat(id: s1, ipAddress: s2, version: s3, counters: [1, 2]).encode(into: &b, layout: .v600)
            VolumeStatResponse(useTrunk: true, groups: []).encode(into: &b)
            _ = metadata.packed() + metadata.merging(metadata).packed(sorted: false) + metadata.truncatedToLimits().packed()
            _ = id.description + (FileID(id.description)?.description ?? "")
        }
    }
}
