// One-line text commands that drive a running dev server, for shell test suites that need to stop
// a storage in the middle of a `cp` (sent over the `--control` unix socket, ControlSocket.swift,
// or called directly with `DevServer.control(_:)`):
//
//   stop-storage GROUP/storageN [--crash]   stop it; --crash: the tracker still lists it ACTIVE
//   start-storage GROUP/storageN            start it again (ACTIVE at once, syncs after the
//                                           sync-resume delay)
//   restart-storage GROUP/storageN
//   stop-tracker | start-tracker
//   fault SPEC                              inject a fault (--fault syntax); prints its handle
//   clear-fault HANDLE | clear-faults
//   wait-replication [TIMEOUT_S]            until every storage applied every record of its
//                                           peers (default 60 s); fails on timeout
//   status                                  one line per storage:
//       ID ADDRESS STATUS running|stopped pending=PEER:BYTES,...   (e.g.
//       group1/storage1 127.0.0.2:23000 ACTIVE running pending=storage2:0)
//   help
//
// The reply is `ok` followed by output lines, or `error: MESSAGE`.

/// The answer to one control command.
public struct ControlReply: Sendable, Equatable {
    public var ok: Bool
    /// Output lines (for an error: the message).
    public var lines: [String]

    public static func ok(_ lines: [String] = []) -> ControlReply { ControlReply(ok: true, lines: lines) }
    public static func error(_ message: String) -> ControlReply { ControlReply(ok: false, lines: [message]) }

    /// The wire form: `ok` or `error: MESSAGE`, then the lines, each ending in a newline.
    public var text: String {
        ok ? (["ok"] + lines).map { $0 + "\n" }.joined() : "error: \(lines.joined(separator: " "))\n"
    }

    /// Parses the wire form (a missing first line counts as an error).
    public init(text: String) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        if lines.first == "ok" {
            self.init(ok: true, lines: Array(lines.dropFirst()))
        } else if let first = lines.first, first.hasPrefix("error: ") {
            self.init(ok: false, lines: [String(first.dropFirst(7))] + lines.dropFirst())
        } else {
            self.init(ok: false, lines: ["malformed control reply: \(text)"])
        }
    }

    public init(ok: Bool, lines: [String]) {
        self.ok = ok
        self.lines = lines
    }
}

extension DevServer {
    static let controlUsage = [
        "stop-storage GROUP/storageN [--crash]", "start-storage GROUP/storageN", "restart-storage GROUP/storageN",
        "stop-tracker", "start-tracker", "fault SPEC", "clear-fault HANDLE", "clear-faults",
        "wait-replication [TIMEOUT_S]", "status", "help",
    ]

    /// Runs one control command (see the top of this file).
    public func control(_ line: String) async -> ControlReply {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let command = words.first else { return .error("empty command; try help") }
        let args = Array(words.dropFirst())
        func storage() -> StorageNodeID? {
            guard let text = args.first, let id = StorageNodeID(parsing: text), cluster.node(id) != nil else { return nil }
            return id
        }
        do {
            switch command {
            case "stop-storage":
                guard let id = storage(), args.count <= 2, args.count == 1 || args[1] == "--crash" else {
                    return .error("usage: stop-storage GROUP/storageN [--crash] (storages: \(storageList))")
                }
                try await stopStorage(id, markOffline: args.count == 1)
                return .ok()
            case "start-storage", "restart-storage":
                guard let id = storage(), args.count == 1 else {
                    return .error("usage: \(command) GROUP/storageN (storages: \(storageList))")
                }
                if command == "restart-storage" { try await stopStorage(id) }
                try await startStorage(id)
                return .ok()
            case "stop-tracker", "start-tracker":
                guard args.isEmpty else { return .error("usage: \(command)") }
                if command == "stop-tracker" { try await stopTracker() } else { try await startTracker() }
                return .ok()
            case "fault":
                guard args.count == 1 else { return .error("usage: fault SPEC (e.g. fault group1/storage2:stall)") }
                let handle = await inject(try Fault(parsing: args[0]))
                return .ok(["\(handle.id)"])
            case "clear-fault":
                guard args.count == 1, let n = Int(args[0]), faults.contains(FaultHandle(id: n)) else {
                    return .error("usage: clear-fault HANDLE (a number printed by fault)")
                }
                await removeFault(FaultHandle(id: n))
                return .ok()
            case "clear-faults":
                await removeAllFaults()
                return .ok()
            case "wait-replication":
                guard args.count <= 1, let timeout = args.isEmpty ? 60 : Double(args[0]), timeout >= 0 else {
                    return .error("usage: wait-replication [TIMEOUT_S]")
                }
                if try await waitForReplication(timeout: timeout) { return .ok() }
                return .error("replication still pending after \(args.first ?? "60") s: " + pendingSummary)
            case "status":
                return .ok(statusLines)
            case "help":
                return .ok(Self.controlUsage)
            default:
                return .error("unknown command \(command); commands: " + Self.controlUsage.joined(separator: ", "))
            }
        } catch let e as DevServerError {
            return .error(e.description)
        } catch {
            return .error("\(error)")
        }
    }

    private var storageList: String { storageIDs.map(\.description).joined(separator: " ") }

    /// One line per storage: id, address, status, running or stopped, pending bytes per peer.
    public var statusLines: [String] {
        cluster.allNodes.map { node in
            let (status, running) = node.runtime.withLockedValue { ($0.status, $0.running) }
            let peers = cluster.group(named: node.id.group)?.nodes.filter { $0 !== node } ?? []
            let pending = peers.map { "storage\($0.id.index):\(pendingReplicationBytes(from: node.id, to: $0.id) ?? 0)" }
            return "\(node.id) \(node.address) \(StorageStatusCode.name(status)) \(running ? "running" : "stopped")"
                + " pending=" + (pending.isEmpty ? "-" : pending.joined(separator: ","))
        }
    }

    private var pendingSummary: String {
        cluster.allNodes.flatMap { node in
            (cluster.group(named: node.id.group)?.nodes ?? []).compactMap { peer -> String? in
                guard peer !== node, let n = pendingReplicationBytes(from: node.id, to: peer.id), n > 0 else { return nil }
                return "\(node.id)->storage\(peer.id.index) \(n) bytes"
            }
        }.joined(separator: ", ")
    }
}
