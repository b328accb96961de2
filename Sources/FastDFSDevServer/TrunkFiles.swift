// Trunk files (tracker.conf `use_trunk_file = true`): small uploads are packed into big files
// `data/XX/YY/<6-digit trunk id>` of `trunk_file_size` bytes (created sparse), each in a slot
// that starts with a 24-byte header [storage/trunk_mgr/trunk_shared.h, trunk_shared.c]:
//
//   0  file_type   'F' regular, 'L' link, 0 free
//   1  alloc_size  int32 BE: the slot size (header included)
//   5  file_size   int32 BE
//   9  crc32       int32 BE
//  13  mtime       int32 BE: the timestamp in the file name
//  17  ext name    the last 7 characters of the file name (no NUL: the header is 24 bytes)
//
// A trunk file name (60 characters) carries the slot (trunk id, offset, size) after the usual 27
// base64 characters, and its `XX/YY` are the trunk file's directories. A name is found when the
// header at its offset is exactly the header the name implies, else ENOENT
// [trunk_shared.c `trunk_file_do_lstat_func_ex`]. Deleting writes a free header (type 0, the slot
// size kept) and zeros over the slot [trunk_mem.c `trunk_file_delete`]. Every storage of a group
// keeps its own copy of each trunk file at the same id, offset and directories; the slots are
// handed out by the group's trunk server (storage1 here), whose free-space table is the
// `TrunkAllocator` below.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FastDFSProtocol
import NIOConcurrencyHelpers
import NIOCore

struct TrunkHeader: Sendable, Equatable {
    static let size: Int64 = 24
    static let regular = UInt8(ascii: "F")

    var fileType: UInt8
    var allocSize: UInt32
    var fileSize: UInt32
    var crc32: UInt32
    var mtime: UInt32
    /// The 7-character extension part of the name.
    var ext7: String

    func encode() -> [UInt8] {
        var out: [UInt8] = [fileType]
        for v in [allocSize, fileSize, crc32, mtime] { withUnsafeBytes(of: v.bigEndian) { out += $0 } }
        var ext = Array(ext7.utf8.prefix(7))
        ext += [UInt8](repeating: 0, count: 7 - ext.count)
        return out + ext
    }

    /// A free slot's header [trunk_mem.c `trunk_file_delete`].
    static func free(allocSize: UInt32) -> TrunkHeader {
        TrunkHeader(fileType: 0, allocSize: allocSize, fileSize: 0, crc32: 0, mtime: 0, ext7: "")
    }
}

/// Where the file of a trunk name lives on a storage's disk, and the header its name implies.
struct TrunkLocation: Sendable, Equatable {
    var slot: FDFSTrunkSlot
    var sub1: Int
    var sub2: Int
    /// The header the name implies (file type regular).
    var header: TrunkHeader
    var trunkFile: TrunkFileID { TrunkFileID(id: slot.trunkID, sub1: sub1, sub2: sub2) }
    var dataOffset: Int64 { Int64(slot.offset) + TrunkHeader.size }

    /// nil unless `name` is a 60-character trunk name (trunk flag set).
    init?(_ name: StoredFilename) {
        guard let slot = FDFSTrunkSlot(trunkFilename: name.remote), let info = name.info else { return nil }
        let parts = name.directory.split(separator: "/")
        self.slot = slot
        self.sub1 = Int(parts[0], radix: 16) ?? 0
        self.sub2 = Int(parts[1], radix: 16) ?? 0
        self.header = TrunkHeader(
            fileType: TrunkHeader.regular, allocSize: slot.size,
            fileSize: UInt32(truncatingIfNeeded: info.sizeField & 0xFFFF_FFFF), crc32: info.crc32,
            mtime: UInt32(truncatingIfNeeded: info.createTime), ext7: String(name.remote.suffix(7)))
    }
}

/// One trunk file: its id and directories.
struct TrunkFileID: Hashable, Sendable {
    var id: UInt32
    var sub1: Int
    var sub2: Int
    var relativePath: String {
        "\(hex2(sub1))/\(hex2(sub2))/" + String(repeating: "0", count: max(0, 6 - String(id).count)) + String(id)
    }
    private func hex2(_ v: Int) -> String {
        let d = Array("0123456789ABCDEF")
        return String([d[(v >> 4) & 15], d[v & 15]])
    }
}

extension DiskStore {
    func path(of trunk: TrunkFileID) -> String { dataDirectory + "/" + trunk.relativePath }

    /// The status of a trunk name: the header on disk must be the one the name implies
    /// [trunk_shared.c `trunk_file_do_lstat_func_ex`]; size and mtime come from it.
    func trunkStatus(_ location: TrunkLocation) -> FileStatus? {
        let fd = open(path(of: location.trunkFile), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard let buffer = try? Self.readChunk(fd: fd, at: Int64(location.slot.offset), count: Int(TrunkHeader.size),
            allocator: ByteBufferAllocator()), buffer.readableBytes == Int(TrunkHeader.size)
        else { return nil }
        var onDisk = Array(buffer.readableBytesView)
        let type = onDisk[0]
        guard type == TrunkHeader.regular || type == UInt8(ascii: "L") else { return nil }
        onDisk[0] = TrunkHeader.regular
        guard onDisk == location.header.encode() else { return nil }
        return FileStatus(
            size: Int64(location.header.fileSize), mtime: Int64(location.header.mtime),
            isRegular: type == TrunkHeader.regular)
    }

    /// Opens (creating it sparse at `trunk_file_size` bytes if needed) one trunk file for writing.
    func openTrunkFile(_ trunk: TrunkFileID) throws(DiskError) -> Int32 {
        let fileSize = trunkFileSize
        let p = path(of: trunk)
        try Self.makeDirectories(dataDirectory + "/" + String(trunk.relativePath.prefix(5)))
        let fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DiskError(errno: errno, operation: "open", path: p) }
        var st = stat()
        if fstat(fd, &st) == 0, Int64(st.st_size) < fileSize, ftruncate(fd, off_t(fileSize)) != 0 {
            let e = errno
            close(fd)
            throw DiskError(errno: e, operation: "ftruncate", path: p)
        }
        return fd
    }

    /// Writes a whole trunk file entry: `length` content bytes from `contentFD` at `offset`, then
    /// the header, like `dio_write_chunk_header` after the data.
    func writeTrunkEntry(_ location: TrunkLocation, from contentFD: Int32, at offset: Int64, length: Int64)
        throws(DiskError)
    {
        let fd = try openTrunkFile(location.trunkFile)
        defer { close(fd) }
        try Self.copyRange(from: contentFD, at: offset, length: length, to: fd, at: location.dataOffset)
        var header = ByteBuffer()
        header.writeBytes(location.header.encode())
        try Self.writeAll(fd: fd, buffer: header, at: Int64(location.slot.offset))
    }

    /// Frees a slot on this storage's copy: a free header, zeros over the rest.
    func clearTrunkSlot(_ location: TrunkLocation) throws(DiskError) {
        let fd = try openTrunkFile(location.trunkFile)
        defer { close(fd) }
        var buffer = ByteBuffer()
        buffer.writeBytes(TrunkHeader.free(allocSize: location.slot.size).encode())
        buffer.writeRepeatingByte(0, count: max(0, Int(location.slot.size) - Int(TrunkHeader.size)))
        try Self.writeAll(fd: fd, buffer: buffer, at: Int64(location.slot.offset))
    }
}

/// The trunk server's free-space table of one group [trunk_mem.c `trunk_alloc_space`,
/// `trunk_split`, `trunk_free_space`, `trunk_create_trunk_file`]: best fit among the free slots
/// (smallest size that is large enough), the rest split off when at least `slot_min_size`
/// remains; a new trunk file (one free slot of `trunk_file_size`) when nothing fits. Kept in
/// `<data>/<group>/trunk.dat` (rewritten on every change), so it survives restarts.
final class TrunkAllocator: Sendable {
    struct Slot: Hashable, Sendable, Comparable {
        var file: TrunkFileID
        var offset: Int64
        var size: Int64
        static func < (a: Slot, b: Slot) -> Bool {
            (a.size, a.file.id, a.offset) < (b.size, b.file.id, b.offset)
        }
    }

    private struct State {
        var currentTrunkFileID: UInt32 = 0
        var free: [Slot] = []
    }

    let path: String
    let parameters: TrunkParameters
    private let state = NIOLockedValueBox(State())

    init(path: String, parameters: TrunkParameters) {
        self.path = path
        self.parameters = parameters
    }

    var currentTrunkFileID: Int64 { Int64(state.withLockedValue { $0.currentTrunkFileID }) }
    var freeBytes: Int64 { state.withLockedValue { $0.free.reduce(0) { $0 + $1.size } } }

    /// Whether an upload of `size` bytes goes into a trunk file [`trunk_check_size`].
    func fits(_ size: Int64) -> Bool { size + TrunkHeader.size <= parameters.slotMaxSize }

    /// The slot size for a file of `size` bytes: the header added, at least `slot_min_size`,
    /// rounded up to `trunk_alloc_alignment_size`.
    func slotSize(for size: Int64) -> Int64 {
        let needed = size + TrunkHeader.size
        if needed <= parameters.slotMinSize { return parameters.slotMinSize }
        let a = parameters.allocationAlignment
        guard a > 0, needed % a != 0 else { return needed }
        return needed + (a - needed % a)
    }

    /// Hands out a slot for `size` content bytes (blocking: persists the table under the lock, so
    /// the file never lags behind). `newTrunkDirectories` gives the directories of a new trunk file
    /// (the trunk server's upload rotation).
    func allocate(size: Int64, newTrunkDirectories: () -> (Int, Int)) throws(DiskError) -> Slot {
        let wanted = slotSize(for: size)
        let result = state.withLockedValue { s -> Result<Slot, DiskError> in
            let before = s
            let index: Int
            if let best = s.free.indices.filter({ s.free[$0].size >= wanted }).min(by: { s.free[$0] < s.free[$1] }) {
                index = best
            } else {
                s.currentTrunkFileID += 1
                let (a, b) = newTrunkDirectories()
                s.free.append(
                    Slot(file: TrunkFileID(id: s.currentTrunkFileID, sub1: a, sub2: b), offset: 0,
                        size: parameters.trunkFileSize))
                index = s.free.count - 1
            }
            var slot = s.free.remove(at: index)
            if slot.size - wanted >= parameters.slotMinSize {
                s.free.append(Slot(file: slot.file, offset: slot.offset + wanted, size: slot.size - wanted))
                slot.size = wanted
            }
            do throws(DiskError) {
                try save(s)
            } catch {
                s = before
                return .failure(error)
            }
            return .success(slot)
        }
        return try result.get()
    }

    /// Gives the slot of a deleted trunk file back.
    func release(_ location: TrunkLocation) {
        release(Slot(file: location.trunkFile, offset: Int64(location.slot.offset), size: Int64(location.slot.size)))
    }

    /// Gives a slot back [`trunk_free_space`: slots below `slot_min_size` are not reclaimed].
    func release(_ slot: Slot) {
        guard slot.size >= parameters.slotMinSize else { return }
        state.withLockedValue { s in
            guard !s.free.contains(where: { $0.file.id == slot.file.id && $0.offset == slot.offset }) else { return }
            s.free.append(slot)
            try? save(s)
        }
    }

    /// Reads the table (blocking; at start).
    func load() {
        guard let bytes = DiskStore.readSmallFile(path) else { return }
        var loaded = State()
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 2, f[0] == "current_trunk_file_id", let v = UInt32(f[1]) {
                loaded.currentTrunkFileID = v
            } else if f.count == 6, f[0] == "free", let id = UInt32(f[1]), let a = Int(f[2]), let b = Int(f[3]),
                let offset = Int64(f[4]), let size = Int64(f[5])
            {
                loaded.free.append(Slot(file: TrunkFileID(id: id, sub1: a, sub2: b), offset: offset, size: size))
            }
        }
        state.withLockedValue { $0 = loaded }
    }

    private func save(_ s: State) throws(DiskError) {
        var text = "current_trunk_file_id \(s.currentTrunkFileID)\n"
        for f in s.free.sorted(by: { ($0.file.id, $0.offset) < ($1.file.id, $1.offset) }) {
            text += "free \(f.file.id) \(f.file.sub1) \(f.file.sub2) \(f.offset) \(f.size)\n"
        }
        let dir = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
        try DiskStore.writeSmallFile(path, Array(text.utf8), temporaryDirectory: dir)
    }
}
