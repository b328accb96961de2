// The fdfs-devserver executable: address lines and `ready`, serving, clean stop on SIGTERM and
// SIGINT, and state kept across a restart of the process. Uses the binary built next to the test
// bundle (skipped when it is not there).

import FastDFSProtocol
import Foundation
import Testing

@testable import FastDFSDevServer

@Suite("fdfs-devserver command line")
struct CommandLineTests {
    static let binary: String = {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // The test bundle may be a directory (…/fdfsfsPackageTests.xctest/…) or a file next to the products.
        for candidate in [dir, dir.deletingLastPathComponent(), dir.deletingLastPathComponent().deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("fdfs-devserver").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return ""
    }()

    /// A running fdfs-devserver process and the lines it printed up to `ready`.
    final class Running: @unchecked Sendable {
        // Invariant: `text` is only touched under `lock` (readability handler vs. test task).
        let process = Process()
        private let lock = NSLock()
        private var text = ""
        /// The handler saw the end of the output (the process and every child closed it).
        private var ended = false
        let output = Pipe()

        init(arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: CommandLineTests.binary)
            process.arguments = arguments
            process.standardOutput = output
            process.standardError = output
            output.fileHandleForReading.readabilityHandler = { [weak self] h in
                let data = h.availableData
                guard let self else { return }
                self.lock.lock()
                if data.isEmpty { self.ended = true; h.readabilityHandler = nil }
                self.text += String(decoding: data, as: UTF8.self)
                self.lock.unlock()
            }
            try process.run()
        }

        var outputEnded: Bool {
            lock.lock()
            defer { lock.unlock() }
            return ended
        }

        var lines: [String] {
            lock.lock()
            defer { lock.unlock() }
            return text.split(separator: "\n").map(String.init)
        }

        /// Polls (20 ms) until a line equal to `line` was printed or the process exited.
        func wait(for line: String) async throws -> Bool {
            while process.isRunning || !lines.isEmpty {
                if lines.contains(line) { return true }
                if !process.isRunning { return lines.contains(line) }
                try await Task.sleep(for: .milliseconds(20))
            }
            return false
        }

        func terminate(_ signal: Int32) async throws -> Int32 {
            kill(process.processIdentifier, signal)
            while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
            // The exit can be seen before the last lines are read: wait for the end of the output.
            for _ in 0..<250 where !outputEnded { try await Task.sleep(for: .milliseconds(20)) }
            return process.terminationStatus
        }
    }

    @Test(
        "prints addresses and ready, serves, stops cleanly on SIGTERM and SIGINT, keeps state",
        .enabled(if: !binary.isEmpty, "fdfs-devserver is not built next to the test bundle"))
    func lifecycle() async throws {
        let dir = makeTemporaryDirectory("cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let args = ["--data", dir, "--tracker-port", "0", "--storage-port", "0", "--storages-per-group", "2"]
        let first = try Running(arguments: args)
        #expect(try await first.wait(for: "ready"))
        let lines = first.lines
        // The tracker on 127.0.0.1, each storage on its own loopback address.
        #expect(
            lines.count >= 4 && lines[0].hasPrefix("tracker 127.0.0.1:") && lines[1].hasPrefix("storage group1 127.0.0.2:")
                && lines[2].hasPrefix("storage group1 127.0.0.3:"))
        let tracker = try #require(StorageAddress(line: lines[0], field: 1))
        let storage = try #require(StorageAddress(line: lines[1], field: 2))
        #expect(try await rawReply(tracker, Req.packet(101)).status == 0)
        let up = try await rawReply(storage, Req.upload(Req.bytes("from the cli")))
        let name = String(decoding: up.body.dropFirst(16), as: UTF8.self)
        #expect(try await first.terminate(SIGTERM) == 0)
        #expect(first.lines.contains("stopped"))

        let second = try Running(arguments: args)
        #expect(try await second.wait(for: "ready"))
        let storage2 = try #require(StorageAddress(line: second.lines[1], field: 2))
        #expect(try await rawReply(storage2, Req.download("group1", name)).bodyString == "from the cli")
        #expect(try await second.terminate(SIGINT) == 0)
        #expect(second.lines.contains("stopped"))
    }

    @Test(
        "--storage-ids prints storage-id lines and writes storage_ids.conf; --control takes `control` commands; --trunk",
        .enabled(if: !binary.isEmpty, "fdfs-devserver is not built next to the test bundle"))
    func controlAndModes() async throws {
        let dir = makeTemporaryDirectory("cli-control")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socket = dir + "/control.sock", ids = dir + "/storage_ids.conf"
        let server = try Running(arguments: [
            "--data", dir + "/data", "--tracker-port", "0", "--storage-port", "0", "--storages-per-group", "2",
            "--storage-ids", "--write-storage-ids", ids, "--trunk", "--sync-resume-delay", "0.2", "--control", socket,
        ])
        #expect(try await server.wait(for: "ready"))
        let lines = server.lines
        #expect(lines.filter { $0.hasPrefix("storage ") }.count == 2)
        let idLines = lines.filter { $0.hasPrefix("storage-id ") }
        #expect(idLines.count == 2 && idLines[0].hasPrefix("storage-id 100001 group1 127.0.0.2:"))
        #expect(lines.firstIndex { $0.hasPrefix("storage-id") }! > lines.lastIndex { $0.hasPrefix("storage ") }!)
        #expect(
            (try? String(contentsOfFile: ids, encoding: .utf8)) == "100001 group1 127.0.0.2\n100002 group1 127.0.0.3\n")
        let storage = try #require(StorageAddress(line: lines[1], field: 2))
        let up = try await rawReply(storage, Req.upload(Req.bytes("small")))
        #expect(up.body.count == 16 + 60)  // a trunk file name
        func control(_ args: String...) throws -> (Int32, String, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CommandLineTests.binary)
            p.arguments = ["control", socket] + args
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            try p.run()
            p.waitUntilExit()
            return (
                p.terminationStatus, String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
                String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            )
        }
        let (rc, out, _) = try control("stop-storage", "group1/storage2", "--crash")
        #expect(rc == 0 && out.isEmpty)
        let (rc2, status, _) = try control("status")
        #expect(rc2 == 0 && status.contains("group1/storage2 ") && status.contains(" ACTIVE stopped pending="))
        let (rc3, _, message) = try control("stop-storage", "group9/storage1")
        #expect(rc3 != 0 && message.contains("usage: stop-storage"))
        #expect(try await server.terminate(SIGTERM) == 0)
        #expect(!FileManager.default.fileExists(atPath: socket))
        let (rc4, _, unreachable) = try control("status")
        #expect(rc4 != 0 && unreachable.contains("cannot reach"))
    }

    @Test("bad options exit with a message", .enabled(if: !binary.isEmpty, "fdfs-devserver is not built"))
    func badOptions() async throws {
        let run = try Running(arguments: ["--data", "/tmp/unused", "--fault", "storage:explode"])
        while run.process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        #expect(run.process.terminationStatus != 0)
        #expect(run.lines.joined().contains("unknown action"))
    }
}

extension StorageAddress {
    /// Parses `HOST:PORT` from whitespace-separated field `field` of an address line.
    init?(line: String, field: Int) {
        let parts = line.split(separator: " ")
        guard parts.count > field, let colon = parts[field].lastIndex(of: ":"),
            let port = Int(parts[field][parts[field].index(after: colon)...])
        else { return nil }
        self.init(host: String(parts[field][..<colon]), port: port)
    }
}
