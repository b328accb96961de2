// What a request handler tells the connection layer to do.

import FastDFSProtocol
import NIOCore

/// A complete (non-streamed) reply: status byte, body, and whether to close afterwards.
struct Reply: Sendable, Equatable {
    var status: UInt8
    var body: ByteBuffer
    /// Close the connection once the reply is sent (the real storage does this after EINVAL).
    var closeAfterSending: Bool

    static func ok(_ body: ByteBuffer = ByteBuffer()) -> Reply {
        Reply(status: 0, body: body, closeAfterSending: false)
    }

    static func error(_ status: FDFSErrno, close: Bool = false) -> Reply {
        Reply(status: status.rawValue, body: ByteBuffer(), closeAfterSending: close)
    }

    /// Header + body as one buffer (error replies have pkg_len 0).
    func packet() -> ByteBuffer {
        FDFSPacket.response(status: status, body: status == 0 ? body : nil)
    }
}

enum HandlerResult: Sendable, Equatable {
    case reply(Reply)
    /// QUIT: close without a reply.
    case quit
}

extension ByteBuffer {
    /// Reads a big-endian int64 field.
    mutating func readInt64Field() -> Int64? { readInteger(endianness: .big, as: Int64.self) }

    /// Reads a NUL-padded fixed-width string, cut at the first NUL.
    mutating func readFixedField(width: Int) -> String? {
        guard let bytes = readBytes(length: width) else { return nil }
        let cut = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[0..<cut], as: UTF8.self)
    }

    /// Reads the rest as text.
    mutating func readRemainingString() -> String {
        readString(length: readableBytes) ?? ""
    }

    mutating func writeFixedField(_ text: String, width: Int) {
        var bytes = Array(text.utf8.prefix(width))
        bytes.append(contentsOf: [UInt8](repeating: 0, count: width - bytes.count))
        writeBytes(bytes)
    }
}
