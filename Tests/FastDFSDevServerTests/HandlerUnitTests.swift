// The request logic without sockets: handlers called directly on a cluster in a temp directory,
// plus the small pure pieces (metadata records, filename validation, configuration).

import FastDFSProtocol
import Foundation
import NIOCore
import Testing

@testable import FastDFSDevServer

/// A cluster whose nodes are "active" on made-up ports, with prepared disks, and no listeners.
func makeCluster(
    compat: CompatLevel = .v6_16, storagesPerGroup: Int = 1, configure: (inout DevServerConfiguration) -> Void = { _ in }
) throws -> (ClusterState, String) {
    let dir = makeTemporaryDirectory("unit")
    var config = DevServerConfiguration.ephemeral(dataDirectory: dir, storagesPerGroup: storagesPerGroup, compat: compat)
    config.reservedSpaceMB = 0
    configure(&config)
    let cluster = ClusterState(configuration: config, now: 1_700_000_000)
    for (i, node) in cluster.allNodes.enumerated() {
        try node.disk.prepare()
        node.runtime.withLockedValue {
            $0.status = StorageStatusCode.active
            $0.running = true
            $0.port = 23000 + i
        }
    }
    return (cluster, dir)
}

func storageHandler(_ cluster: ClusterState, _ index: Int = 0) -> StorageHandler {
    let node = cluster.allNodes[index]
    return StorageHandler(node: node, cluster: cluster, log: ReplicationLog(directory: node.disk.syncDirectory))
}

/// Runs an upload through `startStream` / `write` / `finish` like the connection layer does.
func upload(_ handler: StorageHandler, _ data: [UInt8], appender: Bool = false) -> Reply {
    var head = ByteBuffer(bytes: [0] + Req.int64(Int64(data.count)) + Req.fixed("txt", 6))
    let command: UInt8 = appender ? 23 : 11
    guard case .accept(var sink) = handler.startStream(command: command, bodyLength: 15 + Int64(data.count), buffer: &head)
    else { return .error(FDFSErrno(rawValue: 255)) }
    // Two chunks, as a socket would deliver them.
    let half = data.count / 2
    try? sink.write(ByteBuffer(bytes: data[..<half]))
    try? sink.write(ByteBuffer(bytes: data[half...]))
    return handler.finish(sink)
}

func reply(_ result: HandlerResult) -> Reply? {
    if case .reply(let r) = result { return r }
    return nil
}

@Suite("Handlers without sockets")
struct HandlerUnitTests {
    @Test("tracker: query store, fetch for a file on one of two nodes, list groups")
    func tracker() throws {
        let (cluster, dir) = try makeCluster(storagesPerGroup: 2)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tracker = TrackerHandler(cluster: cluster)
        let store = reply(tracker.handle(command: 101, status: 0, body: ByteBuffer()))!
        #expect(store.status == 0 && store.body.readableBytes == 40)
        #expect(reply(tracker.handle(command: 101, status: 0, body: ByteBuffer(bytes: [1])))!.status == FDFSErrno.einval.rawValue)

        let up = upload(storageHandler(cluster, 1), Array("on node two".utf8))
        #expect(up.status == 0)
        var upBody = up.body
        let fileID = try UploadResponse.decode(body: &upBody).fileID
        let fetch = reply(
            tracker.handle(command: 102, status: 0, body: ByteBuffer(bytes: Req.fixed("group1", 16) + Req.bytes(fileID.filename))))!
        var fetchBody = fetch.body
        #expect(try QueryFetchResponse.decode(body: &fetchBody).server.port == 23001)
        let groups = reply(tracker.handle(command: 91, status: 0, body: ByteBuffer()))!
        #expect(groups.body.readableBytes == 113)
        #expect(tracker.handle(command: 82, status: 0, body: ByteBuffer()) == .quit)
    }

    @Test("storage: upload, metadata, info, delete through the handler")
    func storage() throws {
        let (cluster, dir) = try makeCluster()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let h = storageHandler(cluster)
        let up = upload(h, Array("0123456789".utf8), appender: true)
        var b = up.body
        let id = try UploadResponse.decode(body: &b).fileID
        #expect(id.group == "group1")
        let setMeta = ByteBuffer(bytes: Array(Req.setMetadata("group1", id.filename, Req.bytes("k\u{02}v")).dropFirst(10)))
        #expect(reply(h.handle(command: 13, status: 0, body: setMeta))!.status == 0)
        let get = reply(h.handle(command: 15, status: 0, body: ByteBuffer(bytes: Req.fixed("group1", 16) + Req.bytes(id.filename))))!
        #expect(String(buffer: get.body) == "k\u{02}v")
        let info = reply(h.handle(command: 22, status: 0, body: ByteBuffer(bytes: Req.fixed("group1", 16) + Req.bytes(id.filename))))!
        var infoBody = info.body
        #expect(try QueryFileInfoResponse.decode(body: &infoBody).crc32 == CRC32.checksum(Array("0123456789".utf8)))
        let truncate = ByteBuffer(bytes: Req.int64(Int64(id.filename.utf8.count)) + Req.int64(3) + Req.bytes(id.filename))
        #expect(reply(h.handle(command: 36, status: 0, body: truncate))!.status == 0)
        let plan = try h.prepareDownload(ByteBuffer(bytes: Req.int64(0) + Req.int64(0) + Req.fixed("group1", 16) + Req.bytes(id.filename))).get()
        #expect(plan.length == 3)
        close(plan.fd)
        let del = reply(h.handle(command: 12, status: 0, body: ByteBuffer(bytes: Req.fixed("group1", 16) + Req.bytes(id.filename))))!
        #expect(del.status == 0)
        let again = reply(h.handle(command: 12, status: 0, body: ByteBuffer(bytes: Req.fixed("group1", 16) + Req.bytes(id.filename))))!
        #expect(again.status == FDFSErrno.enoent.rawValue && !again.closeAfterSending)
        // The binlog recorded what the real one records: the upload, the new `-m` file, the
        // truncate with its sizes, the delete of the file and of its metadata.
        let ops = h.log.records(from: 0).map(\.op)
        #expect(
            ops == [
                .create(id.filename), .create(id.filename + "-m"), .truncate(id.filename, oldSize: 10, newSize: 3),
                .delete(id.filename), .delete(id.filename + "-m"),
            ])
    }

    @Test("upload head checks: bad length closes at once, bad extension is drained first")
    func uploadHeads() throws {
        let (cluster, dir) = try makeCluster()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let h = storageHandler(cluster)
        var short = ByteBuffer(bytes: [0] + Req.int64(5) + Req.fixed("txt", 6))
        guard case .reject(let r1, drain: false) = h.startStream(command: 11, bodyLength: 15 + 4, buffer: &short) else {
            Issue.record("length mismatch must be rejected without draining")
            return
        }
        #expect(r1.status == FDFSErrno.einval.rawValue && r1.closeAfterSending)
        var badExt = ByteBuffer(bytes: [0] + Req.int64(1) + Req.fixed("t/x", 6))
        guard case .reject(let r2, drain: true) = h.startStream(command: 11, bodyLength: 16, buffer: &badExt) else {
            Issue.record("bad extension must be drained then rejected")
            return
        }
        #expect(r2.status == FDFSErrno.einval.rawValue)
        var partial = ByteBuffer(bytes: [0, 0, 0])
        guard case .needMore = h.startStream(command: 11, bodyLength: 20, buffer: &partial) else {
            Issue.record("an incomplete head needs more bytes")
            return
        }
    }

    @Test("metadata records: truncation, sorting, merge")
    func metadataRecords() {
        let long = [UInt8](repeating: 0x61, count: 100)
        let unpacked = MetadataRecords.unpack(long + [2] + [UInt8](repeating: 0x62, count: 300) + [1, 0x7A] + [1] + [0x6B, 2, 0x76])
        #expect(unpacked.count == 2)
        #expect(unpacked[0].key.count == 64 && unpacked[0].value.count == 256)
        let merged = MetadataRecords.merge(
            old: MetadataRecords.sorted(MetadataRecords.unpack(Array("b\u{02}1\u{01}a\u{02}1".utf8))),
            new: MetadataRecords.unpack(Array("b\u{02}2\u{01}c\u{02}3".utf8)))
        #expect(MetadataRecords.pack(merged) == Array("a\u{02}1\u{01}b\u{02}2\u{01}c\u{02}3".utf8))
    }

    @Test("filename validation follows §8.3")
    func filenames() {
        #expect(StoredFilename.validate("M00/00/00/abcdefg.txt")?.relativePath == "00/00/abcdefg.txt")
        #expect(StoredFilename.validate("m00/00/00/abc") == nil || StoredFilename.validate("m00/00/00/abc")?.storePathIndex == 0)
        #expect(StoredFilename.validate("M00/0a/00/abc") == nil)
        #expect(StoredFilename.validate("M01/00/00/abc") == nil)
        #expect(StoredFilename.validate("M00/00/00/a/b") == nil)
        #expect(StoredFilename.validate("M00/00/00/..") == nil)
        #expect(StoredFilename.validate("M0000/00/ab") == nil)
        #expect(StoredFilename.validate("short") == nil)
        #expect(StoredFilename.validate("M00/00/00/" + String(repeating: "x", count: 120)) == nil)
    }

    @Test("configuration validation names the bad option")
    func configuration() {
        var c = DevServerConfiguration(dataDirectory: "/tmp/x")
        #expect(throws: Never.self) { try c.validate() }
        c.listenHost = "localhost"
        #expect(throws: DevServerError.self) { try c.validate() }
        c = DevServerConfiguration(dataDirectory: "/tmp/x", storagesPerGroup: 40)
        #expect(throws: DevServerError.configuration("--storages-per-group must be 1...32, got 40")) { try c.validate() }
        c = DevServerConfiguration(dataDirectory: "/tmp/x", syncResumeDelay: -1)
        #expect(throws: DevServerError.configuration("--sync-resume-delay must be >= 0")) { try c.validate() }
        c = DevServerConfiguration(dataDirectory: "/tmp/x", trunk: TrunkParameters(slotMinSize: 2048, slotMaxSize: 1024))
        #expect(throws: DevServerError.self) { try c.validate() }
        // Port room matters only when the storages share an address.
        c = DevServerConfiguration(dataDirectory: "/tmp/x", storagePort: 65535, storagesPerGroup: 4)
        #expect(throws: Never.self) { try c.validate() }
        c.listenHost = "127.0.0.9"
        #expect(throws: DevServerError.self) { try c.validate() }
        #expect(CompatLevel(parsing: "5.12") == .v5 && CompatLevel(parsing: "6.16.1") == .v6_16 && CompatLevel(parsing: "7") == nil)
    }
}
