// Shared test helpers: a manual clock, protocol-vector loading, temp directories.

import Foundation
import NIOCore
import ProtocolVectorSupport
import Synchronization
@testable import FastDFS

/// A clock whose time moves only when a test says so.
struct ManualClock: Clock, Sendable {
    struct Instant: InstantProtocol, Hashable, Sendable {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    final class Storage: Sendable {
        let offset = Mutex<Duration>(.zero)
    }

    let storage = Storage()
    var now: Instant { Instant(offset: storage.offset.withLock { $0 }) }
    var minimumResolution: Duration { .nanoseconds(1) }
    func advance(by duration: Duration) { storage.offset.withLock { $0 += duration } }
    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        while now < deadline { try await Task.sleep(for: .milliseconds(1)) }
    }

    static func at(_ seconds: Int) -> Instant { Instant(offset: .seconds(seconds)) }
}

/// Real bytes captured from FastDFS servers, by op (loaded by ProtocolVectorSupport).
struct ProtocolVectors {
    struct Record {
        var op: String
        var request: [UInt8]
        var response: [UInt8]
        var notes: String
    }

    let records: [String: Record]

    static func load(_ version: String = "6.16.1") throws -> ProtocolVectors {
        var records: [String: Record] = [:]
        for e in try ProtocolVectorFiles.load(version: version) {
            records[e.op] = Record(op: e.op, request: e.request, response: e.response, notes: e.notes)
        }
        return ProtocolVectors(records: records)
    }

    subscript(op: String) -> Record {
        guard let r = records[op] else { fatalError("no protocol vector \(op)") }
        return r
    }
}

/// A fresh temporary directory, removed by the caller with `cleanup()`.
struct TempDir {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("fdfs-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func write(_ name: String, _ text: String) throws -> String {
        let path = url.appendingPathComponent(name).path
        try FileManager.default.createDirectory(
            at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    func cleanup() { try? FileManager.default.removeItem(at: url) }
}

/// Waits (polling every millisecond, giving up after about 20 s so a broken test cannot spin
/// forever) until `condition` holds. Returns whether it did.
func eventually(_ condition: () -> Bool) async -> Bool {
    for _ in 0..<20_000 {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(1))
    }
    return condition()
}
