// Fault injection: the CLI syntax, and each fault's effect on the wire.

import FastDFSProtocol
import Foundation
import NIOCore
import Testing

@testable import FastDFSDevServer

@Suite("Fault injection")
struct FaultInjectionTests {
    @Test("fault specs parse into targets and kinds; bad specs name the problem")
    func parsing() throws {
        #expect(try Fault(parsing: "tracker:delay=200") == Fault(target: .tracker, kind: .delay(milliseconds: 200)))
        #expect(try Fault(parsing: "storage:stall") == Fault(target: .allStorages, kind: .stall))
        #expect(
            try Fault(parsing: "group1/storage2:drop-after=65536")
                == Fault(target: .storage(group: "group1", index: 2), kind: .dropAfter(bytes: 65536)))
        #expect(try Fault(parsing: "group2:refuse") == Fault(target: .group("group2"), kind: .refuse))
        #expect(try Fault(parsing: "tracker:reset").kind == .resetOnAccept)
        #expect(
            try Fault(parsing: "storage:fail=UPLOAD_FILE:ENOSPC,times=1")
                == Fault(target: .allStorages, kind: .fail(command: 11, errno: 28), times: 1))
        #expect(try Fault(parsing: "storage:fail=14:2").kind == .fail(command: 14, errno: 2))
        #expect(try Fault(parsing: "storage:fail=*:EIO").kind == .fail(command: nil, errno: 5))
        for bad in ["storage", "storage:explode", "storage:delay=x", "storage:fail=NOPE:ENOENT", "storage:fail=11:EWHAT",
                    "x/y:stall", "storage:stall,times=0"] {
            #expect(throws: DevServerError.self) { try Fault(parsing: bad) }
        }
    }

    @Test("fail=CMD:ERRNO answers that command with the errno, `times` limits it")
    func failCommand() async throws {
        try await withDevServer(faults: [try Fault(parsing: "storage:fail=UPLOAD_FILE:ENOSPC,times=1")]) { (server: DevServer) async throws in
            #expect(try await rawReply(server.firstStorage, Req.upload([1, 2, 3])).status == FDFSErrno.enospc.rawValue)
            #expect(try await rawReply(server.firstStorage, Req.upload([1, 2, 3])).status == 0)
            let h = await server.inject(Fault(target: .tracker, kind: .fail(command: 101, errno: FDFSErrno.enoent.rawValue)))
            #expect(try await rawReply(server.trackerAddress, Req.packet(101)).status == FDFSErrno.enoent.rawValue)
            #expect(try await rawReply(server.trackerAddress, Req.packet(91)).status == 0)
            await server.removeFault(h)
            #expect(try await rawReply(server.trackerAddress, Req.packet(101)).status == 0)
        }
    }

    @Test("refuse closes the listener until the fault is removed; reset accepts and closes")
    func refuseAndReset() async throws {
        try await withDevServer { (server: DevServer) async throws in
            let s = server.firstStorage
            let h = await server.inject(Fault(target: .allStorages, kind: .refuse))
            await #expect(throws: (any Error).self) { _ = try await rawRequest(s, Req.packet(111)) }
            await server.removeFault(h)
            #expect(try await rawReply(s, Req.packet(111)).status == 0)
            // removeAllFaults reopens every refused listener too.
            await server.inject(Fault(target: .allStorages, kind: .refuse))
            await server.inject(Fault(target: .tracker, kind: .refuse))
            await #expect(throws: (any Error).self) { _ = try await rawRequest(server.trackerAddress, Req.packet(111)) }
            await server.removeAllFaults()
            #expect(try await rawReply(s, Req.packet(111)).status == 0)
            #expect(try await rawReply(server.trackerAddress, Req.packet(111)).status == 0)
            await server.inject(Fault(target: .tracker, kind: .resetOnAccept, times: 1))
            let outcome = try await rawRequest(server.trackerAddress, Req.packet(111))
            #expect(outcome == .closed(partial: []))
            #expect(try await rawReply(server.trackerAddress, Req.packet(111)).status == 0)
        }
    }

    @Test("drop-after=N closes a download after the header and N body bytes")
    func dropDownload() async throws {
        try await withDevServer { (server: DevServer) async throws in
            let data = [UInt8](repeating: 7, count: 300_000)
            let (g, n) = try await rawUpload(server, data)
            await server.inject(Fault(target: .allStorages, kind: .dropAfter(bytes: 1000), times: 1))
            let outcome = try await rawRequest(server.firstStorage, Req.download(g, n))
            guard case .closed(let partial) = outcome else {
                Issue.record("expected a cut-off download")
                return
            }
            #expect(partial.count == 10 + 1000)
            #expect(try await rawReply(server.firstStorage, Req.download(g, n)).body == data)
        }
    }

    @Test("drop-after=N closes an upload after N content bytes and leaves no file behind")
    func dropUpload() async throws {
        try await withDevServer { (server: DevServer) async throws in
            await server.inject(Fault(target: .allStorages, kind: .dropAfter(bytes: 10), times: 1))
            let outcome = try await rawRequest(server.firstStorage, Req.upload([UInt8](repeating: 1, count: 5000)))
            #expect(outcome == .closed(partial: []))
            let dir = server.storageDirectory(server.storageIDs[0])!
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir + "/tmp")
            #expect(leftovers.isEmpty)
            #expect(try await rawReply(server.firstStorage, Req.upload([1])).status == 0)
        }
    }

    @Test("stall accepts the request and never answers; the next connection is served")
    func stall() async throws {
        try await withDevServer { (server: DevServer) async throws in
            await server.inject(Fault(target: .allStorages, kind: .stall, times: 1))
            let storage = server.firstStorage
            // The stalled connection: send, then check that only silence arrives before we give up.
            let silent = try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try await RawConnection.with(storage) { c in
                        try await c.send(Req.packet(111))
                        _ = try await c.fill(1)
                        return false  // bytes or a close arrived: not a stall
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(300))
                    return true
                }
                let first = try await group.next()!
                // Closing the storage's connections ends the stalled reader.
                try await server.restartStorage(server.storageIDs[0])
                _ = try? await group.next()  // the other task ends on its own now
                return first
            }
            #expect(silent)
            #expect(try await rawReply(storage, Req.packet(111)).status == 0)
        }
    }

    @Test("delay=MS still answers correctly")
    func delay() async throws {
        try await withDevServer(faults: [Fault(target: .allStorages, kind: .delay(milliseconds: 50), times: 2)]) { (server: DevServer) async throws in
            #expect(try await rawReply(server.firstStorage, Req.packet(111)).status == 0)
            let (g, n) = try await rawUpload(server, [9, 9])
            #expect(try await rawReply(server.firstStorage, Req.download(g, n)).body == [9, 9])
            #expect(server.faults.active.isEmpty)
        }
    }
}
