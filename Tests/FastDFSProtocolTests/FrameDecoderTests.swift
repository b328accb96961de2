// The streaming frame decoder: byte-at-a-time and random chunkings of every captured packet,
// truncated and oversized input.
import NIOCore
import Testing
@testable import FastDFSProtocol

@Suite("Frame decoder")
struct FrameDecoderTests {
    /// All captured packets (requests and responses) in one stream.
    static func allPackets() throws -> [[UInt8]] {
        try VectorStore.all().flatMap { v in [v.requestBytes] + (v.response_hex.isEmpty ? [] : [v.responseBytes]) }
    }

    /// Feeds `stream` cut at the given chunk sizes; returns the parts.
    static func run(_ stream: [UInt8], chunks: (Int) -> Int, decoder: FDFSFrameDecoder = FDFSFrameDecoder()) throws -> [FDFSFramePart] {
        let processor = NIOSingleStepByteToMessageProcessor(decoder)
        var parts: [FDFSFramePart] = []
        var i = 0
        while i < stream.count {
            let n = min(stream.count - i, max(1, chunks(stream.count - i)))
            try processor.process(buffer: ByteBuffer(bytes: stream[i..<(i + n)])) { parts.append($0) }
            i += n
        }
        try processor.finishProcessing(seenEOF: true) { parts.append($0) }
        return parts
    }

    /// Rebuilds packets from parts, checking the head/body/end grammar (one issue per violation
    /// kind, so big streams stay cheap to check).
    static func reassemble(_ parts: [FDFSFramePart]) -> [[UInt8]] {
        var packets: [[UInt8]] = []
        var current: [UInt8]?
        var expected: Int64 = 0
        var problems: Set<String> = []
        for part in parts {
            switch part {
            case .head(let header):
                if current != nil { problems.insert("head inside a frame") }
                var b = ByteBuffer()
                header.encode(into: &b)
                current = b.bytes
                expected = header.bodyLength
            case .body(let chunk):
                if current == nil { problems.insert("body outside a frame") }
                if chunk.readableBytes == 0 { problems.insert("empty body chunk") }
                current? += chunk.bytes
            case .end:
                if let c = current {
                    if Int64(c.count - 10) != expected { problems.insert("end before the body was complete") }
                    packets.append(c)
                } else {
                    problems.insert("end outside a frame")
                }
                current = nil
            }
        }
        if current != nil { problems.insert("unterminated frame") }
        for problem in problems.sorted() { Issue.record("frame grammar: \(problem)") }
        return packets
    }

    @Test func oneByteAtATime() throws {
        let packets = try Self.allPackets()
        let stream = packets.flatMap { $0 }
        let parts = try Self.run(stream, chunks: { _ in 1 })
        #expect(Self.reassemble(parts) == packets)
        // Streaming: with one byte per read, every body chunk is exactly one byte.
        #expect(parts.allSatisfy { if case .body(let chunk) = $0 { chunk.readableBytes == 1 } else { true } })
    }

    @Test func randomChunkings() throws {
        let packets = try Self.allPackets()
        let stream = packets.flatMap { $0 }
        var rng = SeededRNG(seed: 11)
        for round in 0..<70 {
            let maxChunk = [2, 7, 10, 11, 64, 1000, 100_000][round % 7]
            let parts = try Self.run(stream, chunks: { _ in Int.random(in: 1...maxChunk, using: &rng) })
            #expect(Self.reassemble(parts) == packets, "round \(round)")
        }
        // The whole stream at once.
        #expect(Self.reassemble(try Self.run(stream, chunks: { $0 })) == packets)
    }

    @Test func bodyIsNeverBufferedWhole() throws {
        // A 1 MiB download reply fed in 4 KiB reads comes out as 4 KiB chunks as they arrive.
        var decoder = FDFSFrameDecoder()
        var input = FDFSPacket.responseHeader(bodyLength: 1 << 20)
        #expect(try decoder.decode(buffer: &input) == .head(FDFSHeader(bodyLength: 1 << 20, command: 100)))
        var received = 0
        for _ in 0..<256 {
            var chunk = ByteBuffer(repeating: 0xAB, count: 4096)
            guard case .body(let body) = try decoder.decode(buffer: &chunk) else {
                Issue.record("expected a body chunk")
                return
            }
            #expect(body.readableBytes == 4096)
            received += body.readableBytes
            #expect(try decoder.decode(buffer: &chunk) == (received == 1 << 20 ? .end : nil))
        }
        #expect(received == 1 << 20)
    }

    @Test func bodyChunkStopsAtFrameEnd() throws {
        var decoder = FDFSFrameDecoder()
        var input = FDFSPacket.response(status: 0, body: ByteBuffer(bytes: [1, 2, 3]))
        input.writeImmutableBuffer(FDFSPacket.response(status: 2))
        #expect(try decoder.decode(buffer: &input) == .head(FDFSHeader(bodyLength: 3, command: 100)))
        #expect(try decoder.decode(buffer: &input) == .body(ByteBuffer(bytes: [1, 2, 3])))
        #expect(try decoder.decode(buffer: &input) == .end)
        #expect(try decoder.decode(buffer: &input) == .head(FDFSHeader(bodyLength: 0, command: 100, status: 2)))
        #expect(try decoder.decode(buffer: &input) == .end)
        #expect(try decoder.decode(buffer: &input) == nil)
    }

    /// ByteToMessageHandler never calls a decoder with an empty buffer, so the `.end` after the
    /// last body byte (or after a zero-length header) must come out of the same call.
    @Test func endComesWithTheLastBytesInOneCall() throws {
        for packet in try Self.allPackets() {
            var decoder = FDFSFrameDecoder()
            var buffer = ByteBuffer(bytes: packet)
            var parts: [FDFSFramePart] = []
            try decoder.drain(&buffer) { parts.append($0) }
            #expect(buffer.readableBytes == 0)
            #expect(parts.last == .end, "one call must deliver the whole frame including .end")
            #expect(Self.reassemble(parts) == [packet])
            // Byte by byte: the call that delivers the last byte also delivers .end.
            var byByte = FDFSFrameDecoder()
            var pending = ByteBuffer()
            for (i, byte) in packet.enumerated() {
                pending.writeInteger(byte)
                var got: [FDFSFramePart] = []
                try byByte.drain(&pending) { got.append($0) }
                if (got.last == .end) != (i == packet.count - 1) {
                    Issue.record("byte \(i) of \(packet.count): parts \(got)")
                }
            }
        }
    }

    @Test func truncatedStreamsThrowAtEOF() throws {
        let packet = try #require(try VectorStore.load(version: "6.16.1").first { $0.op == "storage_download_file" }).responseBytes
        for cut in 1..<packet.count {
            #expect(throws: FDFSProtocolError.self, "cut at \(cut)") {
                _ = try Self.run(Array(packet[..<cut]), chunks: { _ in 3 })
            }
        }
        #expect(try Self.run([], chunks: { _ in 1 }).isEmpty)
    }

    @Test func negativeAndOversizedLengths() throws {
        var negative = ByteBuffer()
        negative.writeInteger(Int64(-1))
        negative.writeBytes([100, 0])
        var decoder = FDFSFrameDecoder()
        #expect(throws: FDFSProtocolError.negativeBodyLength(-1)) { _ = try decoder.decode(buffer: &negative) }
        var min = ByteBuffer()
        FDFSHeader(bodyLength: .min, command: 100).encode(into: &min)
        #expect(throws: FDFSProtocolError.negativeBodyLength(.min)) { _ = try FDFSHeader.decode(from: &min) }

        // Int64.max is a legal header; the decoder just waits for bytes and never allocates for it.
        var huge = FDFSPacket.responseHeader(bodyLength: .max)
        huge.writeBytes([1, 2, 3])
        var plain = FDFSFrameDecoder()
        #expect(try plain.decode(buffer: &huge) == .head(FDFSHeader(bodyLength: .max, command: 100)))
        #expect(try plain.decode(buffer: &huge) == .body(ByteBuffer(bytes: [1, 2, 3])))
        #expect(try plain.decode(buffer: &huge) == nil)

        var limited = FDFSFrameDecoder(maxBodyLength: 256 * 1024)
        var big = FDFSPacket.responseHeader(bodyLength: 256 * 1024 + 1)
        #expect(throws: FDFSProtocolError.bodyTooLarge(command: "RESP", length: 256 * 1024 + 1, limit: 256 * 1024)) {
            _ = try limited.decode(buffer: &big)
        }
        // Short headers leave the reader index alone.
        var short = ByteBuffer(bytes: [0, 0, 0])
        #expect(try FDFSHeader.decode(from: &short) == nil)
        #expect(short.readableBytes == 3)
    }
}
