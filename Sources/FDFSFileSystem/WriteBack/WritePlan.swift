/// The write-back state of one file and the pure decisions made on it: what a write, a
/// truncate or a ship (sending staged bytes to the cluster) does. No I/O here; `FileWriter`
/// executes the steps and `StagedFileRecord` persists the state.
///
/// The file's content is, byte by byte: dirty bytes from the staging file, else bytes of the
/// appender `fileID` below `remoteSize` (and below a pending `truncateTo`), else bytes of the
/// copy-on-write source `baseID` below `baseSize`, else zeros.
public struct WriteState: Sendable, Hashable, Codable {
    /// The appender file being written (nil: nothing uploaded yet).
    public var fileID: String?
    /// Bytes of `fileID` acknowledged by the server.
    public var remoteSize: Int64 = 0
    /// The logical size of the file.
    public var size: Int64 = 0
    /// A shrink of `fileID` not yet sent (TRUNCATE).
    public var truncateTo: Int64?
    /// Copy-on-write source: an immutable file whose bytes fill what is not dirty, below `baseSize`.
    public var baseID: String?
    public var baseSize: Int64 = 0
    /// What the naming layer records now (to know what changes at commit).
    public var committedID: String?
    public var committedSize: Int64 = 0
    public var dirty = DirtyRanges()
    /// True after a failed append/upload: the server may hold part of it; check before continuing.
    public var remoteUncertain = false
    /// A new or emptied file gets an appender file even when it stays empty (every named file
    /// written through the mount has an id).
    public var wantsFile = false
    /// The staging file holding the dirty bytes (one per writer, so a new writer never shares
    /// the file a dropped one is removing).
    public var stagingFile: String?
    /// A new slave file (by-id view): uploaded whole, with UPLOAD_SLAVE, at the durability point.
    public var slave: SlaveTarget?
    /// Generation of this record; writes logged next to the staging file under it came after it
    /// (optional: records written before the log existed decode as 0).
    public var logGeneration: UInt64?

    public init(fileID: String?, size: Int64, appender: Bool) {
        committedID = fileID
        committedSize = size
        self.size = size
        if appender { self.fileID = fileID; remoteSize = size }
        else if let fileID { baseID = fileID; baseSize = size }
    }

    /// Bytes of `fileID` that stay valid (after the pending truncate).
    public var effectiveRemote: Int64 { fileID == nil ? 0 : min(remoteSize, truncateTo ?? remoteSize) }

    /// True when nothing differs from what the naming layer records.
    public var isClean: Bool {
        dirty.isEmpty && truncateTo == nil && size == committedSize && !(wantsFile && fileID == nil)
            && (fileID == committedID || (fileID == nil && baseID == committedID && baseSize == size))
    }

    public mutating func wrote(_ offset: Int64, _ count: Int64) {
        dirty.insert(offset, offset + count)
        size = max(size, offset + count)
    }

    public mutating func resize(_ newSize: Int64) {
        if newSize < size {
            dirty.remove(newSize, Int64.max)
            if fileID != nil, newSize < effectiveRemote { truncateTo = newSize }
            if newSize < baseSize { baseSize = newSize }
        }
        size = newSize
        if baseSize == 0 { baseID = nil }
        if size == 0 { wantsFile = true }
    }

    public enum Step: Sendable, Hashable {
        case truncate(Int64)
        /// MODIFY bytes `[lo, hi)` of `fileID` (inside the server's file).
        case modify(Int64, Int64)
        /// UPLOAD_APPENDER of `[0, hi)` (creates `fileID`).
        case upload(Int64)
        /// APPEND of `[lo, hi)`, `lo` being the server's size.
        case append(Int64, Int64)
    }

    /// The requests that bring the server up to date. `final` ships everything (fsync/close);
    /// otherwise only whole `chunk`s of the run contiguous with the server's end (sequential
    /// writes stream out while the file is written) and dirty ranges inside the server's file.
    public func plan(chunk: Int64, final: Bool) -> [Step] {
        var steps: [Step] = []
        if fileID != nil, let t = truncateTo, t < remoteSize { steps.append(.truncate(t)) }
        let remote = effectiveRemote
        for r in dirty.intersection(0, remote) {
            var a = r.lo
            while a < r.hi { let b = min(r.hi, a + chunk); steps.append(.modify(a, b)); a = b }
        }
        var end: Int64
        if final {
            end = size
        } else {
            // Known content past the server's end: dirty bytes, or the copy-on-write source.
            var avail = dirty
            if baseID != nil { avail.insert(0, baseSize) }
            let run = min(avail.contiguousEnd(from: remote), size)
            end = remote + (run - remote) / chunk * chunk
        }
        if final, size == 0, fileID == nil, wantsFile { return steps + [.upload(0)] }
        var a = remote
        var hasFile = fileID != nil
        while a < end {
            let b = min(end, a + chunk)
            steps.append(hasFile ? .append(a, b) : .upload(b))
            hasFile = true
            a = b
        }
        return steps
    }
}
