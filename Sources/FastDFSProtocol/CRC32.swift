// Standard CRC-32 (IEEE 802.3; reflected poly 0xEDB88320, init and xorout 0xFFFFFFFF, as zlib),
// incremental. FastDFS ≥ 5.12 puts this CRC of the content into file names.
import NIOCore

public struct CRC32: Sendable, Hashable {
    private var state: UInt32 = 0xFFFF_FFFF

    public init() {}

    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 {
            c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1
        }
        return c
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var c = state
        Self.table.withUnsafeBufferPointer { table in
            for b in bytes {
                c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8)
            }
        }
        state = c
    }

    public mutating func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { update($0) }
    }

    public mutating func update(bytes: some Sequence<UInt8>) {
        var c = state
        for b in bytes {
            c = Self.table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8)
        }
        state = c
    }

    /// The CRC of everything fed so far.
    public var value: UInt32 { state ^ 0xFFFF_FFFF }

    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc = CRC32()
        crc.update(bytes: bytes)
        return crc.value
    }
}
