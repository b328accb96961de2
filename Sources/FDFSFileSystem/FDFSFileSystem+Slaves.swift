import FastDFSProtocol
import FuseTypes
#if canImport(Glibc)
import Glibc
#endif

/// Creating a name in the by-id view (`/GROUP/Mxx/XX/YY/NAME`) uploads a slave file when NAME is
/// a slave name of an existing master in the same directory: the master's name up to its
/// extension (the first '.' within its last 7 characters), then a prefix (1–16 characters of
/// [A-Za-z0-9._-]) and an optional `.ext`. The bytes are staged and uploaded whole at
/// close/fsync (FastDFS cannot append to or modify a slave).
extension FDFSFileSystem {
    /// The master's name up to its extension (what `FDFSFilename.slaveFilename` keeps).
    static func slaveStem(ofMaster name: String) -> Substring {
        let tail = name.suffix(7)
        guard let dot = tail.firstIndex(of: ".") else { return Substring(name) }
        return name[..<dot]
    }

    /// Master names NAME could be a slave of: names known in the directory, and the usual shape
    /// of a FastDFS name (27 base64 characters + 7: digits and `.ext`) guessed from NAME.
    func slaveMasterCandidates(dir: String, name: String) async -> [String] {
        var out: [String] = []
        if let known = try? await byIDChildren(dir) { out += known.map(\.name) }
        let ext = name.lastIndex(of: ".").map { String(name[name.index(after: $0)...]) } ?? ""
        if (1...6).contains(ext.utf8.count) {
            let stemLen = 34 - 1 - ext.utf8.count
            if name.utf8.count > stemLen + 1 + ext.utf8.count { out.append(String(name.prefix(stemLen)) + "." + ext) }
        }
        if name.count > 34 { out.append(String(name.prefix(34))) }   // a master without extension
        var seen = Set<String>()
        return out.filter { $0 != name && seen.insert($0).inserted }
    }

    /// Finds the master and splits NAME into prefix and extension. EINVAL: NAME is no valid slave
    /// name; ENOENT: the master it names does not exist.
    func slaveTarget(dir: String, name: String) async throws(FSError) -> SlaveTarget {
        let child = dir + "/" + name
        let remoteDir = dir.split(separator: "/").dropFirst().joined(separator: "/")
        var invalid: String? = nil
        var missing: String? = nil
        for m in await slaveMasterCandidates(dir: dir, name: name) {
            let stem = Self.slaveStem(ofMaster: m)
            guard name.hasPrefix(stem), name.count > stem.count else { continue }
            let rest = name.dropFirst(stem.count)
            var prefix = String(rest), ext = ""
            if let dot = rest.lastIndex(of: "."), dot != rest.startIndex {
                prefix = String(rest[..<dot]); ext = String(rest[rest.index(after: dot)...])
            }
            guard FDFSFilename.isValidPrefix(prefix), FDFSFilename.isValidExt(ext),
                  (try? FDFSFilename.slaveFilename(master: remoteDir + "/" + m, prefix: prefix, ext: ext)) == remoteDir + "/" + name else {
                // Only an existing master makes this the reason (a guessed one may not exist).
                if invalid == nil, (try? store.decode(dir + "/" + m)) != nil, (try? await store.fileInfo(dir + "/" + m)) != nil {
                    invalid = "prefix \"\(prefix)\" / extension \"\(ext)\" after master \(m) (prefix: 1–16 of [A-Za-z0-9._-], extension: ≤ 6)"
                }
                continue
            }
            let master = dir + "/" + m
            guard (try? store.decode(master)) != nil else { continue }
            do { _ = try await store.fileInfo(master) } catch {
                if error.errno == ENOENT || error.errno == EINVAL { missing = master; continue }
                throw error
            }
            return SlaveTarget(master: master, prefix: prefix, ext: ext, fileID: child)
        }
        if invalid == nil, let missing {
            Log.warning("refused to create \(child): its master \(missing) does not exist")
            throw FSError.noent("master file \(missing) of \(child) does not exist")
        }
        let why = invalid ?? "it does not start with the name (up to the extension) of a master file in \(dir)"
        Log.warning("refused to create \(child): not a valid slave file name: \(why); only slave files (master name + prefix + .ext) can be created in the by-id view")
        throw FSError(EINVAL, "\(child) is not a valid slave file name: \(why)")
    }

    /// create(2) in the by-id view: a new slave file, staged until close/fsync.
    func byIDCreateSlave(parent: UInt64, name: String) async throws(FSError) -> (Entry, Opened) {
        try requireWritable()
        let dir = try byIDPath(parent)
        guard dir.split(separator: "/").count == 4 else {
            throw FSError(EPERM, "the by-id view is managed by FastDFS; only slave files can be created, in /GROUP/Mxx/XX/YY")
        }
        let target = try await slaveTarget(dir: dir, name: name)
        negativeCache.remove(target.fileID)
        let ino = inodes.withLock { $0.byIDIno(for: target.fileID) }
        let w = try retainWriter(ino: ino, fileID: nil, size: 0, named: false, slave: target)
        await w.markCreated()
        let e = counted(byIDFileAttr(ino, size: 0, mtime: Int64(time(nil))))
        return (e, makeHandle(ino: ino, fileID: nil, size: 0, writer: w))
    }

    /// A slave created here and not uploaded yet: its attributes come from the writer.
    func pendingSlaveAttr(_ ino: UInt64) async -> Attr? {
        guard let w = writer(of: ino), w.slave != nil, await w.fileID == nil else { return nil }
        return byIDFileAttr(ino, size: await w.size, mtime: Int64(time(nil)))
    }
}
