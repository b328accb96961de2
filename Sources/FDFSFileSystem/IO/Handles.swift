import FuseTypes
import Synchronization

/// An open file. Reads go through the prefetcher; `fileID` is nil for a named file with no data.
/// Handles open for writing share the inode's `FileWriter`.
final class Handle: Sendable {
    let ino: UInt64
    let fileID: String?
    let size: Int64
    let prefetcher: Prefetcher?
    let writable: Bool
    /// The inode's writer, for handles opened for writing.
    let writer: FileWriter?
    /// Set when the file was written after this read-only handle opened (read-ahead dropped).
    let stale = Atomic<Bool>(false)

    init(ino: UInt64, fileID: String?, size: Int64, prefetcher: Prefetcher?, writable: Bool, writer: FileWriter? = nil) {
        self.ino = ino; self.fileID = fileID; self.size = size; self.prefetcher = prefetcher; self.writable = writable
        self.writer = writer
    }
}

struct HandleTable: Sendable {
    private var next: UInt64 = 1
    private var handles: [UInt64: Handle] = [:]

    mutating func insert(_ h: Handle) -> UInt64 {
        let fh = next
        next += 1
        handles[fh] = h
        return fh
    }
    func get(_ fh: UInt64) -> Handle? { handles[fh] }
    mutating func remove(_ fh: UInt64) -> Handle? { handles.removeValue(forKey: fh) }
    func all(ino: UInt64) -> [Handle] { handles.values.filter { $0.ino == ino } }
    var count: Int { handles.count }
}
