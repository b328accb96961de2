import FuseTypes

/// The decisions of one file's write-back, with no I/O (issue 13): which request to send next,
/// what a request's success or failure changes, when streaming pauses. `FileWriter` (an actor)
/// feeds it past-tense events — bytes staged, step succeeded, step failed — and carries out the
/// actions it returns (send this step; punch these staged ranges) with the network and disk I/O
/// outside any lock, so staging the next chunk overlaps sending the previous one.
///
/// One request is in flight at a time. Bytes written into the range of the request in flight
/// are remembered (`writtenDuringFlight`): when it succeeds they stay dirty (the server got the
/// older bytes) and their staged copy is not punched.
struct FileWriterStateMachine: Sendable {
    var state: WriteState
    let chunk: Int64
    /// Seconds streaming waits after a failed request (a dead storage must not cost every write
    /// a connect timeout); durability points still try at once.
    static let backoff: Double = 5

    private(set) var inFlight: WriteState.Step?
    private(set) var writtenDuringFlight = DirtyRanges()
    /// The last request error (nil after a success or a commit).
    private(set) var lastError: FSError?
    /// When the last request failed (the injected clock's seconds).
    private(set) var lastFailure: Double?
    /// After a failure or a restart: the durability point checks the size on the source.
    var mustVerify = false

    init(state: WriteState, chunk: Int64) {
        self.state = state
        self.chunk = chunk
    }

    // MARK: - Events

    /// A write of `count` bytes at `offset` reached the staging file.
    mutating func bytesStaged(offset: Int64, count: Int64) {
        state.wrote(offset, count)
        if let step = inFlight, let r = Self.range(of: step), offset < r.hi && offset + count > r.lo {
            writtenDuringFlight.insert(offset, offset + count)
        }
    }

    /// The step in flight succeeded (`uploadedID`: the id an UPLOAD created). Returns the staged
    /// ranges whose bytes are now on the server (to punch out of the staging file).
    mutating func stepSucceeded(uploadedID: String? = nil) -> [DirtyRanges.Range] {
        guard let step = inFlight else { return [] }
        var shipped: (Int64, Int64)?
        switch step {
        case .truncate(let t):
            state.remoteSize = t
            state.truncateTo = nil
        case .modify(let a, let b):
            state.remoteSize = max(state.remoteSize, b)
            shipped = (a, b)
        case .upload(let b):
            if let uploadedID { state.fileID = uploadedID }
            state.remoteSize = b
            state.truncateTo = nil
            shipped = (0, b)
        }
        var punch: [DirtyRanges.Range] = []
        if let (a, b) = shipped {
            state.dirty.remove(a, b)
            // Bytes written while the request was on its way are newer than what it carried.
            let newer = writtenDuringFlight.intersection(a, b)
            for r in newer { state.dirty.insert(r.lo, r.hi) }
            var sent = DirtyRanges([(a, b)])
            for r in newer { sent.remove(r.lo, r.hi) }
            punch = sent.ranges
        }
        // Copy on write is complete once the new file holds every byte of the old one.
        if state.baseID != nil, state.fileID != nil, state.remoteSize >= state.baseSize {
            state.baseID = nil
            state.baseSize = 0
        }
        inFlight = nil
        writtenDuringFlight = DirtyRanges()
        lastError = nil
        lastFailure = nil
        return punch
    }

    /// The step in flight failed: it may have been applied in part, so the server's size is
    /// uncertain until settled, and the durability point will verify it.
    mutating func stepFailed(_ error: FSError, now: Double) {
        if state.fileID != nil { state.remoteUncertain = true }
        mustVerify = true
        requestFailed(error, now: now)
        inFlight = nil
        writtenDuringFlight = DirtyRanges()
    }

    /// A request outside the steps (settling, verifying, committing) failed.
    mutating func requestFailed(_ error: FSError, now: Double) {
        lastError = error
        lastFailure = now
    }

    /// The durability point recorded the file: nothing pending, no error.
    mutating func committed() {
        lastError = nil
        lastFailure = nil
    }

    // MARK: - Decisions

    /// While writing: the next request to send, if one can start now (none in flight, a whole
    /// chunk is staged, not backing off after a failure). It becomes the step in flight.
    mutating func nextStreamingStep(now: Double) -> WriteState.Step? {
        guard inFlight == nil, state.slave == nil, state.dirty.byteCount >= chunk, !backingOff(now: now),
            let step = state.plan(chunk: chunk, final: false).first
        else { return nil }
        inFlight = step
        return step
    }

    /// At a durability point: the next request of everything that is left, and whether it is the
    /// last one. It becomes the step in flight. nil when nothing is left (or one is in flight).
    mutating func nextFinalStep() -> (step: WriteState.Step, isLast: Bool)? {
        guard inFlight == nil else { return nil }
        let steps = state.plan(chunk: chunk, final: true)
        guard let first = steps.first else { return nil }
        inFlight = first
        return (first, steps.count == 1)
    }

    func backingOff(now: Double) -> Bool {
        lastFailure.map { now - $0 < Self.backoff } ?? false
    }

    /// Writes wait for the request in flight once two chunks are staged: streaming keeps a few
    /// MiB locally, not the whole file.
    var shouldThrottle: Bool { inFlight != nil && state.dirty.byteCount >= 2 * chunk }

    /// The byte range a step carries (nil for TRUNCATE).
    static func range(of step: WriteState.Step) -> (lo: Int64, hi: Int64)? {
        switch step {
        case .truncate: nil
        case .modify(let a, let b): (a, b)
        case .upload(let b): (0, b)
        }
    }
}
