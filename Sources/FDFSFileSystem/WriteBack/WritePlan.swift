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

    /// Stops changing the committed appender in place: the file is built as a copy of it from
    /// here on (its bytes below the server's size, after a pending shrink, are the base; the
    /// server's file is left as it is). For a tree shared by several mounts, where another
    /// mount's writer may be reading that file as the base of its own copy.
    public mutating func copyInsteadOfChanging() {
        guard let fid = fileID, fid == committedID, !remoteUncertain else { return }
        baseID = fid
        baseSize = effectiveRemote
        fileID = nil
        remoteSize = 0
        truncateTo = nil
        if baseSize == 0 { baseID = nil }
    }

    /// True when a change at `offset` would change the committed appender below its committed size.
    public func changesCommittedBytes(at offset: Int64) -> Bool {
        fileID != nil && fileID == committedID && offset < committedSize
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

    /// After a crash: staged bytes the recorded map does not know yet (written after it was last
    /// saved) are listed in the write log; without a log (older state), the staging file's data
    /// extents past the server's end show them. Returns the bytes added to the dirty map.
    public mutating func adoptUnrecorded(
        logged: [(offset: Int64, count: Int64)], extents: [(Int64, Int64)], stagingSize: Int64
    ) -> Int64 {
        var added: Int64 = 0
        for (offset, count) in logged where count > 0 {
            let before = dirty.byteCount
            dirty.insert(offset, offset + count)
            added += dirty.byteCount - before
            size = max(size, offset + count)
        }
        // Extents are block-granular: below the server's end (or the copy source's) a block may
        // mix staged and real bytes, so only the recorded map counts there; past it unwritten
        // bytes are zeros anyway.
        let floor = max(effectiveRemote, baseID == nil ? 0 : baseSize)
        for (a, hi) in extents where hi > floor {
            let lo = max(a, floor)
            let before = dirty.byteCount
            dirty.insert(lo, hi)
            added += dirty.byteCount - before
        }
        if stagingSize > size { size = stagingSize }
        return added
    }

    public enum Step: Sendable, Hashable {
        /// TRUNCATE `fileID` to this size: a pending shrink, or a grow over a hole (the storage
        /// extends the file sparsely with zeros, so no zero byte crosses the network).
        case truncate(Int64)
        /// MODIFY bytes `[lo, hi)` at offset `lo`, which is at most the server's size: inside the
        /// server's file it overwrites, at its end it extends the file. Never APPEND: an APPEND
        /// has no offset, so it lands wherever the receiving storage's copy ends.
        case modify(Int64, Int64)
        /// UPLOAD_APPENDER of `[0, hi)` (creates `fileID`).
        case upload(Int64)
    }

    /// Holes past the server's end at least this long are made with a TRUNCATE; shorter ones are
    /// sent as zeros with the bytes after them.
    public static let holeThreshold: Int64 = 64 << 10

    /// The requests that bring the server up to date, in order. `final` ships everything
    /// (fsync/close); otherwise dirty ranges inside the server's file and whole `chunk`s of the
    /// known content past its end (sequential writes stream out while the file is written).
    /// The plan's length depends on the dirty ranges and the bytes to send, never on the size
    /// alone: a file grown to a petabyte costs one TRUNCATE.
    public func plan(chunk: Int64, final: Bool) -> [Step] {
        var steps: [Step] = []
        if fileID != nil, let t = truncateTo, t < remoteSize { steps.append(.truncate(t)) }
        let remote = effectiveRemote
        for r in dirty.intersection(0, remote) {
            var a = r.lo
            while a < r.hi { let b = min(r.hi, a + chunk); steps.append(.modify(a, b)); a = b }
        }
        // Known content past the server's end: dirty bytes, and the copy-on-write source.
        var avail = dirty
        if baseID != nil { avail.insert(0, min(baseSize, size)) }
        var hasFile = fileID != nil
        var cursor = remote  // the server's size once the steps so far are done
        for r in avail.intersection(remote, size) {
            // A short gap before the run is sent as zeros; a long one is grown with TRUNCATE.
            let start = r.lo - cursor < Self.holeThreshold ? cursor : r.lo
            let end = final ? r.hi : start + (r.hi - start) / chunk * chunk
            if end <= start { break }  // less than a chunk: waits for more bytes (or the sync)
            if !hasFile && start > 0 {
                steps.append(.upload(0))  // an empty appender file, grown below
                hasFile = true
            }
            if start > cursor { steps.append(.truncate(start)) }
            var a = start
            while a < end {
                let b = min(end, a + chunk)
                steps.append(hasFile ? .modify(a, b) : .upload(b))
                hasFile = true
                a = b
            }
            cursor = end
            if end < r.hi { break }
        }
        if final {
            if !hasFile && (wantsFile || size > 0) {
                steps.append(.upload(0))
                hasFile = true
            }
            if cursor < size { steps.append(.truncate(size)) }  // the tail is a hole
        }
        return steps
    }
}
