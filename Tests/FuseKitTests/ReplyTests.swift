import Testing
import CFuse3
import FuseTypes
import Synchronization
@testable import FuseKit
#if canImport(Glibc)
import Glibc
#endif

/// Records every reply instead of sending it; `interrupted` makes each reply answer -ENOENT,
/// as libfuse does when the kernel no longer waits for the request.
final class RecordingSink: ReplySink {
    enum Sent: Equatable {
        case error(Int32), entry(UInt64), create(UInt64, fh: UInt64), open(fh: UInt64, keepCache: Bool)
        case attr(UInt64, Double), readlink(FileName), buffer([UInt8]), write(Int), statfs(UInt64)
        case xattrSize(Int), lock(FileLock?), directory(names: [FileName], used: Int, plus: Bool)
    }
    let sent = Mutex<[Sent]>([])
    let interrupted: Bool
    init(interrupted: Bool = false) { self.interrupted = interrupted }

    var all: [Sent] { sent.withLock { $0 } }
    private func record(_ s: Sent) -> Int32 {
        sent.withLock { $0.append(s) }
        return interrupted ? -ENOENT : 0
    }

    func error(_ errno: Int32) -> Int32 { record(.error(errno)) }
    func entry(_ e: Entry) -> Int32 { record(.entry(e.attr.ino)) }
    func create(_ e: Entry, _ o: Opened, _ info: fuse_file_info) -> Int32 { record(.create(e.attr.ino, fh: o.fh)) }
    func open(_ o: Opened, _ info: fuse_file_info) -> Int32 { record(.open(fh: o.fh, keepCache: o.keepCache)) }
    func attr(_ a: Attr, timeout: Double) -> Int32 { record(.attr(a.ino, timeout)) }
    func readlink(_ target: FileName) -> Int32 { record(.readlink(target)) }
    func buffer(_ bytes: [UInt8]) -> Int32 { record(.buffer(bytes)) }
    func write(_ count: Int) -> Int32 { record(.write(count)) }
    func statfs(_ s: StatFS) -> Int32 { record(.statfs(s.blocks)) }
    func xattrSize(_ n: Int) -> Int32 { record(.xattrSize(n)) }
    func lock(_ l: FileLock?) -> Int32 { record(.lock(l)) }
    func directory(_ page: DirectoryPage) -> Int32 { record(.directory(names: page.entries.map(\.name), used: page.used, plus: page.plus)) }
}

/// What the replies took back or granted.
final class HookRecorder: Sendable {
    enum Call: Equatable { case forget(UInt64, UInt64), grant([UInt64]), releaseFile(UInt64, UInt64), releaseDir(UInt64, UInt64) }
    let calls = Mutex<[Call]>([])
    var all: [Call] { calls.withLock { $0 } }
    var hooks: ReplyHooks {
        ReplyHooks(forget: { i, n in self.calls.withLock { $0.append(.forget(i, n)) } },
                   grantLookups: { inos in self.calls.withLock { $0.append(.grant(inos)) } },
                   releaseFile: { i, fh in self.calls.withLock { $0.append(.releaseFile(i, fh)) } },
                   releaseDir: { i, fh in self.calls.withLock { $0.append(.releaseDir(i, fh)) } })
    }
    /// Waits for the calls a reply makes from a Task (releases).
    func eventually(_ n: Int) async -> [Call] {
        for _ in 0..<500 where all.count < n { try? await Task.sleep(for: .milliseconds(2)) }
        return all
    }
}

private func file(_ ino: UInt64) -> Entry { Entry(attr: Attr(ino: ino, mode: UInt32(Glibc.S_IFREG) | 0o644), attrTimeout: 1, entryTimeout: 1) }

@Suite("Typed FUSE replies, through a recording sink")
struct ReplyTests {
    @Test func eachShapeSendsItsOwnReply() {
        let sink = RecordingSink(), h = HookRecorder()
        Reply<EntryReply>(sink, "lookup", hooks: h.hooks).send(file(7))
        Reply<AttrReply>(sink, "getattr", hooks: h.hooks).send((file(7).attr, 2.5))
        Reply<EmptyReply>(sink, "unlink", hooks: h.hooks).send(())
        Reply<WriteReply>(sink, "write", hooks: h.hooks).send(4096)
        Reply<DataReply>(sink, "read", hooks: h.hooks).send([1, 2, 3])
        Reply<ReadlinkReply>(sink, "readlink", hooks: h.hooks).send("target")
        Reply<LockReply>(sink, "getlk", hooks: h.hooks).send(nil)
        #expect(sink.all == [.entry(7), .attr(7, 2.5), .error(0), .write(4096), .buffer([1, 2, 3]), .readlink("target"), .lock(nil)])
        #expect(h.all.isEmpty, "a reply the kernel took takes nothing back")
    }

    @Test func xattrAnswersAreASizeTheValueOrERANGE() {
        let sink = RecordingSink(), h = HookRecorder()
        Reply<XattrReply>(sink, "getxattr", hooks: h.hooks).send(.resolve(value: [1, 2, 3], requestedSize: 0))
        Reply<XattrReply>(sink, "getxattr", hooks: h.hooks).send(.resolve(value: [1, 2, 3], requestedSize: 2))
        Reply<XattrReply>(sink, "getxattr", hooks: h.hooks).send(.resolve(value: [1, 2, 3], requestedSize: 3))
        #expect(sink.all == [.xattrSize(3), .error(ERANGE), .buffer([1, 2, 3])])
    }

    @Test func errorsAreTheirErrnoAndNeverZero() {
        let sink = RecordingSink(), h = HookRecorder()
        Reply<EntryReply>(sink, "lookup", hooks: h.hooks).fail(FSError(ENOENT, "gone", quiet: true))
        Reply<DataReply>(sink, "read", hooks: h.hooks).fail(FSError(0, "no errno"))
        #expect(sink.all == [.error(ENOENT), .error(EIO)])
    }

    @Test func aReplyDroppedUnsentAnswersEIO() {
        let sink = RecordingSink(), h = HookRecorder()
        do { _ = Reply<EntryReply>(sink, "lookup", hooks: h.hooks) }
        #expect(sink.all == [.error(EIO)])
    }

    @Test func anInterruptedEntryGivesBackItsLookup() {
        let sink = RecordingSink(interrupted: true), h = HookRecorder()
        Reply<EntryReply>(sink, "mkdir", hooks: h.hooks).send(file(11))
        // A negative entry (ino 0) counts no lookup: nothing to give back.
        Reply<EntryReply>(sink, "lookup", hooks: h.hooks).send(Entry(attr: Attr(ino: 0, mode: 0), attrTimeout: 1, entryTimeout: 1))
        #expect(h.all == [.forget(11, 1)])
    }

    @Test func anInterruptedCreateGivesBackItsLookupAndClosesItsHandle() async {
        let sink = RecordingSink(interrupted: true), h = HookRecorder()
        Reply<CreateReply>(sink, "create", hooks: h.hooks).send((file(12), Opened(fh: 99, directIO: false, keepCache: false), fuse_file_info()))
        let calls = await h.eventually(2)
        #expect(calls == [.forget(12, 1), .releaseFile(12, 99)])
        #expect(sink.all == [.create(12, fh: 99)])
    }

    @Test func anInterruptedOpenClosesItsFileOrDirectoryHandle() async {
        let sink = RecordingSink(interrupted: true), h = HookRecorder()
        Reply<OpenReply>(sink, "open", hooks: h.hooks).send((Opened(fh: 5, directIO: false, keepCache: true), fuse_file_info(), 30))
        #expect(await h.eventually(1) == [.releaseFile(30, 5)])
        Reply<OpenDirReply>(sink, "opendir", hooks: h.hooks).send((Opened(fh: 6, directIO: false, keepCache: false), fuse_file_info(), 31))
        #expect(await h.eventually(2) == [.releaseFile(30, 5), .releaseDir(31, 6)])
    }

    @Test func anOpenTheKernelTookKeepsItsHandle() async throws {
        let sink = RecordingSink(), h = HookRecorder()
        Reply<OpenReply>(sink, "open", hooks: h.hooks).send((Opened(fh: 5, directIO: false, keepCache: true), fuse_file_info(), 30))
        try await Task.sleep(for: .milliseconds(20))
        #expect(sink.all == [.open(fh: 5, keepCache: true)] && h.all.isEmpty)
    }
}

@Suite("readdir packing")
struct DirectoryPackingTests {
    static func entries(_ n: Int, withAttributes: Bool) -> [DirEntry] {
        (0..<n).map { i in
            let name = FileName(String(repeating: "n", count: 1 + i % 13) + "\(i)")
            return DirEntry(name: name, ino: UInt64(100 + i), mode: UInt32(Glibc.S_IFREG) | 0o644, nextOffset: Int64(i + 1),
                            entry: withAttributes && i % 3 != 2 ? file(UInt64(100 + i)) : nil)
        }
    }

    @Test func sizesAgreeWithLibfusesOwn() {
        // fuse_add_direntry(_plus) with no buffer returns the size the entry takes.
        for name in ["a", "abcdefg", "abcdefgh", "a name of thirty-one characters", String(repeating: "x", count: 255)] {
            let st = stat()
            var p = cfuse_entry_param_zero()
            let plain = name.withCString { fuse_add_direntry(nil, nil, 0, $0, [st], 1) }
            let plus = name.withCString { fuse_add_direntry_plus(nil, nil, 0, $0, &p, 1) }
            #expect(DirectoryPage.packedSize(nameLength: name.utf8.count, plus: false) == plain, "\(name)")
            #expect(DirectoryPage.packedSize(nameLength: name.utf8.count, plus: true) == plus, "\(name)")
        }
    }

    @Test func aPageHoldsTheEntriesThatFitInOrder() {
        let all = Self.entries(50, withAttributes: false)
        for size in [0, 24, 31, 32, 100, 4096] {
            let page = DirectoryPage(all, size: size, plus: false)
            let want = all.map { DirectoryPage.packedSize(nameLength: $0.name.count, plus: false) }
            var fit = 0, used = 0
            while fit < want.count, used + want[fit] <= size { used += want[fit]; fit += 1 }
            #expect(page.entries.map(\.name) == all.prefix(fit).map(\.name) && page.used == used, "size \(size)")
            #expect(page.used <= size)
        }
    }

    @Test func readdirplusGrantsALookupPerEntryWithAttributesSent() {
        let sink = RecordingSink(), h = HookRecorder()
        let all = Self.entries(10, withAttributes: true)
        let size = (0..<4).reduce(0) { $0 + DirectoryPage.packedSize(nameLength: all[$1].name.count, plus: true) }
        Reply<DirectoryReply>(sink, "readdirplus", hooks: h.hooks).send((all, size, true))
        // Entries 0, 1, 3 carry attributes (2 does not); 4.. did not fit.
        #expect(h.all == [.grant([100, 101, 103])])
        #expect(sink.all == [.directory(names: all.prefix(4).map(\.name), used: size, plus: true)])
    }

    @Test func anInterruptedReaddirplusGivesBackItsLookups() {
        let sink = RecordingSink(interrupted: true), h = HookRecorder()
        let all = Self.entries(4, withAttributes: true)
        Reply<DirectoryReply>(sink, "readdirplus", hooks: h.hooks).send((all, 1 << 16, true))
        #expect(h.all == [.grant([100, 101, 103]), .forget(100, 1), .forget(101, 1), .forget(103, 1)])
    }

    @Test func plainReaddirGrantsNothing() {
        let sink = RecordingSink(interrupted: true), h = HookRecorder()
        Reply<DirectoryReply>(sink, "readdir", hooks: h.hooks).send((Self.entries(4, withAttributes: false), 1 << 16, false))
        #expect(h.all.isEmpty)
    }
}
