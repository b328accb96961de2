import Testing
import FuseTypes
@testable import FDFSFileSystem
#if canImport(Glibc)
import Glibc
#endif

/// Reference-model test (mountpoint-s3's reftests idea): random sequences of namespace
/// operations run against `NamingStore` and against a plain dictionary model; after every step
/// the errno and the whole tree must agree. Names include bytes that are not UTF-8 (`bad\xff`,
/// `bad\xfe`: two names) and nodes include FIFOs (special files behave like files here).
@Suite("Naming layer vs reference model")
struct NamingModelTests {
    struct Model {
        enum Kind { case dir, file, fifo }
        struct Node { var kind: Kind; var nlink: Int }
        var entries: [String: [String: Int]] = ["/": [:]]   // dir path -> name -> node id
        var nodes: [Int: Node] = [:]
        var dirNode: [String: Int] = [:]
        var next = 1

        func child(_ dir: String, _ name: String) -> String { dir == "/" ? "/" + name : dir + "/" + name }
        func kind(_ path: String) -> Kind? {
            if path == "/" { return .dir }
            let parent = String(path[..<path.lastIndex(of: "/")!]).isEmpty ? "/" : String(path[..<path.lastIndex(of: "/")!])
            let name = String(path[path.index(after: path.lastIndex(of: "/")!)...])
            guard let id = entries[parent]?[name] else { return nil }
            return nodes[id]!.kind
        }

        mutating func create(_ dir: String, _ name: String, _ kind: Kind) -> Int32 {
            guard entries[dir] != nil else { return ENOENT }
            if entries[dir]![name] != nil { return EEXIST }
            let id = next; next += 1
            nodes[id] = Node(kind: kind, nlink: 1)
            entries[dir]![name] = id
            if kind == .dir { entries[child(dir, name)] = [:]; dirNode[child(dir, name)] = id }
            return 0
        }

        mutating func remove(_ dir: String, _ name: String, dirWanted: Bool) -> Int32 {
            guard let id = entries[dir]?[name] else { return ENOENT }
            let k = nodes[id]!.kind
            if dirWanted && k != .dir { return ENOTDIR }
            if !dirWanted && k == .dir { return EISDIR }
            if k == .dir && !(entries[child(dir, name)]!.isEmpty) { return ENOTEMPTY }
            drop(dir, name)
            return 0
        }

        mutating func drop(_ dir: String, _ name: String) {
            let id = entries[dir]![name]!
            entries[dir]![name] = nil
            if nodes[id]!.kind == .dir { entries[child(dir, name)] = nil; dirNode[child(dir, name)] = nil; nodes[id] = nil }
            else { nodes[id]!.nlink -= 1; if nodes[id]!.nlink == 0 { nodes[id] = nil } }
        }

        mutating func link(_ srcDir: String, _ srcName: String, _ dir: String, _ name: String) -> Int32 {
            guard let id = entries[srcDir]?[srcName] else { return ENOENT }
            if nodes[id]!.kind == .dir { return EPERM }
            if entries[dir]![name] != nil { return EEXIST }
            entries[dir]![name] = id
            nodes[id]!.nlink += 1
            return 0
        }

        func isWithin(_ path: String, _ ancestor: String) -> Bool { path == ancestor || path.hasPrefix(ancestor + "/") }

        /// Moves a subtree's directory keys from `old` to `new`.
        mutating func moveKeys(_ old: String, _ new: String) {
            var moved: [String: [String: Int]] = [:], movedNodes: [String: Int] = [:]
            for (k, v) in entries where isWithin(k, old) { moved[new + k.dropFirst(old.count)] = v; entries[k] = nil }
            for (k, v) in dirNode where isWithin(k, old) { movedNodes[new + k.dropFirst(old.count)] = v; dirNode[k] = nil }
            entries.merge(moved) { $1 }
            dirNode.merge(movedNodes) { $1 }
        }

        mutating func rename(_ d1: String, _ n1: String, _ d2: String, _ n2: String, _ flags: UInt32) -> Int32 {
            guard let src = entries[d1]?[n1] else { return ENOENT }
            if d1 == d2 && n1 == n2 { return 0 }
            let srcPath = child(d1, n1), dstPath = child(d2, n2)
            if nodes[src]!.kind == .dir && isWithin(d2, srcPath) { return EINVAL }
            let dst = entries[d2]![n2]
            if flags == RENAME_EXCHANGE_FLAG {
                guard let dst else { return ENOENT }
                if nodes[dst]!.kind == .dir && isWithin(d1, dstPath) { return EINVAL }
                entries[d1]![n1] = dst
                entries[d2]![n2] = src
                let tmp = "\u{1}swap"
                if nodes[src]!.kind == .dir { moveKeys(srcPath, tmp) }
                if nodes[dst]!.kind == .dir { moveKeys(dstPath, srcPath) }
                if nodes[src]!.kind == .dir { moveKeys(tmp, dstPath) }
                return 0
            }
            if let dst {
                if flags == RENAME_NOREPLACE_FLAG { return EEXIST }
                if dst == src { return 0 }
                let sk = nodes[src]!.kind, dk = nodes[dst]!.kind
                if sk == .dir && dk != .dir { return ENOTDIR }
                if sk != .dir && dk == .dir { return EISDIR }
                if dk == .dir && !(entries[dstPath]!.isEmpty) { return ENOTEMPTY }
                drop(d2, n2)
            }
            entries[d1]![n1] = nil
            entries[d2]![n2] = src
            if nodes[src]!.kind == .dir { moveKeys(srcPath, dstPath) }
            return 0
        }

        /// path -> "d" or "f<nlink>"
        func snapshot() -> [String: String] {
            var out: [String: String] = [:]
            for (dir, names) in entries {
                for (name, id) in names {
                    let n = nodes[id]!
                    out[child(dir, name)] = n.kind == .dir ? "d" : n.kind == .fifo ? "p\(n.nlink)" : "f\(n.nlink)"
                }
            }
            return out
        }
    }

    static func snapshot(_ s: NamingStore) async throws -> [String: String] {
        var out: [String: String] = [:]
        var stack: [(Int64, String)] = [(NamingStore.rootID, "/")]
        while let (id, path) = stack.popLast() {
            for (_, name, node) in try await s.list(parent: id, afterEntry: 0, limit: 10_000) {
                let p = path == "/" ? "/" + name.description : path + "/" + name.description
                out[p] = node.isDirectory ? "d" : node.mode & UInt32(S_IFMT) == UInt32(S_IFIFO) ? "p\(node.nlink)" : "f\(node.nlink)"
                if node.isDirectory { stack.append((node.id, p)) }
            }
        }
        return out
    }

    /// `names`: the model's path components (descriptions) back to the names' bytes.
    static func resolveDir(_ s: NamingStore, _ path: String, _ names: [String: FileName]) async throws -> Int64? {
        var id = NamingStore.rootID
        for part in path.split(separator: "/") {
            guard let n = try await s.lookup(parent: id, name: names[String(part)] ?? FileName(String(part))), n.isDirectory else { return nil }
            id = n.id
        }
        return id
    }

    static func errno(_ body: () async throws -> Void) async -> Int32 {
        do { try await body(); return 0 } catch let e as FSError { return e.errno } catch { return -1 }
    }

    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8])
    func randomSequencesAgree(seed: UInt64) async throws {
        var rng = SplitMix(seed: seed)
        let s = try NamingStore(path: nil)
        var m = Model()
        let names: [FileName] = ["a", "b", FileName(bytes: Array("bad".utf8) + [0xFF]), FileName(bytes: Array("bad".utf8) + [0xFE])]
        let dirMode = UInt32(S_IFDIR) | 0o755, fileMode = UInt32(S_IFREG) | 0o644, fifoMode = UInt32(S_IFIFO) | 0o644
        for step in 0..<250 {
            let dirs = m.entries.keys.sorted()
            let d1 = dirs[Int(rng.next() % UInt64(dirs.count))], d2 = dirs[Int(rng.next() % UInt64(dirs.count))]
            let b1 = names[Int(rng.next() % 4)], b2 = names[Int(rng.next() % 4)]
            let n1 = b1.description, n2 = b2.description   // the model's keys
            let byDescription = Dictionary(uniqueKeysWithValues: names.map { ($0.description, $0) })
            guard let p1 = try await Self.resolveDir(s, d1, byDescription), let p2 = try await Self.resolveDir(s, d2, byDescription) else {
                Issue.record("model directory \(d1) or \(d2) missing from the store at step \(step)"); return
            }
            let op = rng.next() % 7
            let expected: Int32, got: Int32, label: String
            switch op {
            case 0:
                label = "mkdir \(m.child(d1, n1))"
                expected = m.create(d1, n1, .dir)
                got = await Self.errno { _ = try await s.create(parent: p1, name: b1, mode: dirMode, uid: 0, gid: 0) }
            case 1:
                let fifo = rng.next() % 3 == 0
                label = "\(fifo ? "mkfifo" : "create") \(m.child(d1, n1))"
                expected = m.create(d1, n1, fifo ? .fifo : .file)
                got = await Self.errno { _ = try await s.create(parent: p1, name: b1, mode: fifo ? fifoMode : fileMode, uid: 0, gid: 0) }
            case 2:
                label = "unlink \(m.child(d1, n1))"
                expected = m.remove(d1, n1, dirWanted: false)
                got = await Self.errno { _ = try await s.remove(parent: p1, name: b1, directory: false) }
            case 3:
                label = "rmdir \(m.child(d1, n1))"
                expected = m.remove(d1, n1, dirWanted: true)
                got = await Self.errno { _ = try await s.remove(parent: p1, name: b1, directory: true) }
            case 4:
                label = "link \(m.child(d1, n1)) \(m.child(d2, n2))"
                expected = m.link(d1, n1, d2, n2)
                got = await Self.errno {
                    guard let src = try await s.lookup(parent: p1, name: b1) else { throw FSError(ENOENT) }
                    _ = try await s.link(node: src.id, parent: p2, name: b2)
                }
            default:
                let flags: UInt32 = op == 5 ? 0 : [RENAME_NOREPLACE_FLAG, RENAME_EXCHANGE_FLAG][Int(rng.next() % 2)]
                label = "rename(\(flags)) \(m.child(d1, n1)) \(m.child(d2, n2))"
                expected = m.rename(d1, n1, d2, n2, flags)
                got = await Self.errno { _ = try await s.rename(parent: p1, name: b1, newParent: p2, newName: b2, flags: flags) }
            }
            #expect(got == expected, "step \(step) \(label): store errno \(got), model \(expected)")
            let snap = try await Self.snapshot(s)
            #expect(snap == m.snapshot(), "tree differs after step \(step) \(label)")
            if got != expected || snap != m.snapshot() { return }
        }
    }
}

/// Deterministic generator for reproducible sequences.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
