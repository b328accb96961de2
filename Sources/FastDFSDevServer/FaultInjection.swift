// Fault injection: a table of faults (who, what, how many times) that the connection layer
// consults at fixed points: on accept, on each request header, before each reply, and per body byte.
//
// CLI syntax (`--fault SPEC`, repeatable):
//   SPEC   = TARGET ":" ACTION [ "," "times=" N ]
//   TARGET = "tracker" | "storage" (every storage) | GROUP (its storages) | GROUP "/storage" N
//   ACTION = "delay=" MS            delay every reply by MS milliseconds
//          | "stall"                accept and read requests, never answer
//          | "drop-after=" BYTES    close the connection after BYTES bytes of a download or upload body
//          | "refuse"               close the listener (connections are refused)
//          | "reset"                accept, then close immediately
//          | "fail=" CMD ":" ERRNO  answer command CMD (number or name such as UPLOAD_FILE) with ERRNO
//                                   (number or name such as ENOSPC) instead of handling it
// `times=N` limits how often the fault fires (not for refuse); without it the fault stays.

import FastDFSProtocol
import NIOConcurrencyHelpers

/// Which listener a fault applies to.
public enum FaultTarget: Sendable, Hashable, CustomStringConvertible {
    case tracker
    case allStorages
    case group(String)
    /// `index` is 1-based, as in the data directory name `storage<index>`.
    case storage(group: String, index: Int)

    public var description: String {
        switch self {
        case .tracker: return "tracker"
        case .allStorages: return "storage"
        case .group(let g): return g
        case .storage(let g, let i): return "\(g)/storage\(i)"
        }
    }

    func matches(_ role: ServerRole) -> Bool {
        switch (self, role) {
        case (.tracker, .tracker): return true
        case (.allStorages, .storage): return true
        case (.group(let g), .storage(let id)): return id.group == g
        case (.storage(let g, let i), .storage(let id)): return id.group == g && id.index == i
        default: return false
        }
    }
}

/// One kind of misbehaviour.
public enum FaultKind: Sendable, Hashable {
    case delay(milliseconds: Int)
    case stall
    case dropAfter(bytes: Int64)
    case refuse
    case resetOnAccept
    /// `command` nil means every command.
    case fail(command: UInt8?, errno: UInt8)
}

public struct Fault: Sendable, Hashable, CustomStringConvertible {
    public var target: FaultTarget
    public var kind: FaultKind
    /// How many times it fires; nil means until removed.
    public var times: Int?

    public init(target: FaultTarget, kind: FaultKind, times: Int? = nil) {
        self.target = target
        self.kind = kind
        self.times = times
    }

    public var description: String {
        var s = "\(target):"
        switch kind {
        case .delay(let ms): s += "delay=\(ms)"
        case .stall: s += "stall"
        case .dropAfter(let n): s += "drop-after=\(n)"
        case .refuse: s += "refuse"
        case .resetOnAccept: s += "reset"
        case .fail(let c, let e): s += "fail=\(c.map(String.init) ?? "*"):\(e)"
        }
        if let times { s += ",times=\(times)" }
        return s
    }

    /// Parses the CLI syntax described at the top of this file.
    public init(parsing spec: String) throws(DevServerError) {
        var text = Substring(spec)
        var times: Int? = nil
        if let comma = text.lastIndex(of: ",") {
            let option = text[text.index(after: comma)...]
            guard option.hasPrefix("times="), let n = Int(option.dropFirst(6)), n > 0 else {
                throw .invalidFaultSpec("\(spec): expected ',times=N' (N > 0) after the action")
            }
            times = n
            text = text[..<comma]
        }
        guard let colon = text.firstIndex(of: ":") else {
            throw .invalidFaultSpec("\(spec): expected TARGET:ACTION, e.g. storage:delay=200")
        }
        let targetText = text[..<colon]
        let action = text[text.index(after: colon)...]
        let target: FaultTarget
        if targetText == "tracker" {
            target = .tracker
        } else if targetText == "storage" || targetText == "storages" {
            target = .allStorages
        } else if let slash = targetText.firstIndex(of: "/") {
            let g = targetText[..<slash]
            let s = targetText[targetText.index(after: slash)...]
            guard s.hasPrefix("storage"), let i = Int(s.dropFirst(7)), i >= 1, !g.isEmpty else {
                throw .invalidFaultSpec("\(spec): storage targets look like group1/storage2")
            }
            target = .storage(group: String(g), index: i)
        } else if !targetText.isEmpty {
            target = .group(String(targetText))
        } else {
            throw .invalidFaultSpec("\(spec): empty target")
        }
        let kind: FaultKind
        if action.hasPrefix("delay=") {
            guard let ms = Int(action.dropFirst(6)), ms >= 0 else {
                throw .invalidFaultSpec("\(spec): delay=MS needs a number of milliseconds")
            }
            kind = .delay(milliseconds: ms)
        } else if action == "stall" {
            kind = .stall
        } else if action.hasPrefix("drop-after=") {
            guard let n = Int64(action.dropFirst(11)), n >= 0 else {
                throw .invalidFaultSpec("\(spec): drop-after=BYTES needs a byte count")
            }
            kind = .dropAfter(bytes: n)
        } else if action == "refuse" {
            kind = .refuse
        } else if action == "reset" {
            kind = .resetOnAccept
        } else if action.hasPrefix("fail=") {
            let parts = action.dropFirst(5).split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw .invalidFaultSpec("\(spec): fail=CMD:ERRNO, e.g. fail=UPLOAD_FILE:ENOSPC or fail=11:28")
            }
            let command: UInt8?
            if parts[0] == "*" {
                command = nil
            } else if let n = UInt8(parts[0]) {
                command = n
            } else if let c = FDFSCommand.allCases.first(where: {
                $0.name.caseInsensitiveEquals(String(parts[0])) || "\($0)".caseInsensitiveEquals(String(parts[0]))
            }) {
                command = c.rawValue
            } else {
                throw .invalidFaultSpec("\(spec): unknown command \(parts[0])")
            }
            guard let e = Fault.parseErrno(String(parts[1])) else {
                throw .invalidFaultSpec("\(spec): unknown errno \(parts[1]) (use a number or a name like ENOENT)")
            }
            kind = .fail(command: command, errno: e)
        } else {
            throw .invalidFaultSpec(
                "\(spec): unknown action \(action) (delay=MS, stall, drop-after=BYTES, refuse, reset, fail=CMD:ERRNO)")
        }
        self.init(target: target, kind: kind, times: times)
    }

    static func parseErrno(_ text: String) -> UInt8? {
        if let n = UInt8(text), n > 0 { return n }
        return FDFSErrno(name: text)?.rawValue
    }
}

extension String {
    fileprivate func caseInsensitiveEquals(_ other: String) -> Bool { lowercased() == other.lowercased() }
}

/// Opaque handle of an injected fault, to remove it again.
public struct FaultHandle: Sendable, Hashable { let id: Int }

/// The live fault table shared by all listeners of one server. Thread-safe. Change it through
/// `DevServer.inject(_:)` / `removeFault(_:)` so listeners close or reopen for `refuse`.
public final class FaultInjector: Sendable {
    private struct Entry { var id: Int; var fault: Fault; var remaining: Int? }
    private struct State { var nextID = 1; var entries: [Entry] = [] }
    private let state = NIOLockedValueBox(State())

    public init(_ faults: [Fault] = []) {
        for f in faults { _ = add(f) }
    }

    @discardableResult
    func add(_ fault: Fault) -> FaultHandle {
        let id = state.withLockedValue { s -> Int in
            let id = s.nextID
            s.nextID += 1
            s.entries.append(Entry(id: id, fault: fault, remaining: fault.times))
            return id
        }
        return FaultHandle(id: id)
    }

    func remove(_ handle: FaultHandle) {
        state.withLockedValue { s in s.entries.removeAll { $0.id == handle.id } }
    }

    func contains(_ handle: FaultHandle) -> Bool {
        state.withLockedValue { s in s.entries.contains { $0.id == handle.id } }
    }

    func removeAll() {
        state.withLockedValue { $0.entries.removeAll() }
    }

    public var active: [Fault] { state.withLockedValue { $0.entries.map(\.fault) } }

    /// Whether the listener of `role` should be closed now (not consumed).
    func refuses(_ role: ServerRole) -> Bool {
        state.withLockedValue { s in
            s.entries.contains { e in
                if case .refuse = e.fault.kind { return e.fault.target.matches(role) }
                return false
            }
        }
    }

    /// Consumes and returns the first matching fault for which `select` returns a value.
    func take<T>(_ role: ServerRole, _ select: (FaultKind) -> T?) -> T? {
        state.withLockedValue { s in
            for i in s.entries.indices where s.entries[i].fault.target.matches(role) {
                guard let value = select(s.entries[i].fault.kind) else { continue }
                if let r = s.entries[i].remaining {
                    if r <= 1 { s.entries.remove(at: i) } else { s.entries[i].remaining = r - 1 }
                }
                return value
            }
            return nil
        }
    }

    func resetOnAccept(_ role: ServerRole) -> Bool {
        take(role) { if case .resetOnAccept = $0 { return true } else { return nil } } ?? false
    }
    func stall(_ role: ServerRole) -> Bool {
        take(role) { if case .stall = $0 { return true } else { return nil } } ?? false
    }
    func failure(_ role: ServerRole, command: UInt8) -> FDFSErrno? {
        take(role) { kind in
            if case .fail(let c, let e) = kind, c == nil || c == command { return FDFSErrno(rawValue: e) }
            return nil
        }
    }
    func delayMilliseconds(_ role: ServerRole) -> Int? {
        take(role) { if case .delay(let ms) = $0 { return ms } else { return nil } }
    }
    func dropAfter(_ role: ServerRole) -> Int64? {
        take(role) { if case .dropAfter(let n) = $0 { return n } else { return nil } }
    }
}
