// Captured vectors of every storage command (11–38) in 6.16.1, 6.06 and 5.12.
import NIOCore
import Testing
@testable import FastDFSProtocol

@Suite("Vectors: storage commands (11–38)")
struct StorageVectorTests {
    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func uploadAndUploadAppender() throws {
        let records = try VectorStore.records(cmds: [11, 23])
        #expect(records.count == 6)
        for v in records {
            let content = Self.bytes(try #require(v.note("content")))
            let size = try #require(v.noteInt("size"))
            #expect(Int64(content.count) == size)
            let head = UploadRequestHead(storePathIndex: UInt8(try #require(v.noteInt("store_path_index"))),
                                         fileSize: size, ext: try #require(v.note("ext")), appender: v.cmd == 23)
            #expect(packet(head, content: content) == v.requestBytes, "\(v)")
            #expect(head.bodyLength == Int64(v.requestBytes.count - 10))

            // Server side: the head decodes from a partial buffer, content stays behind.
            let (header, reqBody) = try v.request()
            var partial = reqBody.getSlice(at: reqBody.readerIndex, length: 14)!
            #expect(try UploadRequestHead.decode(head: &partial, bodyLength: header.bodyLength,
                                                 command: FDFSCommand(rawValue: header.command)!) == nil)
            #expect(partial.readableBytes == 14, "reader index untouched")
            var full = reqBody
            #expect(try UploadRequestHead.decode(head: &full, bodyLength: header.bodyLength,
                                                 command: FDFSCommand(rawValue: header.command)!) == head)
            #expect(full.bytes == content)
            #expect(throws: FDFSProtocolError.self) {
                var copy = reqBody
                _ = try UploadRequestHead.decode(head: &copy, bodyLength: header.bodyLength + 1)
            }

            var body = try v.okBody()
            let original = body
            let response = try UploadResponse.decode(body: &body)
            #expect(response.fileID == v.resultFileID, "\(v)")
            #expect(encoded { response.encode(into: &$0) } == original.bytes)

            // The name decodes locally: source = the storage the op went to, CRC of the content.
            let info = try FileIDInfo.decode(filename: response.fileID.filename)
            let storageHost = String(v.server_addr.split(separator: ":")[0])
            #expect(info.source == .ipv4(storageHost), "\(v)")
            #expect(info.crc32 == CRC32.checksum(content), "\(v)")
            #expect(info.storePathIndex == 0)
            #expect(response.fileID.filename.hasSuffix(".txt"))
            #expect(response.fileID.filename.utf8.count == 44)
            if v.cmd == 11 {
                #expect(info.kind == .normal)
                #expect(info.size == size)
                #expect(info.sizeField < 0, "random high word marker bit 63")
            } else {
                #expect(info.kind == .appender)
                #expect(info.size == nil)
                #expect(info.sizeField & 0xFFFF_FFFF == 0)
                // All three captured versions (5.12, 6.06, 6.16.1) put a random high word OR 2^58
                // here (the reference's "≤ 6.11: exactly 2^58" does not hold for these builds).
                #expect(info.sizeField < 0 && info.sizeField & (1 << 58) != 0, "\(v): random high word | 2^58")
            }
        }
    }

    @Test func uploadSlave() throws {
        let records = try VectorStore.records(cmds: [21])
        #expect(records.count == 3)
        for v in records {
            let content = Self.bytes(try #require(v.note("content")))
            let master = try #require(v.note("master"))
            let head = UploadSlaveRequestHead(masterFilename: master, fileSize: try #require(v.noteInt("size")),
                                              prefix: try #require(v.note("prefix")), ext: try #require(v.note("ext")))
            #expect(packet(head, content: content) == v.requestBytes, "\(v)")
            let (header, reqBody) = try v.request()
            var partial = reqBody.getSlice(at: reqBody.readerIndex, length: 40)!
            #expect(try UploadSlaveRequestHead.decode(head: &partial, bodyLength: header.bodyLength) == nil)
            var full = reqBody
            #expect(try UploadSlaveRequestHead.decode(head: &full, bodyLength: header.bodyLength) == head)
            #expect(full.bytes == content)
            var viaBody = reqBody
            #expect(try UploadSlaveRequestHead.decode(body: &viaBody) == head)

            var body = try v.okBody()
            let original = body
            let response = try UploadResponse.decode(body: &body)
            #expect(response.fileID == v.resultFileID, "\(v)")
            #expect(encoded { response.encode(into: &$0) } == original.bytes)
            // The server's name is what the generation helper predicts.
            #expect(try FDFSFilename.slaveFilename(master: master, prefix: head.prefix, ext: head.ext)
                    == response.fileID.filename)
            let info = try FileIDInfo.decode(filename: response.fileID.filename)
            #expect(info.kind == .slave)
            #expect(info.size == nil)
            let masterInfo = try FileIDInfo.decode(filename: master)
            #expect(info.crc32 == masterInfo.crc32, "slave names reuse the master's 20 bytes")
        }
    }

    @Test func appendModifyTruncate() throws {
        let records = try VectorStore.records(cmds: [24, 34, 36])
        #expect(records.count == 24)
        for v in records {
            let (header, reqBody) = try v.request()
            // Server direction for every record: decode the head, re-encode it, compare.
            switch v.cmd {
            case 24:
                var copy = reqBody
                let head = try #require(try AppendRequestHead.decode(head: &copy, bodyLength: header.bodyLength))
                #expect(packet(head, content: copy.bytes) == v.requestBytes)
                #expect(Int64(copy.readableBytes) == head.length)
                let fileID = try #require(v.fileID)
                #expect(head.filename == fileID.filename)
                if let data = v.capture(#"append '([^']*)'"#) {
                    // Deterministic from the notes: build the request from scratch.
                    let request = AppendRequestHead(filename: fileID.filename, length: Int64(data.utf8.count))
                    #expect(packet(request, content: Self.bytes(data)) == v.requestBytes, "\(v)")
                }
            case 34:
                var copy = reqBody
                let head = try #require(try ModifyRequestHead.decode(head: &copy, bodyLength: header.bodyLength))
                let data = try #require(v.note("data"))
                let request = ModifyRequestHead(filename: try #require(v.fileID).filename,
                                                offset: try #require(v.noteInt("offset")), length: Int64(data.utf8.count))
                #expect(head == request)
                #expect(packet(request, content: Self.bytes(data)) == v.requestBytes, "\(v)")
            default:
                let newSize = try #require(v.capture(#"truncate to (\d+)"#).flatMap { Int64($0) })
                let request = TruncateRequest(filename: try #require(v.fileID).filename, newSize: newSize)
                #expect(packet(request) == v.requestBytes, "\(v)")
                var copy = reqBody
                #expect(try TruncateRequest.decode(body: &copy) == request)
            }
            if v.status != 0 {
                try VectorStore.expectError(v)
            } else {
                var body = try v.okBody()
                _ = try EmptyResponse.decode(body: &body)
            }
        }
    }

    @Test func download() throws {
        let records = try VectorStore.records(cmds: [14])
        #expect(records.count == 27)
        for v in records {
            let fileID = try #require(v.fileID)
            let request = DownloadRequest(fileID: fileID, offset: v.noteInt("offset") ?? 0, length: v.noteInt("bytes") ?? 0)
            #expect(packet(request) == v.requestBytes, "\(v)")
            var (_, reqBody) = try v.request()
            #expect(try DownloadRequest.decode(body: &reqBody) == request)
            if v.status != 0 {
                try VectorStore.expectError(v)
                continue
            }
            let body = try v.okBody()
            if let count = v.capture(#"-> (\d+) bytes"#).flatMap({ Int($0) }) {
                #expect(body.readableBytes == count, "\(v)")
            }
            if let text = v.capture(#"bytes '([^']*)'"#) {
                #expect(body.bytes == Self.bytes(text), "\(v)")
            }
            if v.notes.contains("zero-filled") {
                // '01xy4567' + 'QQ' from the modify at EOF, then zeros up to 16 bytes.
                #expect(body.bytes == Self.bytes("01xy4567QQ") + [UInt8](repeating: 0, count: 6), "\(v)")
            }
            // The response header for a streamed body is what the server would send.
            #expect(FDFSPacket.responseHeader(bodyLength: Int64(body.readableBytes)).bytes + body.bytes == v.responseBytes)
        }
    }

    @Test func metadata() throws {
        for version in VectorStore.versions {
            let records = try VectorStore.load(version: version).filter { [13, 15].contains($0.cmd) }
            #expect(records.count == 4)
            var stored = FDFSMetadata()  // what the storage should hold, tracked from the set requests
            for v in records {
                let fileID = try #require(v.fileID)
                if v.cmd == 13 {
                    let mode: MetadataMode = v.note("flag") == "O" ? .overwrite : .merge
                    let list = try #require(v.capture(#"flag=[OM] (\S+);"#))
                    var metadata = FDFSMetadata()
                    for pair in list.split(separator: ",") {
                        let kv = pair.split(separator: "=", maxSplits: 1)
                        metadata.entries.append((key: String(kv[0]), value: String(kv[1])))
                    }
                    let request = SetMetadataRequest(fileID: fileID, mode: mode, metadata: metadata)
                    #expect(packet(request) == v.requestBytes, "\(v)")
                    var (_, reqBody) = try v.request()
                    let decoded = try SetMetadataRequest.decode(body: &reqBody)
                    #expect(decoded == request)
                    #expect(decoded.metadata.entries.map(\.key) == metadata.entries.map(\.key), "wire order kept")
                    stored = mode == .overwrite ? FDFSMetadata(entries: metadata.sortedEntries()) : stored.merging(metadata)
                    var body = try v.okBody()
                    _ = try EmptyResponse.decode(body: &body)
                } else {
                    let request = GetMetadataRequest(fileID: fileID)
                    #expect(packet(request) == v.requestBytes, "\(v)")
                    var (_, reqBody) = try v.request()
                    #expect(try GetMetadataRequest.decode(body: &reqBody) == request)
                    var body = try v.okBody()
                    let original = body
                    let response = try GetMetadataResponse.decode(body: &body)
                    let count = try #require(v.capture(#"-> (\d+) item"#).flatMap { Int($0) })
                    #expect(response.metadata.count == count, "\(v)")
                    // The server's merge result equals FDFSMetadata.merging, in sorted order.
                    #expect(response.metadata == stored, "\(v)")
                    #expect(response.metadata.entries.map(\.key) == stored.entries.map(\.key))
                    #expect(stored.packed() == original.bytes, "\(v)")
                    #expect(encoded { response.encode(into: &$0) } == original.bytes)
                }
            }
        }
    }

    @Test func queryFileInfo() throws {
        for version in VectorStore.versions {
            let all = try VectorStore.load(version: version)
            let records = all.filter { $0.cmd == 22 }
            #expect(records.count == 3)
            for v in records {
                let fileID = try #require(v.fileID)
                let silent = v.notes.contains("keep-silence") || v.notes.contains("bSilence=true")
                let request = QueryFileInfoRequest(fileID: fileID, flags: silent ? .keepSilent : [])
                #expect(packet(request) == v.requestBytes, "\(v)")
                var (header, reqBody) = try v.request()
                #expect(try QueryFileInfoRequest.decode(body: &reqBody, headerStatus: header.status) == request)
                if v.status != 0 {
                    try VectorStore.expectError(v)
                    continue
                }
                var body = try v.okBody()
                let original = body
                let info = try QueryFileInfoResponse.decode(body: &body)
                #expect(info.ipFieldWidth == 16)
                #expect(info.size == v.noteInt("size"), "\(v)")
                #expect(Int64(info.crc32) == v.noteInt("crc32"), "\(v)")
                if let ts = v.noteInt("create_ts") { #expect(info.modifyTime == ts) }
                if let ip = v.note("src_ip") { #expect(info.sourceIP == ip) }
                #expect(encoded { info.encode(into: &$0) } == original.bytes, "\(v): crc32 sign extension")

                let nameInfo = try FileIDInfo.decode(filename: fileID.filename)
                if nameInfo.kind == .normal {
                    // For a normal file everything the storage reports is in the name too.
                    #expect(nameInfo.size == info.size)
                    #expect(nameInfo.crc32 == info.crc32)
                    #expect(nameInfo.createTime == info.modifyTime)
                    #expect(nameInfo.source == .ipv4(info.sourceIP))
                } else {
                    #expect(nameInfo.kind == .appender)
                    let content = Self.bytes("01xy4567")
                    if version == "5.12" {
                        #expect(info.crc32 == nameInfo.crc32, "5.12 takes the CRC from the name")
                    } else {
                        #expect(info.crc32 == CRC32.checksum(content), "6.02+ computes the appender CRC")
                    }
                }
            }
        }
    }

    @Test func regenerateAndDelete() throws {
        let records = try VectorStore.records(cmds: [38, 12])
        #expect(records.count == 15)
        for v in records {
            if v.cmd == 38 {
                let filename = try #require(v.fileID?.filename ?? v.capture(#"filename (M\S+)"#))
                let request = RegenerateAppenderRequest(filename: filename)
                #expect(packet(request) == v.requestBytes, "\(v)")
                var (_, reqBody) = try v.request()
                #expect(try RegenerateAppenderRequest.decode(body: &reqBody) == request)
                if v.status != 0 {
                    try VectorStore.expectError(v)  // 5.12 has no command 38
                    continue
                }
                var body = try v.okBody()
                let original = body
                let response = try UploadResponse.decode(body: &body)
                #expect(response.fileID == v.resultFileID, "\(v)")
                #expect(encoded { response.encode(into: &$0) } == original.bytes)
                let info = try FileIDInfo.decode(filename: response.fileID.filename)
                #expect(info.kind == .normal, "regenerated names are normal files")
                #expect(info.size == 8)
                #expect(info.crc32 == CRC32.checksum(Self.bytes("01xy4567")))
                #expect(response.fileID.filename.suffix(7) == filename.suffix(7), "same EXT7")
                #expect(response.fileID.filename.prefix(10) == filename.prefix(10), "same path")
            } else {
                let request = DeleteRequest(fileID: try #require(v.fileID))
                #expect(packet(request) == v.requestBytes, "\(v)")
                var (_, reqBody) = try v.request()
                #expect(try DeleteRequest.decode(body: &reqBody) == request)
                if v.status != 0 {
                    try VectorStore.expectError(v)
                } else {
                    var body = try v.okBody()
                    _ = try EmptyResponse.decode(body: &body)
                }
            }
        }
    }
}

@Suite("Vectors: coverage")
struct VectorCoverageTests {
    /// Every record of every file belongs to a command family tested above, so nothing is skipped.
    @Test func everyRecordIsCovered() throws {
        let covered: Set<Int> = [101, 104, 106, 107, 102, 103, 105, 90, 91, 92, 95, 98, 111, 82,
                                 11, 23, 21, 24, 34, 36, 14, 13, 15, 22, 38, 12]
        let all = try VectorStore.all()
        #expect(all.count == 156)
        for v in all {
            #expect(covered.contains(v.cmd), "\(v): command \(v.cmd) not covered")
            // Every request's header is well-formed, and its status byte is 0 except QUERY_FILE_INFO.
            let (header, _) = try v.request()
            #expect(Int(header.command) == v.cmd)
            if v.cmd != 22 { #expect(header.status == 0) }
            if let (responseHeader, _) = try v.response() {
                #expect(responseHeader.command == 100)
                #expect(Int(responseHeader.status) == v.status)
            } else {
                #expect(v.cmd == 82)
            }
        }
    }
}
