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
