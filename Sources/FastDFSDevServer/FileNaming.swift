// File id generation in the real format (reference §5, §8.2), built on the codec's FDFSFilename.

import FastDFSProtocol

enum FileNaming {
    /// `FDFSFilename.generate` with the storage's clock value (kept as 32 bits, like the storage).
    static func makeName(
        source: UInt32, timestamp: Int64, size: Int64, appender: Bool, crc32: UInt32,
        storePathIndex: Int, sub1: Int, sub2: Int, ext7: String
    ) -> String {
        FDFSFilename.generate(
            source: source, timestamp: UInt32(truncatingIfNeeded: timestamp), size: size, appender: appender,
            crc32: crc32, storePathIndex: storePathIndex, sub1: sub1, sub2: sub2, ext7: ext7)
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
}
