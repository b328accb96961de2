// Control commands (ControlCommands.swift), called directly and through the --control unix socket.

import FastDFSProtocol
import Foundation
import NIOCore
import Testing

@testable import FastDFSDevServer

@Suite("Control commands")
struct ControlTests {
    @Test("stop/start storages (and --crash), status lines, faults with handles, tracker, errors")
    func commands() async throws {
        try await withDevServer(storagesPerGroup: 2) { (server: DevServer) async throws in
            let (s1, s2) = (server.storageIDs[0], server.storageIDs[1])
            let (a1, a2) = (server.storageAddress(s1)!, server.storageAddress(s2)!)
            #expect(
                await server.control("status")
                    == .ok([
                        "group1/storage1 \(a1) ACTIVE running pending=storage2:0",
                        "group1/storage2 \(a2) ACTIVE running pending=storage1:0",
                    ]))
            #expect(await server.control("stop-storage group1/storage1") == .ok())
            #expect(server.storageStatus(s1)! == (status: 5, running: false))
            _ = try await rawUpload(server, Req.bytes("queued for storage1"), storage: a2)
            let status = await server.control("status")
            #expect(status.lines[0] == "group1/storage1 \(a1) OFFLINE stopped pending=storage2:0")
            #expect(status.lines[1].hasPrefix("group1/storage2 \(a2) ACTIVE running pending=storage1:"))
            #expect(!status.lines[1].hasSuffix("pending=storage1:0"))
            let timeout = await server.control("wait-replication 0.2")
            #expect(!timeout.ok && timeout.lines[0].contains("group1/storage2->storage1"))
            #expect(await server.control("start-storage group1/storage1") == .ok())
            #expect(await server.control("wait-replication 10") == .ok())
            #expect(await server.control("stop-storage group1/storage2 --crash") == .ok())
            #expect(server.storageStatus(s2)! == (status: 7, running: false))
            #expect(await server.control("restart-storage group1/storage2") == .ok())
            #expect(server.storageStatus(s2)! == (status: 7, running: true))
            // Faults: a handle, then removed by it.
            let fault = await server.control("fault group1/storage2:fail=UPLOAD_FILE:ENOSPC")
            #expect(fault.ok && fault.lines.count == 1)
            #expect(try await rawReply(a2, Req.upload(Req.bytes("x"))).status == FDFSErrno.enospc.rawValue)
            #expect(await server.control("clear-fault \(fault.lines[0])") == .ok())
            #expect(try await rawReply(a2, Req.upload(Req.bytes("x"))).status == 0)
            #expect(await server.control("clear-fault \(fault.lines[0])").ok == false)
            #expect(await server.control("fault tracker:refuse").ok)
            await #expect(throws: (any Error).self) { _ = try await rawRequest(server.trackerAddress, Req.packet(111)) }
            #expect(await server.control("clear-faults") == .ok())
            #expect(try await rawReply(server.trackerAddress, Req.packet(111)).status == 0)
            #expect(await server.control("stop-tracker") == .ok())
            await #expect(throws: (any Error).self) { _ = try await rawRequest(server.trackerAddress, Req.packet(111)) }
            #expect(await server.control("start-tracker") == .ok())
            // Errors name the problem.
            #expect(await server.control("stop-storage group1/storage9").ok == false)
            #expect(await server.control("fault storage:explode").lines[0].contains("unknown action"))
            #expect(await server.control("frobnicate").lines[0].contains("unknown command frobnicate"))
            #expect(await server.control("help").lines.contains("status"))
        }
    }

    @Test("the unix socket: one command per connection, the reply in its text form")
    func socket() async throws {
        let dir = makeTemporaryDirectory("control")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/control.sock"
        try await withDevServer(storagesPerGroup: 2) { (server: DevServer) async throws in
            try await server.startControlSocket(path: path)
            let status = try await DevServerControl.send(path: path, command: "status")
            #expect(status == .ok(server.statusLines))
            #expect(try await DevServerControl.send(path: path, command: "stop-storage group1/storage2") == .ok())
            #expect(server.storageStatus(server.storageIDs[1])!.running == false)
            let bad = try await DevServerControl.send(path: path, command: "start-storage nowhere")
            #expect(!bad.ok && bad.lines[0].hasPrefix("usage: start-storage"))
        }
        // Stopping the server removes the socket.
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(ControlReply(text: "ok\na\nb\n") == .ok(["a", "b"]))
        #expect(ControlReply(text: "error: no\n") == .error("no"))
        #expect(ControlReply.error("x y").text == "error: x y\n")
    }
}
