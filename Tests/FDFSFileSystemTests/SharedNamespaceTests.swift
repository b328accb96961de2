import FDFSFileSystem
@testable import FDFSNamingPostgres
import Foundation
import FuseTypes
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Two engines on one PostgreSQL namespace are two hosts sharing a tree: operations are atomic
/// across them, changes reach the other within the change feed's delay, and deletes wait for
/// every host's open handles (or their session's expiry).
@Suite("Shared namespace (PostgreSQL)", .serialized)
struct SharedNamespaceTests {
    let root = NamingStore.rootID

    func twoHosts(ttl: Int = 60, onB: @escaping @Sendable (RemoteChange) -> Void = { _ in }) async throws -> (PostgresNamingStore, PostgresNamingStore) {
        let ns = freshNamespace()
        let a = try await makePostgresEngine(namespace: ns, sessionTTL: ttl)
        let b = try await makePostgresEngine(namespace: ns, sessionTTL: ttl, onRemoteChange: onB)
        return (a, b)
    }

    @Test func twoHostsCreatingOneNameOneWins() async throws {
        let (a, b) = try await twoHosts()
        defer { shutdownLater(a); shutdownLater(b) }
        for round in 0..<10 {
            let name = FileName("race\(round)")
            let results = await withTaskGroup(of: Int32.self) { g -> [Int32] in
                for e in [a, b, a, b] {
                    g.addTask {
                        do { _ = try await e.create(parent: NamingStore.rootID, name: name, mode: fileMode, uid: 0, gid: 0); return 0 }
                        catch let err as FSError { return err.errno } catch { return -1 }
                    }
                }
                return await g.reduce(into: []) { $0.append($1) }
            }
            #expect(results.filter { $0 == 0 }.count == 1, "round \(round): \(results)")
            #expect(results.filter { $0 == EEXIST }.count == 3, "round \(round): \(results)")
        }
    }

    @Test func directoriesRenamedIntoEachOtherNeverMakeACycle() async throws {
        let (a, b) = try await twoHosts()
        defer { shutdownLater(a); shutdownLater(b) }
        for round in 0..<8 {
            let x = try await a.create(parent: root, name: FileName("x\(round)"), mode: dirMode, uid: 0, gid: 0)
            let y = try await a.create(parent: root, name: FileName("y\(round)"), mode: dirMode, uid: 0, gid: 0)
            async let r1: Int32 = { do { _ = try await a.rename(parent: root, name: FileName("x\(round)"), newParent: y.id, newName: "in", flags: 0); return 0 } catch let e as FSError { return e.errno } catch { return -1 } }()
            async let r2: Int32 = { do { _ = try await b.rename(parent: root, name: FileName("y\(round)"), newParent: x.id, newName: "in", flags: 0); return 0 } catch let e as FSError { return e.errno } catch { return -1 } }()
            let results = await [r1, r2]
            #expect(results.filter { $0 == 0 }.count == 1 && results.contains(EINVAL), "round \(round): \(results)")
            // Both directories still hang from the root (no lost subtree).
            for id in [x.id, y.id] {
                var cur = id, steps = 0
                while cur != root && steps < 10 { cur = try await b.parentOf(directory: cur); steps += 1 }
                #expect(cur == root, "round \(round): \(id) is cut off from the root")
            }
        }
    }

    @Test func exchangeAndNoReplaceAcrossHosts() async throws {
        let (a, b) = try await twoHosts()
        defer { shutdownLater(a); shutdownLater(b) }
        let f = try await a.create(parent: root, name: "f", mode: fileMode, uid: 0, gid: 0)
        let g = try await a.create(parent: root, name: "g", mode: fileMode, uid: 0, gid: 0)
        _ = try await b.lookup(parent: root, name: "f")
        _ = try await b.rename(parent: root, name: "f", newParent: root, newName: "g", flags: RENAME_EXCHANGE_FLAG)
        try await eventually { try await a.lookup(parent: root, name: "f")?.id == g.id }
        #expect(try await a.lookup(parent: root, name: "g")?.id == f.id)
        await expectErrno(EEXIST) { _ = try await a.rename(parent: root, name: "f", newParent: root, newName: "g", flags: RENAME_NOREPLACE_FLAG) }
    }

    @Test func changesReachTheOtherHostsCacheAndKernel() async throws {
        let seen = Mutex<[RemoteChange]>([])
        let (a, b) = try await twoHosts(onB: { c in seen.withLock { $0.append(c) } })
        defer { shutdownLater(a); shutdownLater(b) }
        #expect(try await b.lookup(parent: root, name: "new") == nil)   // cached as absent
        let n = try await a.create(parent: root, name: "new", mode: fileMode, uid: 0, gid: 0)
        try await eventually { try await b.lookup(parent: root, name: "new")?.id == n.id }
        #expect(seen.withLock { $0.contains { $0.entries.contains(DirEntryKey(parent: NamingStore.rootID, name: "new")) } })
        _ = try await b.node(n.id)   // cached
        _ = try await a.setAttributes(n.id, mode: 0o600, uid: nil, gid: nil, size: nil, atime: nil, mtime: nil)
        try await eventually { try await b.node(n.id)?.mode == UInt32(S_IFREG) | 0o600 }
        #expect(seen.withLock { $0.contains { $0.nodes.contains(n.id) } })
        // Own changes are not reported back.
        let before = seen.withLock { $0.count }
        _ = try await b.create(parent: root, name: "mine", mode: fileMode, uid: 0, gid: 0)
        try await Task.sleep(for: .milliseconds(300))
        #expect(seen.withLock { $0.count } == before)
    }

    @Test func closeToOpenSeesTheOtherHostsData() async throws {
        let (a, b) = try await twoHosts()
        defer { shutdownLater(a); shutdownLater(b) }
        let f = try await a.create(parent: root, name: "f", mode: fileMode, uid: 0, gid: 0)
        _ = try await a.commitWrite(f.id, fileID: "group1/M00/00/00/one", size: 3, dropStaged: false)
        let first = try #require(try await b.opened(f.id, forWriting: false))
        #expect(first.node.fileID == "group1/M00/00/00/one")
        _ = try await b.closed(f.id)
        let again = try #require(try await b.opened(f.id, forWriting: false))
        #expect(again.unchanged)
        _ = try await b.closed(f.id)
        let queued = try await a.commitWrite(f.id, fileID: "group1/M00/00/00/two", size: 5, dropStaged: false)
        #expect(queued?.fileID == "group1/M00/00/00/one", "the replaced file's delete is queued")
        let third = try #require(try await b.opened(f.id, forWriting: false))
        #expect(third.node.fileID == "group1/M00/00/00/two" && third.node.size == 5 && !third.unchanged)
        _ = try await b.closed(f.id)
    }

    @Test func unlinkedWhileOpenElsewhereIsDeletedAtTheLastClose() async throws {
        let (a, b) = try await twoHosts()
        defer { shutdownLater(a); shutdownLater(b) }
        let f = try await a.create(parent: root, name: "f", mode: fileMode, uid: 0, gid: 0, fileID: "group1/M00/00/00/held")
        _ = try #require(try await a.opened(f.id, forWriting: false))
        let gone = try await b.remove(parent: root, name: "f", directory: false)
        #expect(gone.nlink == 0)
        #expect(try await b.purge(f.id) == nil, "held open on host a")
        #expect(try await b.orphans().isEmpty, "a node held open is no orphan")
        #expect(try await a.node(f.id)?.fileID == "group1/M00/00/00/held", "still readable on a")
        let queued = try await a.closed(f.id)
        #expect(queued?.fileID == "group1/M00/00/00/held")
        #expect(try await b.pendingDeletes().map(\.fileID).contains("group1/M00/00/00/held"))
    }

    @Test func writersOpeningOneFileSeeEachOtherAndAReplacedFileWaitsForTheOtherClose() async throws {
        let (a, b) = try await twoHosts()
        defer { shutdownLater(a); shutdownLater(b) }
        let old = "group1/M00/00/00/old", fromB = "group1/M00/00/00/fromB"
        let f = try await a.create(parent: root, name: "f", mode: fileMode, uid: 0, gid: 0, fileID: old)
        let first = try #require(try await a.opened(f.id, forWriting: true))
        #expect(!first.elsewhere, "nobody else has it open")
        let second = try #require(try await b.opened(f.id, forWriting: true))
        #expect(second.elsewhere, "host a has it open: b writes a copy of its own")
        // b closes first: its file replaces the old one, whose delete waits for a's close.
        #expect(try await b.commitWrite(f.id, fileID: fromB, size: 3, dropStaged: false) == nil)
        _ = try await b.closed(f.id)
        #expect(!(try await b.pendingDeletes().map(\.fileID).contains(old)), "a still has the node open")
        // a, which changed the old file in place, closes last: the old file is the name's again.
        let queued = try await a.commitWrite(f.id, fileID: old, size: 4, dropStaged: false)
        #expect(queued?.fileID == fromB)
        _ = try await a.closed(f.id)
        #expect(try await b.node(f.id)?.fileID == old)
        #expect(!(try await a.pendingDeletes().map(\.fileID).contains(old)), "the name's file is never deleted")
        // The other order: a commits a new file while b holds the node open; the delete of the
        // replaced one becomes pending when b closes.
        _ = try #require(try await b.opened(f.id, forWriting: false))
        #expect(try await a.commitWrite(f.id, fileID: "group1/M00/00/00/third", size: 5, dropStaged: false) == nil)
        #expect(!(try await a.pendingDeletes().map(\.fileID).contains(old)))
        _ = try await b.closed(f.id)
        #expect(try await a.pendingDeletes().map(\.fileID).contains(old))
    }

    @Test func aDirectoryThisMountMadeAnswersNewNamesFromMemoryUntilAnotherMountChangesIt() async throws {
        let (a, b) = try await twoHosts()
        defer { shutdownLater(a); shutdownLater(b) }
        try await eventually { a.feedUp.load(ordering: .relaxed) }
        let d = try await a.create(parent: root, name: "fresh", mode: dirMode, uid: 0, gid: 0)
        guard case .absent? = a.cachedEntry(parent: d.id, name: "new") else { Issue.record("a new directory is complete"); return }
        let f = try await a.create(parent: d.id, name: "new", mode: fileMode, uid: 0, gid: 0)
        guard case .child(f.id)? = a.cachedEntry(parent: d.id, name: "new") else { Issue.record("its own create is cached"); return }
        _ = try await a.remove(parent: d.id, name: "new", directory: false)
        guard case .absent? = a.cachedEntry(parent: d.id, name: "new") else { Issue.record("its own remove keeps it complete"); return }
        let g = try await a.create(parent: d.id, name: "old", mode: fileMode, uid: 0, gid: 0)
        _ = try await a.rename(parent: d.id, name: "old", newParent: d.id, newName: "renamed", flags: 0)
        guard case .child(g.id)? = a.cachedEntry(parent: d.id, name: "renamed"), case .absent? = a.cachedEntry(parent: d.id, name: "old") else {
            Issue.record("its own rename keeps it complete"); return
        }
        // Another mount creates a name in it: a sees it (the directory is no longer complete).
        let other = try await b.create(parent: d.id, name: "theirs", mode: fileMode, uid: 0, gid: 0)
        try await eventually { try await a.lookup(parent: d.id, name: "theirs")?.id == other.id }
        #expect(try await a.lookup(parent: d.id, name: "none") == nil)
    }

    @Test func aDirectoryLookedUpNameByNameIsReadWholeAtItsSecondMiss() async throws {
        let (a, b) = try await twoHosts()
        defer { shutdownLater(a); shutdownLater(b) }
        try await eventually { a.feedUp.load(ordering: .relaxed) }
        let d = try await b.create(parent: root, name: "theirs", mode: dirMode, uid: 0, gid: 0)
        var files: [Node] = []
        for i in 0..<5 { files.append(try await b.create(parent: d.id, name: FileName("f\(i)"), mode: fileMode, uid: 0, gid: 0)) }
        try await Task.sleep(for: .milliseconds(200))   // b's notifications reach a
        #expect(try await a.lookup(parent: d.id, name: "f0")?.id == files[0].id)
        #expect(!a.cache.isComplete(d.id), "one lookup reads one name")
        #expect(try await a.lookup(parent: d.id, name: "f1")?.id == files[1].id)
        #expect(a.cache.isComplete(d.id), "the second miss reads the directory")
        guard case .child(files[4].id)? = a.cachedEntry(parent: d.id, name: "f4"), case .absent? = a.cachedEntry(parent: d.id, name: "nope") else {
            Issue.record("every name of the directory is in memory"); return
        }
        // b adds a name: a's copy of the directory is no longer complete, and a finds the name.
        let late = try await b.create(parent: d.id, name: "late", mode: fileMode, uid: 0, gid: 0)
        try await eventually { try await a.lookup(parent: d.id, name: "late")?.id == late.id }
    }

    @Test func closesInOneGroupCommitEachGetTheirOwnAnswer() async throws {
        let (a, b) = try await twoHosts()
        defer { shutdownLater(a); shutdownLater(b) }
        var ids: [Int64] = []
        for i in 0..<12 {
            let f = try await a.create(parent: root, name: FileName("g\(i)"), mode: fileMode, uid: 0, gid: 0, fileID: "group1/M00/00/00/g\(i)")
            _ = try #require(try await a.opened(f.id, forWriting: false))
            ids.append(f.id)
        }
        // Every other file loses its name elsewhere while open here: its close queues its delete.
        for i in stride(from: 0, to: 12, by: 2) { _ = try await b.remove(parent: root, name: FileName("g\(i)"), directory: false) }
        let answers = try await withThrowingTaskGroup(of: (Int, String?).self) { g in
            for (i, id) in ids.enumerated() { g.addTask { (i, try await a.closed(id)?.fileID) } }
            return try await g.reduce(into: [Int: String?]()) { $0[$1.0] = $1.1 }
        }
        for i in 0..<12 {
            let want: String? = i % 2 == 0 ? "group1/M00/00/00/g\(i)" : nil
            #expect((answers[i] ?? nil) == want, "close \(i): \(String(describing: answers[i]))")
        }
    }

    @Test func aDeadHostsSessionExpiresAndReleasesItsFiles() async throws {
        let (a, b) = try await twoHosts(ttl: 3)
        defer { shutdownLater(b) }
        let f = try await a.create(parent: root, name: "f", mode: fileMode, uid: 0, gid: 0, fileID: "group1/M00/00/00/orphan")
        _ = try #require(try await a.opened(f.id, forWriting: false))
        a.abandonForTesting()   // SIGKILL: no more heartbeats, no goodbye
        _ = try await b.remove(parent: root, name: "f", directory: false)
        #expect(try await b.purge(f.id) == nil)
        try await Task.sleep(for: .seconds(4))
        await b.heartbeat()   // a live mount's periodic sweep
        #expect(try await b.node(f.id) == nil)
        #expect(try await b.pendingDeletes().map(\.fileID).contains("group1/M00/00/00/orphan"))
    }

    @Test func aNewerSchemaIsRefusedWithBothVersions() async throws {
        let ns = freshNamespace()
        let a = try await makePostgresEngine(namespace: ns)
        try await a.executeForTesting("UPDATE \(a.target.schema).meta SET value = '99' WHERE key = 'schema_version'")
        await a.shutdown()
        do {
            _ = try await makePostgresEngine(namespace: ns)
            Issue.record("a newer schema must be refused")
        } catch let e as FSError {
            #expect(e.message.contains("99") && e.message.contains("\(PostgresSchema.version)"), "\(e.message)")
        }
    }

    @Test func operationsCommitWithoutWaitingForTheDiskAndFsyncWaits() async throws {
        let (a, b) = try await twoHosts()
        defer { shutdownLater(a); shutdownLater(b) }
        #expect(try await a.settingForTesting("synchronous_commit") == "off")
        let f = try await a.create(parent: root, name: "synced", mode: fileMode, uid: 0, gid: 0)
        try await a.syncToDisk()
        #expect(try await b.node(f.id) != nil, "committed changes are every mount's at once")
    }

    @Test func aVersionOneNamespaceIsMigrated() async throws {
        let ns = freshNamespace()
        let a = try await makePostgresEngine(namespace: ns)
        let schema = a.target.schema
        let f = try await a.create(parent: root, name: "kept", mode: fileMode, uid: 0, gid: 0, fileID: "group1/M00/00/00/v1")
        // What version 1 created: no hold_ino column.
        try await a.executeForTesting("ALTER TABLE \(schema).pending_deletes DROP COLUMN hold_ino")
        try await a.executeForTesting("UPDATE \(schema).meta SET value = '1' WHERE key = 'schema_version'")
        await a.shutdown()
        let b = try await makePostgresEngine(namespace: ns)
        defer { shutdownLater(b) }
        #expect(try await b.node(f.id)?.fileID == "group1/M00/00/00/v1", "the tree is kept")
        _ = try #require(try await b.opened(f.id, forWriting: true))
        #expect(try await b.commitWrite(f.id, fileID: "group1/M00/00/00/v2", size: 1, dropStaged: false)?.fileID == "group1/M00/00/00/v1")
        _ = try await b.closed(f.id)
    }

    @Test func anUnreachableDatabaseFailsWithEIOInBoundedTime() async throws {
        var t = try postgresTarget(namespace: "nothing")
        t.port = 1   // nothing listens there
        let e = try PostgresNamingStore(target: t, stagedPath: nil, timeout: 1)
        let start = ContinuousClock.now
        await expectErrno(EIO) { try await e.open() }
        #expect(ContinuousClock.now - start < .seconds(5))
        await e.shutdown()
    }

    @Test(arguments: EngineKind.allCases) func dumpLoadRoundTripIntoEveryEngine(from: EngineKind) async throws {
        let src = try await makeEngine(from)
        defer { shutdownLater(src) }
        let d = try await src.create(parent: root, name: "docs", mode: dirMode, uid: 10, gid: 20)
        _ = try await src.create(parent: d.id, name: FileName(bytes: [0x62, 0xff, 0x00 + 0x41]), mode: fileMode, uid: 1, gid: 2,
                                 target: nil, fileID: "group1/M00/00/00/abc.jpg", size: 1234, rdev: 0)
        _ = try await src.create(parent: d.id, name: "link", mode: UInt32(S_IFLNK) | 0o777, uid: 0, gid: 0, target: FileName(bytes: [0x2e, 0xfe]))
        let pending = try await src.create(parent: root, name: "pending", mode: fileMode, uid: 0, gid: 0)
        try await src.setPendingMetadata(pending.id, key: "author", value: "me")
        let dump1 = try await src.dump()
        for to in EngineKind.allCases {
            let dst = try await makeEngine(to)
            try await dst.load(dump1)
            let dump2 = try await dst.dump()
            #expect(dump2 == dump1, "\(from) → \(to)")
            #expect(try await String(decoding: dump2.json(), as: UTF8.self) == String(decoding: dump1.json(), as: UTF8.self))
            // New nodes continue after the loaded ids.
            let fresh = try await dst.create(parent: root, name: "after-load", mode: fileMode, uid: 0, gid: 0)
            #expect(fresh.id > dump1.nodes.map(\.id).max()!)
            await expectErrno(ENOTEMPTY) { try await dst.load(dump1) }
            await dst.shutdown()
        }
    }
}

/// Polls until `condition` holds (the change feed is asynchronous), for at most 1 s: the bound
/// the issue sets for a change to show on another mount.
func eventually(within: Duration = .seconds(1), _ condition: () async throws -> Bool,
                sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let end = ContinuousClock.now + within
    while ContinuousClock.now < end {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    #expect(try await condition(), "not within \(within)", sourceLocation: sourceLocation)
}
