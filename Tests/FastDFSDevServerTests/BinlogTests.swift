// The binlog format (real op letters and offsets, lower case for synced copies) and the migration
// of an older dev server's data directory (`sync/binlog`, bare-offset marks).

import FastDFSProtocol
import Foundation
import NIOCore
import Testing

@testable import FastDFSDevServer

@Suite("Binlog")
struct BinlogTests {
    @Test("records round-trip through their text form; unknown lines are skipped")
    func format() {
        let ops: [SyncOperation] = [
            .create("M00/00/00/a"), .update("M00/00/00/a-m"), .append("M00/00/00/a", offset: 3, length: 4),
            .modify("M00/00/00/a", offset: 0, length: 2), .truncate("M00/00/00/a", oldSize: 7, newSize: 1),
            .delete("M00/00/00/a"), .rename(new: "M00/00/00/b", old: "M00/00/00/a"),
        ]
        #expect(SyncOperation.append("n", offset: 3, length: 4).line(replica: false) == "A n 3 4")
        #expect(SyncOperation.truncate("n", oldSize: 7, newSize: 1).line(replica: true) == "t n 7 1")
        #expect(SyncOperation.rename(new: "new", old: "old").line(replica: false) == "R new old")
        var text = ""
        for (i, op) in ops.enumerated() { text += "\(1000 + i) \(op.line(replica: i % 2 == 1))\n" }
        text += "1100 X what\n1101 A too few\n"
        let records = ReplicationLog.parse(Array(text.utf8), base: 0)
        #expect(records.map(\.op) == ops)
        #expect(records.map(\.isReplica) == ops.indices.map { $0 % 2 == 1 })
        #expect(records.last!.end == Int64(text.utf8.count - "1100 X what\n1101 A too few\n".utf8.count))
    }

    @Test("an older data directory (sync/binlog, bare-offset marks) is migrated and its pending records replicate")
    func migration() async throws {
        let dir = makeTemporaryDirectory("legacy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The layout an older dev server left: two storages; storage1 created three files and
        // deleted the third; storage2 got the first one (its mark points after the first record).
        let source = FDFSFilename.sourceField(ipv4: "127.0.0.1")!
        let names = (0...3).map { i in
            FileNaming.makeName(
                source: source, timestamp: 1_700_000_000, size: 1, appender: false, crc32: UInt32(i), storePathIndex: 0,
                sub1: 0, sub2: 0, ext7: "000000\(i)")
        }
        func name(_ i: Int) -> String { names[i] }
        let s1 = dir + "/group1/storage1", s2 = dir + "/group1/storage2"
        for d in [s1 + "/data/00/00", s1 + "/sync", s2 + "/data/00/00", s2 + "/sync"] {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        }
        for i in 1...2 { try Data("file \(i)".utf8).write(to: URL(fileURLWithPath: s1 + "/data/" + name(i).dropFirst(4))) }
        try Data("k\u{02}v".utf8).write(to: URL(fileURLWithPath: s1 + "/data/" + name(2).dropFirst(4) + "-m"))
        try Data("file 1".utf8).write(to: URL(fileURLWithPath: s2 + "/data/" + name(1).dropFirst(4)))
        let lines = [
            "1700000000000 C \(name(1))", "1700000000001 C \(name(2))", "1700000000002 M \(name(2))",
            "1700000000003 C \(name(3))", "1700000000004 D \(name(3))",
        ]
        let binlog = lines.map { $0 + "\n" }.joined()
        try Data(binlog.utf8).write(to: URL(fileURLWithPath: s1 + "/sync/binlog"))
        try Data("\(lines[0].utf8.count + 1)".utf8).write(to: URL(fileURLWithPath: s1 + "/sync/storage2.mark"))
        try await withDevServer(storagesPerGroup: 2, dataDirectory: dir) { (server: DevServer) async throws in
            #expect(try await server.waitForReplication(timeout: 20))
            let ids = server.storageIDs
            #expect(server.bytesOnDisk(ids[1], name(2)) == "file 2")
            #expect(FileManager.default.contents(atPath: s2 + "/data/" + name(2).dropFirst(4) + "-m") == Data("k\u{02}v".utf8))
            #expect(server.bytesOnDisk(ids[1], name(3)) == nil)  // created and deleted: never sent
            // Converted: the new binlog holds the old records in the new format; the old file is kept aside.
            let converted = server.logs[ids[0]]!.records(from: 0).map(\.op)
            #expect(
                converted.prefix(5) == [
                    .create(name(1)), .create(name(2)), .update(name(2) + "-m"), .create(name(3)), .delete(name(3)),
                ])
            #expect(FileManager.default.fileExists(atPath: s1 + "/sync/binlog.legacy"))
            #expect(!FileManager.default.fileExists(atPath: s1 + "/sync/binlog"))
            // The mark is written once the replicator finds itself caught up, just after the
            // in-memory offset `waitForReplication` watches: wait for the file (a loaded machine
            // may take a moment).
            let end = server.logs[ids[0]]!.currentSize
            let deadline = ContinuousClock.now + .seconds(20)
            while SyncMark.read(s1 + "/sync/storage2.mark")?.offset != end && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(SyncMark.read(s1 + "/sync/storage2.mark")!.offset == end)
        }
    }
}
