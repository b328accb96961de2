import NIOCore
import Testing
@testable import FastDFSProtocol

@Suite("Header")
struct HeaderTests {
    @Test func roundTrip() throws {
        var buffer = ByteBuffer()
        FDFSHeader(bodyLength: 40, command: .trackerQueryStoreWithoutGroupOne).encode(into: &buffer)
        #expect(buffer.readableBytes == 10)
        let header = try FDFSHeader.decode(from: &buffer)
        #expect(header == FDFSHeader(bodyLength: 40, command: 101))
    }
}

@Suite("Basics")
struct BasicsTests {
    @Test func commandNamesAndCodes() {
        #expect(FDFSCommand.allCases.count == 29)
        #expect(Set(FDFSCommand.allCases.map(\.name)).count == 29)
        #expect(FDFSCommand.storageUploadFile.name == "UPLOAD_FILE")
        #expect(FDFSCommand.trackerQueryStoreWithoutGroupOne.name == "QUERY_STORE_WITHOUT_GROUP_ONE")
        #expect(FDFSCommand(rawValue: 38) == .storageRegenerateAppenderFilename)
    }

    @Test func errnoNames() {
        #expect(FDFSErrno.enoent.description == "ENOENT (No such file or directory)")
        #expect(FDFSErrno.einval.name == "EINVAL" && FDFSErrno.einval.rawValue == 22)
        // Linux numbering above 34 (Darwin differs).
        #expect(FDFSErrno.eagain.rawValue == 11 && FDFSErrno.eopnotsupp.rawValue == 95)
        #expect(FDFSErrno.enametoolong.rawValue == 36 && FDFSErrno.ealready.rawValue == 114)
        #expect(FDFSErrno.etimedout.rawValue == 110 && FDFSErrno.econnrefused.rawValue == 111)
        #expect(FDFSErrno.econnreset.rawValue == 104)
        #expect(FDFSErrno(rawValue: 77).name == "errno 77")
    }

    @Test func headerHelpers() throws {
        let ok = FDFSHeader(bodyLength: 0, command: .response)
        try ok.checkIsResponse()
        #expect(ok.errno == nil)
        #expect(FDFSHeader(bodyLength: 0, command: .response, status: 2).errno == .enoent)
        #expect(throws: FDFSProtocolError.unexpectedResponseCommand(11)) {
            try FDFSHeader(bodyLength: 0, command: .storageUploadFile).checkIsResponse()
        }
        #expect(StorageAddress(host: "::1", port: 23000).description == "[::1]:23000")
    }

    @Test func packetBuilder() {
        // Head requests: the header counts the content that follows.
        let upload = FDFSPacket.encode(UploadRequestHead(storePathIndex: 0xFF, fileSize: 1000, ext: "bin"))
        #expect(upload.readableBytes == 25)
        #expect(upload.getInteger(at: 0, as: Int64.self) == 1015)
        #expect(upload.getInteger(at: 10, as: UInt8.self) == 0xFF)
        // QUERY_FILE_INFO flags go in the status byte; an explicit status wins.
        let id = FileID(group: "g", filename: "M00/00/00/x")
        #expect(FDFSPacket.encode(QueryFileInfoRequest(fileID: id, flags: [.noCRC32, .keepSilent])).getInteger(at: 9, as: UInt8.self) == 3)
        #expect(FDFSPacket.encode(ActiveTestRequest(), status: 5).getInteger(at: 9, as: UInt8.self) == 5)
        // Group names are NUL-padded and cut to 16 bytes.
        var b = ByteBuffer()
        b.writeFDFSFixedString("12345678901234567890", width: 16)
        #expect(b.readableBytes == 16)
        #expect(b.readFDFSFixedString(width: 16) == "1234567890123456")
        #expect(b.readFDFSFixedString(width: 1) == nil)
        b.writeFDFSInt64(-2)
        #expect(b.readFDFSInt64() == -2)
        #expect(b.readFDFSInt64() == nil)
        #expect(FDFSPacket.response(encoding: { $0.writeString("ab") }).readableBytes == 12)
    }

    @Test func adminMessagesRoundTrip() throws {
        var b = ByteBuffer()
        FetchStorageIDsRequest(startIndex: 5, allowEmpty: true).encode(into: &b)
        #expect(b.readableBytes == 5)
        #expect(try FetchStorageIDsRequest.decode(body: &b) == FetchStorageIDsRequest(startIndex: 5, allowEmpty: true))
        let ids = FetchStorageIDsResponse(total: 3, lines: ["100001 group1 192.168.0.1", "100002 group1 [fd00::2]:23000"])
        b.clear()
        ids.encode(into: &b)
        #expect(try FetchStorageIDsResponse.decode(body: &b) == ids)
        let params = ParameterResponse(parameters: ["use_storage_id": "true", "store_path": "0"])
        b.clear()
        params.encode(into: &b)
        let decodedParams = try ParameterResponse.decode(body: &b)
        #expect(decodedParams == params && decodedParams.useStorageID)
        b = ByteBuffer(string: "[fd00::1]:22122")
        #expect(try GetLeaderResponse.decode(body: &b).leader == StorageAddress(host: "fd00::1", port: 22122))
        b = ByteBuffer(string: "nonsense")
        #expect(throws: FDFSProtocolError.self) { _ = try GetLeaderResponse.decode(body: &b) }
    }
}
