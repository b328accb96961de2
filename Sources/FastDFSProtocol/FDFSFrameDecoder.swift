// Streaming frame decoder: cuts a FastDFS byte stream into header, body chunks and end marker.
import NIOCore

public enum FDFSFramePart: Sendable, Equatable {
    case head(FDFSHeader)
    case body(ByteBuffer)
    case end
}

/// Emits `.head`, then zero or more `.body` chunks as bytes arrive (never buffers a whole body),
/// then `.end`. Works for both directions (requests on a server, responses on a client).
///
/// Inside a `ByteToMessageHandler` the decoder fires every part it can produce in one
/// `decode(context:buffer:)` call. This matters: the handler does not call a decoder again while
/// its buffer is empty, so a decoder that returned one part per call would hold back the `.end`
/// that follows a frame's last body byte (or a zero-length header) until more bytes arrived.
public struct FDFSFrameDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    public typealias InboundOut = FDFSFramePart

    enum State: Hashable {
        case awaitingHeader
        case body(remaining: Int64)
        case ending
    }

    var state: State = .awaitingHeader
    /// Largest accepted body; nil for no limit.
    public var maxBodyLength: Int64?

    public init() {}

    public init(maxBodyLength: Int64?) {
        self.maxBodyLength = maxBodyLength
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> FDFSFramePart? {
        try next(&buffer)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> FDFSFramePart? {
        if let part = try next(&buffer) { return part }
        if seenEOF {
            switch state {
            case .awaitingHeader where buffer.readableBytes > 0:
                throw FDFSProtocolError.malformed(command: "frame", reason: "connection closed after \(buffer.readableBytes) of 10 header bytes")
            case .body(let remaining):
                throw FDFSProtocolError.malformed(command: "frame", reason: "connection closed with \(remaining) body bytes missing")
            default:
                break
            }
        }
        return nil
    }

    /// Fires every available part (ByteToMessageHandler path; see the type's comment).
    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        try drain(&buffer) { context.fireChannelRead(Self.wrapInboundOut($0)) }
        return .needMoreData
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try drain(&buffer, last: true, seenEOF: seenEOF) { context.fireChannelRead(Self.wrapInboundOut($0)) }
        return .needMoreData
    }

    /// Produces parts until no more can be made from `buffer` (including a pending `.end` when
    /// the buffer is already empty).
    mutating func drain(_ buffer: inout ByteBuffer, last: Bool = false, seenEOF: Bool = false,
                        _ emit: (FDFSFramePart) throws -> Void) throws {
        while let part = try (last ? decodeLast(buffer: &buffer, seenEOF: seenEOF) : decode(buffer: &buffer)) {
            try emit(part)
        }
    }

    mutating func next(_ buffer: inout ByteBuffer) throws(FDFSProtocolError) -> FDFSFramePart? {
        switch state {
        case .awaitingHeader:
            guard let header = try FDFSHeader.decode(from: &buffer) else { return nil }
            if let maxBodyLength, header.bodyLength > maxBodyLength {
                throw .bodyTooLarge(command: FDFSCommand(rawValue: header.command)?.name ?? "command \(header.command)",
                                    length: header.bodyLength, limit: Int(clamping: maxBodyLength))
            }
            state = header.bodyLength == 0 ? .ending : .body(remaining: header.bodyLength)
            return .head(header)
        case .body(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let take = Int(min(Int64(buffer.readableBytes), remaining))
            guard let chunk = buffer.readSlice(length: take) else { return nil }
            let left = remaining - Int64(take)
            state = left == 0 ? .ending : .body(remaining: left)
            return .body(chunk)
        case .ending:
            state = .awaitingHeader
            return .end
        }
    }
}
