// The request protocol and whole-packet builders (header + body).
import NIOCore

/// A request message: a command code plus a body encoder.
public protocol FDFSRequest: Sendable {
    var command: FDFSCommand { get }
    /// Writes the body (or, for *Head types, the fixed part before streamed content).
    func encode(into buffer: inout ByteBuffer)
    /// The header status byte; 0 except for QUERY_FILE_INFO, which sends its flags there.
    var headerStatus: UInt8 { get }
    /// Bytes of content the caller streams after the encoded part (0 for most requests).
    var contentLength: Int64 { get }
}

extension FDFSRequest {
    public var headerStatus: UInt8 { 0 }
    public var contentLength: Int64 { 0 }
}

/// Builds complete packets.
public enum FDFSPacket {
    /// Header + encoded request. For *Head requests the header's body length includes the
    /// `contentLength` bytes the caller must write next.
    public static func encode<R: FDFSRequest>(
        _ request: R, status: UInt8 = 0, allocator: ByteBufferAllocator = .init()
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64)
        let status = status != 0 ? status : request.headerStatus
        FDFSHeader(bodyLength: 0, command: request.command, status: status).encode(into: &buffer)
        request.encode(into: &buffer)
        let encoded = Int64(buffer.writerIndex - FDFSHeader.size)
        buffer.setInteger(encoded &+ request.contentLength, at: 0, endianness: .big)
        return buffer
    }

    /// A response packet: header with cmd 100, the given status, and the body (if any).
    public static func response(status: UInt8, body: ByteBuffer? = nil) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(FDFSHeader.size + (body?.readableBytes ?? 0))
        FDFSHeader(bodyLength: Int64(body?.readableBytes ?? 0), command: .response, status: status)
            .encode(into: &buffer)
        if let body { buffer.writeImmutableBuffer(body) }
        return buffer
    }

    /// A response header alone, for bodies streamed afterwards (download).
    public static func responseHeader(status: UInt8 = 0, bodyLength: Int64) -> ByteBuffer {
        var buffer = ByteBuffer()
        FDFSHeader(bodyLength: bodyLength, command: .response, status: status).encode(into: &buffer)
        return buffer
    }

    /// A success response whose body is the given message's encoding.
    public static func response(encoding write: (inout ByteBuffer) -> Void) -> ByteBuffer {
        var body = ByteBuffer()
        write(&body)
        return response(status: 0, body: body)
    }
}

/// ACTIVE_TEST (111): empty body, reply is a bare header.
public struct ActiveTestRequest: FDFSRequest, Hashable {
    public init() {}
    public var command: FDFSCommand { .activeTest }
    public func encode(into buffer: inout ByteBuffer) {}
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> ActiveTestRequest {
        try Wire.expectLength(body, 0, command: "ACTIVE_TEST")
        return ActiveTestRequest()
    }
}

/// QUIT (82): empty body, no reply.
public struct QuitRequest: FDFSRequest, Hashable {
    public init() {}
    public var command: FDFSCommand { .quit }
    public func encode(into buffer: inout ByteBuffer) {}
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> QuitRequest {
        try Wire.expectLength(body, 0, command: "QUIT")
        return QuitRequest()
    }
}

/// A response that must have an empty body (delete, set-metadata, append, modify, truncate,
/// active test).
public struct EmptyResponse: Hashable, Sendable {
    public init() {}
    public func encode(into buffer: inout ByteBuffer) {}
    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> EmptyResponse {
        try Wire.expectLength(body, 0, command: "empty response")
        return EmptyResponse()
    }
}
