#if canImport(Glibc)
import Glibc
#endif
import FDFSFileSystem

/// `--memory-store` (or SOURCE `memory:`): an in-memory cluster with two groups and a few files,
/// for mount tests before a real cluster exists. The ids are written to STATE_DIR/memory-store-ids
/// as "NAME FILE_ID" lines.
enum MemorySeed {
    static func make(stateDir: String) async -> MemoryFileStore {
        let store = MemoryFileStore(groups: [
            StoreGroup(name: "group1", totalMB: 10240, freeMB: 8192, storePathCount: 2, subdirCountPerPath: 256),
            StoreGroup(name: "group2", totalMB: 2048, freeMB: 1024, storePathCount: 1, subdirCountPerPath: 256),
        ])
        var lines: [String] = []
        let hello = Array("hello from fdfsfs\n".utf8)
        if let id = try? await store.upload(hello, ext: "txt", group: "group1", appender: false) {
            try? await store.setMetadata(["author": "fdfsfs", "kind": "greeting"], for: id, merge: false)
            lines.append("hello \(id)")
        }
        // 24 MiB of a position-dependent pattern: every 4-byte word holds its own offset / 4.
        var big = [UInt8](repeating: 0, count: 24 << 20)
        big.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt32.self)
            for i in 0..<words.count { words[i] = UInt32(i).bigEndian }
        }
        if let id = try? await store.upload(big, ext: "bin", group: "group1", appender: false) { lines.append("big \(id)") }
        if let id = try? await store.upload(Array("appender start\n".utf8), ext: "log", group: "group2", appender: true) {
            try? await store.append(Array("appended line\n".utf8), to: id)
            lines.append("appender \(id)")
        }
        let text = lines.joined(separator: "\n") + "\n"
        let path = stateDir + "/memory-store-ids"
        if let f = fopen(path, "w") { fputs(text, f); fclose(f) }
        return store
    }
}
