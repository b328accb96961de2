// Where a request about an existing file goes, so that a storage outage can never corrupt a file
// or hold a read (issue 9; protocol reference §3.3 and its appendix on appender changes).
//
// * Changes to an appender file (APPEND, MODIFY, TRUNCATE, REGENERATE) go to its source storage
//   only. QUERY_UPDATE names the source while it is ACTIVE and any writable storage otherwise,
//   whether or not that storage has the file and however far its copy lags; APPEND has no offset,
//   so on a lagging replica it lands at the wrong place and the copies diverge for good. The
//   tracker's answer is therefore checked against the source decoded from the file id (an IPv4
//   address, or a numeric storage id looked up in the group's storage list) and refused with
//   `.sourceUnavailable` (EIO) when it is another storage.
// * Reads of appender files come from the source, or from a storage whose QUERY_FILE_INFO size
//   and modify time equal what the caller expects (`FileVersion`).
// * Normal, trunk and slave files never change, so any storage that has them will do: a read
//   that fails (refused, reset, timed out, ENOENT on a lagging replica, or no byte for
//   `readStallTimeout` while another storage could serve it) moves to the next storage
//   (QUERY_FETCH_ALL, then the group's other ACTIVE storages). Failed storages are remembered
//   (`StorageHealth`) and tried last for `failedStorageAvoidTime`.

import FastDFSProtocol
import NIOCore
import Synchronization

/// What a reader expects an appender file to be, so a replica can stand in for an unavailable
/// source storage: its size and its modify time on the source (QUERY_FILE_INFO).
public struct FileVersion: Sendable, Hashable {
    public var size: Int64
    public var modifyTime: Int64
    public init(size: Int64, modifyTime: Int64) {
        self.size = size
        self.modifyTime = modifyTime
    }
}

extension FastDFSClient {
    // MARK: - The group's storage list

    /// The storages of `group` from LIST_STORAGE, reused for `storageListCacheTime`; read again
    /// when `refresh`. Concurrent callers share one request. A tracker that refuses the request
    /// (an error status) is remembered as "no list" for the same time, so reads fall back to the
    /// tracker's queries without asking again; a list that cannot be read for lack of a tracker
    /// falls back to the last one read (nil if none).
    func listedStorages(group: String, refresh: Bool = false) async -> [ListedStorage]? {
        let now = ContinuousClock.now
        let cached = groupStorageLists.withLock { $0[group] }
        if !refresh, let cached, cached.readAt.duration(to: now) < configuration.storageListCacheTime {
            return cached.storages
        }
        let fetch = groupStorageListFetches.withLock { fetches -> Task<[ListedStorage]?, Never> in
            if let running = fetches[group] { return running }
            let task = Task { await self.readStorageList(group: group, fallback: cached?.storages) }
            fetches[group] = task
            return task
        }
        let result = await fetch.value
        groupStorageListFetches.withLock { if $0[group] == fetch { $0[group] = nil } }
        return result
    }

    private func readStorageList(group: String, fallback: [ListedStorage]?) async -> [ListedStorage]? {
        do {
            let list = try await listStorages(group: group).map(ListedStorage.init)
            groupStorageLists.withLock { $0[group] = (.now, list) }
            return list
        } catch where error.code == .serverStatus {
            groupStorageLists.withLock { $0[group] = (.now, []) }
            return []
        } catch {
            return fallback
        }
    }

    /// The file's source storage as the group's storage list names it (nil when the id cannot be
    /// decoded or the list does not name exactly one storage).
    public func listedSource(of fileID: FileID) async -> ListedStorage? {
        guard let info = try? FileIDInfo.decode(filename: fileID.filename) else { return nil }
        if let list = await listedStorages(group: fileID.group),
            let s = SourceMatcher.source(for: info.source, in: list)
        {
            return s
        }
        guard let list = await listedStorages(group: fileID.group, refresh: true) else { return nil }
        return SourceMatcher.source(for: info.source, in: list)
    }

    /// The source's address when the group's storage list (as cached, not read again for this)
    /// names exactly one storage for it and lists it ACTIVE: reads can go there directly.
    func activeListedSource(_ fileID: FileID, source: FileIDInfo.Source) async -> StorageAddress? {
        guard let list = await listedStorages(group: fileID.group), let s = SourceMatcher.source(for: source, in: list),
            s.isActive
        else { return nil }
        return s.address
    }

    /// Whether `address` is the source storage of `fileID` (the list is read again once when
    /// the cached one does not say so).
    func isSource(_ address: StorageAddress, of fileID: FileID, source: FileIDInfo.Source) async -> Bool {
        if SourceMatcher.isSource(address, of: source, in: await listedStorages(group: fileID.group)) { return true }
        return SourceMatcher.isSource(address, of: source, in: await listedStorages(group: fileID.group, refresh: true))
    }

    // MARK: - Changes

    /// The storage to change `fileID` on: the tracker's QUERY_UPDATE answer when it is the
    /// file's source storage; otherwise `.sourceUnavailable`.
    func changeTarget(for fileID: FileID, command: FDFSCommand) async throws(FastDFSError) -> StorageAddress {
        let offered = try await queryUpdate(fileID)
        guard let info = try? FileIDInfo.decode(filename: fileID.filename) else { return offered }  // the server judges
        if await isSource(offered, of: fileID, source: info.source) { return offered }
        throw await sourceUnavailable(fileID, source: info.source, offered: offered, command: command)
    }

    func sourceUnavailable(
        _ fileID: FileID, source: FileIDInfo.Source, offered: StorageAddress?, command: FDFSCommand
    ) async -> FastDFSError {
        let listed = await listedStorages(group: fileID.group).flatMap { SourceMatcher.source(for: source, in: $0) }
        let name: String
        switch source {
        case .ipv4(let ip): name = listed.map { "\($0.address)" } ?? ip
        case .storageID(let n): name = "id \(n)" + (listed.map { " (\($0.address))" } ?? "")
        }
        var state = listed.map { $0.isActive ? "unreachable" : "not active (tracker status \(StorageStat.statusName($0.status)))" }
            ?? "not in the group's storage list"
        if let offered, listed?.isActive == true { state = "not the storage the tracker offers" }
        let offer = offered.map { "; the tracker offered \($0), whose copy may lag behind" } ?? ""
        return FastDFSError(
            code: .sourceUnavailable, command: command, server: listed?.address,
            message: "source storage \(name) of appender file \(fileID) is \(state)\(offer); appender files are "
                + "changed and read only on their source storage, so nothing was sent; try again when it is back",
            errno: LinuxErrno.EIO)
    }


    // MARK: - Reads

    /// The storages that may serve a read of `fileID`, best first, for callers that spread reads
    /// themselves: for appender files only the source (empty when it is not available); for
    /// other files QUERY_FETCH_ALL, recently failed storages last.
    public func readableStorages(of fileID: FileID) async throws(FastDFSError) -> [StorageAddress] {
        let info = try? FileIDInfo.decode(filename: fileID.filename)
        if let info, info.kind == .appender {
            let offered = try await queryFetch(fileID)
            return await isSource(offered, of: fileID, source: info.source) ? [offered] : []
        }
        let all = try await queryFetchAll(fileID)
        let now = ContinuousClock.now
        return storageHealth.withLock { $0.ordered(all, at: now) }
    }

    func noteStorageFailure(_ address: StorageAddress, _ error: FastDFSError) {
        guard Self.isUnreachable(error) else { return }
        let now = ContinuousClock.now
        storageHealth.withLock { $0.failed(address, at: now) }
        // The cached storage lists may still call it ACTIVE: read them again when next needed.
        groupStorageLists.withLock { $0.removeAll() }
    }

    func noteStorageSuccess(_ address: StorageAddress) {
        storageHealth.withLock { $0.succeeded(address) }
    }

    /// Errors that say the storage itself is unreachable or stuck (not that the file is missing).
    static func isUnreachable(_ error: FastDFSError) -> Bool {
        error.code == .connectFailed || error.code == .timeout || error.code == .connectionClosed
            || error.code == .readStalled
    }

    /// Errors after which another storage may do better.
    static func isWorthAnotherStorage(_ error: FastDFSError) -> Bool {
        if isUnreachable(error) { return true }
        if error.code == .serverStatus, let s = error.status { return s == .enoent || s == .eio }
        return false
    }

    /// Runs `attempt` on the storages that can serve a read of `fileID`, one after the other,
    /// moving to the next one when it fails in a way another storage may not (see
    /// `isWorthAnotherStorage`). While another storage is left, an attempt that receives nothing
    /// for `readStallTimeout` is abandoned (the client's `StallMonitor` closes its connection)
    /// and counts as a failure of that storage (`.readStalled`): the read moves on at once
    /// instead of waiting out the network timeout, and the stalled storage is asked again only
    /// when no other is left. The attempt runs in the caller's task: a read costs no child task.
    func withReadFailover<T: Sendable>(
        _ fileID: FileID, storage hint: StorageAddress?, expecting: FileVersion?, command: FDFSCommand,
        _ attempt: @escaping @Sendable (StorageAddress, ReadProgress) async throws(FastDFSError) -> T
    ) async throws(FastDFSError) -> T {
        var route = try await ReadRoute.start(client: self, fileID: fileID, hint: hint, expecting: expecting, command: command)
        while let target = await route.next(client: self) {
            let progress = ReadProgress()
            let token = route.isLastResort ? nil : stallMonitor.watch(progress)
            let result: Result<T, FastDFSError>
            do throws(FastDFSError) { result = .success(try await attempt(target, progress)) } catch { result = .failure(error) }
            if let token { stallMonitor.unwatch(token) }
            switch result {
            case .success(let value):
                noteStorageSuccess(target)
                return value
            case .failure(var error):
                if progress.wasAborted && !Task.isCancelled {
                    error = FastDFSError(code: .readStalled, command: command, server: target,
                        message: "received nothing for \(stallMonitor.limit) while another storage could serve the file; asking the next one",
                        errno: LinuxErrno.ETIMEDOUT)
                } else if Task.isCancelled || error.code == .cancelled {
                    throw error
                }
                noteStorageFailure(target, error)
                route.failed(target, error)
                guard Self.isWorthAnotherStorage(error) else { throw error }
            }
        }
        throw route.finalError
    }
}

/// What one read attempt has done so far (read by the client's `StallMonitor`): whether its
/// request went out (time spent waiting for a pooled connection is not a stall), how many bytes
/// came back, and the connection to close if it stalls (attached while the attempt owns it).
final class ReadProgress: Sendable {
    private let counter = Atomic<Int64>(0)
    private let sent = Atomic<Bool>(false)
    private let aborted = Atomic<Bool>(false)
    private let connection = Mutex<FDFSConnection?>(nil)
    var bytes: Int64 { counter.load(ordering: .relaxed) }
    var hasSent: Bool { sent.load(ordering: .relaxed) }
    var wasAborted: Bool { aborted.load(ordering: .acquiring) }
    /// A request was written to a storage: from now on silence counts.
    func began() { sent.store(true, ordering: .relaxed) }
    /// A request was written on `conn`, which a stall closes until `detach`.
    func began(on conn: FDFSConnection) {
        let abortedAlready = connection.withLock { c -> Bool in
            c = conn
            return aborted.load(ordering: .acquiring)
        }
        sent.store(true, ordering: .relaxed)
        if abortedAlready { conn.cancel() }
    }
    /// The attempt is done with its connection (before the connection goes back to the pool).
    func detach() { connection.withLock { $0 = nil } }
    func add(_ n: Int) { counter.add(Int64(n), ordering: .relaxed) }
    /// Something arrived (a reply header).
    func touch() { counter.add(1, ordering: .relaxed) }
    /// The attempt stalled: its connection is closed (its reads fail at once).
    func abort() {
        connection.withLock { c in
            aborted.store(true, ordering: .releasing)
            c?.cancel()
        }
    }
}

/// The storages to try for one read, in order (see `withReadFailover`).
struct ReadRoute {
    let fileID: FileID
    let command: FDFSCommand
    let isAppender: Bool
    private var queue: [StorageAddress]
    private var tried = Set<StorageAddress>()
    private var stalled: [StorageAddress] = []
    private var expanded: Bool
    private var errors: [FastDFSError] = []

    static func start(
        client: FastDFSClient, fileID: FileID, hint: StorageAddress?, expecting: FileVersion?, command: FDFSCommand
    ) async throws(FastDFSError) -> ReadRoute {
        let info = try? FileIDInfo.decode(filename: fileID.filename)
        if let info, info.kind == .appender {
            let target = try await client.appenderReadTarget(fileID, source: info.source, hint: hint, expecting: expecting, command: command)
            return ReadRoute(fileID: fileID, command: command, isAppender: true, queue: [target], expanded: true)
        }
        let first: StorageAddress
        do {
            if let hint {
                first = hint
            } else if let info, let source = await client.activeListedSource(fileID, source: info.source) {
                first = source  // the source has every file it created: no tracker round trip
            } else {
                first = try await client.queryFetch(fileID)
            }
        } catch where error.code == .connectFailed || error.code == .timeout {
            // No tracker: the group's last storage list still says where the file can be.
            guard let list = await client.listedStorages(group: fileID.group), !list.isEmpty else { throw error }
            var route = ReadRoute(fileID: fileID, command: command, isAppender: false, queue: [], expanded: false)
            route.errors.append(error)
            return route
        }
        var route = ReadRoute(fileID: fileID, command: command, isAppender: false, queue: [first], expanded: false)
        // A storage that failed a moment ago: look for another one first, keep it as a last resort.
        if client.storageHealth.withLock({ $0.isAvoided(first, at: .now) }) {
            route.queue = []
            route.stalled = [first]
        }
        return route
    }

    private init(fileID: FileID, command: FDFSCommand, isAppender: Bool, queue: [StorageAddress], expanded: Bool) {
        self.fileID = fileID
        self.command = command
        self.isAppender = isAppender
        self.queue = queue
        self.expanded = expanded
    }

    /// True when no other storage is known to be left (no point in a stall limit).
    var isLastResort: Bool { isAppender || (expanded && queue.count <= 1 && stalled.isEmpty) }

    /// The next storage to ask: the known ones not tried yet, then the ones that stalled.
    mutating func next(client: FastDFSClient) async -> StorageAddress? {
        if queue.isEmpty && !expanded {
            expanded = true
            var more: [StorageAddress] = []
            if let all = try? await client.queryFetchAll(fileID) { more += all }
            if let list = await client.listedStorages(group: fileID.group) {
                // The source first (it has every file it created), then the other ACTIVE ones.
                let source = (try? FileIDInfo.decode(filename: fileID.filename)).flatMap {
                    SourceMatcher.source(for: $0.source, in: list)
                }
                if let source, source.isActive { more.append(source.address) }
                more += list.filter(\.isActive).map(\.address)
            }
            let fresh = more.filter { !tried.contains($0) && !stalled.contains($0) }
            queue = client.storageHealth.withLock { $0.ordered(fresh, at: .now) }
        }
        if !queue.isEmpty {
            let next = queue.removeFirst()
            tried.insert(next)
            return next
        }
        if !stalled.isEmpty {
            let next = stalled.removeFirst()
            tried.insert(next)
            return next
        }
        return nil
    }

    mutating func failed(_ address: StorageAddress, _ error: FastDFSError) {
        errors.append(error)
        if error.code == .readStalled { stalled.append(address) }
    }

    /// What to report when every storage failed: ENOENT only when every storage tried said so
    /// (a storage that could not be reached may have the file: that is EIO, not "no such
    /// file"); otherwise the last error that was not ENOENT, naming how many storages were tried.
    var finalError: FastDFSError {
        guard let lastAny = errors.last else {
            return FastDFSError(code: .connectFailed, command: command, message: "no storage can serve \(fileID)",
                errno: LinuxErrno.EIO)
        }
        if errors.allSatisfy({ $0.status == .enoent }) { return lastAny }
        var last = errors.last(where: { $0.status != .enoent }) ?? lastAny
        let servers = Set(errors.compactMap(\.server)).count
        if servers > 1 { last.message += " (every storage that could serve the file failed: \(servers) tried)" }
        return last
    }
}

extension FastDFSClient {
    /// Where to read an appender file: `hint` (the caller knows the source), the tracker's
    /// answer when it is the source, or a storage whose size and modify time match `expecting`.
    func appenderReadTarget(
        _ fileID: FileID, source: FileIDInfo.Source, hint: StorageAddress?, expecting: FileVersion?, command: FDFSCommand
    ) async throws(FastDFSError) -> StorageAddress {
        if let hint { return hint }
        if let listed = await activeListedSource(fileID, source: source) { return listed }
        let offered = try await queryFetch(fileID)
        if await isSource(offered, of: fileID, source: source) { return offered }
        if let expecting {
            var candidates = [offered]
            if let list = await listedStorages(group: fileID.group) {
                candidates += list.filter(\.isActive).map(\.address).filter { $0 != offered }
            }
            for c in candidates {
                guard let info = try? await queryFileInfo(fileID, on: c, calculateCRC32: false) else { continue }
                if info.size == expecting.size && info.modifyTime == expecting.modifyTime { return c }
            }
        }
        throw await sourceUnavailable(fileID, source: source, offered: offered, command: command)
    }
}
