// File id generation in the real format (reference §5, §8.2), built on the codec's FDFSFilename.

import FastDFSProtocol

enum FileNaming {
    /// `M00/XX/YY/` + base64 of (source, timestamp, size field, crc32) + EXT7. `source` is the
    /// storage's source field (its IPv4 octets, or its storage id in ID mode).
    static func makeName(
        source: UInt32, timestamp: Int64, size: Int64, appender: Bool, crc32: UInt32,
        storePathIndex: Int, sub1: Int, sub2: Int, ext7: String
    ) -> String {
        let sizeField = FDFSFilename.makeSizeField(
            size: size, appender: appender, randomHigh: UInt32.random(in: 0...UInt32.max))
        let base27 = FDFSFilename.encode20(
            source: source, timestamp: UInt32(truncatingIfNeeded: timestamp), sizeField: sizeField, crc32: crc32)
        return FDFSFilename.make(storePathIndex: storePathIndex, sub1: sub1, sub2: sub2, base27: base27, ext7: ext7)
    }

    /// The 60-character name of a file stored in a trunk slot: the trunk file's directories, the
    /// 27 characters (size field with the trunk flag, timestamp = upload start), the slot, EXT7
    /// [storage/storage_service.c `storage_gen_filename`, trunk_shared.c `trunk_file_info_encode`].
    static func makeTrunkName(
        source: UInt32, timestamp: Int64, size: Int64, crc32: UInt32, storePathIndex: Int, slot: TrunkAllocator.Slot,
        ext7: String
    ) -> String {
        let sizeField = FDFSFilename.makeTrunkSizeField(size: size, randomHigh: UInt32.random(in: 0...UInt32.max))
        let base27 = FDFSFilename.encode20(
            source: source, timestamp: UInt32(truncatingIfNeeded: timestamp), sizeField: sizeField, crc32: crc32)
        return FDFSFilename.makeTrunk(
            storePathIndex: storePathIndex, sub1: slot.file.sub1, sub2: slot.file.sub2, base27: base27,
            slot: FDFSTrunkSlot(trunkID: slot.file.id, offset: UInt32(slot.offset), size: UInt32(slot.size)),
            ext7: ext7)
    }

    /// The 7-character extension part: random digits, dot, extension (or 7 digits).
    static func ext7(_ ext: String) -> String {
        var rng = SystemRandomNumberGenerator()
        return FDFSFilename.formatExt(ext, randomDigits: &rng)
    }

    /// `[A-Za-z0-9._-]*` — what the storage accepts in extensions and slave prefixes.
    static func isSafe(_ text: String) -> Bool {
        text.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
        }
    }
}
