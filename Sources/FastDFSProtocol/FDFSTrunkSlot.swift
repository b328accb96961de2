// Names of small files packed into trunk files (§5.1, §5.4 of the reference): after the 27 base64
// characters come 16 more holding the file's slot — trunk file id, offset and slot size as three
// big-endian int32s [storage/trunk_mgr/trunk_shared.c `trunk_file_info_encode`,
// `trunk_file_info_decode`]. The whole remote filename is then 60 characters.

/// Where a trunk file's content lives: trunk file `id`, byte `offset` of its 24-byte header in
/// that trunk file, and the `size` of the slot (header included).
public struct FDFSTrunkSlot: Hashable, Sendable {
    public var trunkID: UInt32
    public var offset: UInt32
    public var size: UInt32

    public init(trunkID: UInt32, offset: UInt32, size: UInt32) {
        self.trunkID = trunkID
        self.offset = offset
        self.size = size
    }

    /// The 16 base64 characters of the name.
    public var encoded: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(12)
        for v in [trunkID, offset, size] { withUnsafeBytes(of: v.bigEndian) { bytes += $0 } }
        return FDFSBase64.encode(bytes)
    }

    /// Decodes the 16 characters; nil when they are not FastDFS base64.
    public init?(encoded: Substring) {
        guard encoded.utf8.count == 16, let raw = FDFSBase64.decode(encoded), raw.count == 12 else { return nil }
        func int(_ i: Int) -> UInt32 {
            UInt32(raw[i]) << 24 | UInt32(raw[i + 1]) << 16 | UInt32(raw[i + 2]) << 8 | UInt32(raw[i + 3])
        }
        self.init(trunkID: int(0), offset: int(4), size: int(8))
    }

    /// The slot of a trunk remote filename (`Mxx/XX/YY/` + 27 + 16 + 7 = 60 characters, trunk flag
    /// set in the size field), like `fdfs_is_trunk_file` + `fdfs_decode_trunk_info`; nil otherwise.
    public init?(trunkFilename: String) {
        let bytes = Array(trunkFilename.utf8)
        guard bytes.count == FDFSLimits.trunkFilenameLength,
            let info = try? FileIDInfo.decode(filename: trunkFilename),
            info.sizeField & FDFSLimits.trunkFlag != 0
        else { return nil }
        let start = FDFSLimits.logicFilePathLength + FDFSLimits.filenameBase64Length
        self.init(encoded: Substring(String(decoding: bytes[start..<(start + 16)], as: UTF8.self)))
    }
}

extension FDFSFilename {
    /// Size field of a trunk file (M's encoding, §5.4): the random high word OR the trunk flag,
    /// the size in the low 32 bits.
    public static func makeTrunkSizeField(size: Int64, randomHigh: UInt32) -> Int64 {
        let high = Int64(0x8000_0000 | (randomHigh & 0x7F_FFFF)) << 32
        return high | FDFSLimits.trunkFlag | (size & 0xFFFF_FFFF)
    }

    /// "M%02X/%02X/%02X/" + base27 + slot + ext7: the 60-character name of a file in a trunk file.
    public static func makeTrunk(
        storePathIndex: Int, sub1: Int, sub2: Int, base27: String, slot: FDFSTrunkSlot, ext7: String
    ) -> String {
        make(storePathIndex: storePathIndex, sub1: sub1, sub2: sub2, base27: base27 + slot.encoded, ext7: ext7)
    }
}
