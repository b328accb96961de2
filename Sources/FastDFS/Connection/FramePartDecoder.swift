// Adapter around the codec's FDFSFrameDecoder for use in a channel pipeline.
//
// Why: FDFSFrameDecoder is a NIOSingleStepByteToMessageDecoder that returns one part per call
// and emits `.end` on the call *after* the last body byte (or after a header with an empty body).
// ByteToMessageHandler does not call a decoder again while its buffer is empty, so a reply that
// ends exactly at the end of the received bytes (every empty reply, every download) never got its
// `.end` until more bytes arrived. This adapter drains the single-step decoder in a loop, empty
// buffer included, so `.end` is delivered with the last byte.

import FastDFSProtocol
import NIOCore

struct FramePartDecoder: ByteToMessageDecoder {
    typealias InboundOut = FDFSFramePart

    var inner = FDFSFrameDecoder()

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        while let part = try inner.decode(buffer: &buffer) {
            context.fireChannelRead(Self.wrapInboundOut(part))
        }
        return .needMoreData
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        while let part = try inner.decodeLast(buffer: &buffer, seenEOF: seenEOF) {
            context.fireChannelRead(Self.wrapInboundOut(part))
        }
        return .needMoreData
    }
}
