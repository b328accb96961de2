// Standard CRC-32 (IEEE 802.3; reflected poly 0xEDB88320, init and xorout 0xFFFFFFFF, as zlib),
// incremental, slicing-by-8. FastDFS ≥ 5.12 puts this CRC of the content into file names.
import NIOCore

public struct CRC32: Sendable, Hashable {
    private var state: UInt32 = 0xFFFF_FFFF

    public init() {}

    /// 8 tables of 256 entries, flattened: table k at offset 256·k. Table 0 is the classic one.
    static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 256 * 8)
        for n in 0..<256 {
            var c = UInt32(n)
            for _ in 0..<8 {
                c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1
            }
            t[n] = c
        }
        for k in 1..<8 {
            for n in 0..<256 {
                let previous = t[256 * (k - 1) + n]
                t[256 * k + n] = (previous >> 8) ^ t[Int(previous & 0xFF)]
            }
        }
        return t
    }()

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var c = state
        Self.tables.withUnsafeBufferPointer { t in
            var i = 0
            let count = bytes.count
            while count - i >= 8 {
                let one = c ^ (UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
                let two = UInt32(bytes[i + 4]) | UInt32(bytes[i + 5]) << 8 | UInt32(bytes[i + 6]) << 16 | UInt32(bytes[i + 7]) << 24
                c = t[7 * 256 + Int(one & 0xFF)] ^ t[6 * 256 + Int((one >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((one >> 16) & 0xFF)] ^ t[4 * 256 + Int(one >> 24)]
                    ^ t[3 * 256 + Int(two & 0xFF)] ^ t[2 * 256 + Int((two >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((two >> 16) & 0xFF)] ^ t[Int(two >> 24)]
                i += 8
            }
            while i < count {
                c = t[Int((c ^ UInt32(bytes[i])) & 0xFF)] ^ (c >> 8)
                i += 1
            }
        }
        state = c
    }

    public mutating func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { update($0) }
    }

    public mutating func update(bytes: some Sequence<UInt8>) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
        if done != nil { return }
        var c = state
        Self.tables.withUnsafeBufferPointer { t in
            for b in bytes {
                c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8)
            }
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
