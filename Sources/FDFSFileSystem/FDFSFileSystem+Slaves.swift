import FastDFSProtocol
import FuseTypes
import Logging
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

    /// Extensions tried for a master that was never looked up, after NAME's own and those of
    /// the names known in the directory (FastDFS cannot list a directory).
    static let commonMasterExtensions = [
        "jpg", "png", "gif", "bmp", "tif", "svg", "ico", "mp4", "mov", "avi", "flv", "mkv", "mp3", "wav", "aac", "amr",
        "ogg", "txt", "log", "pdf", "doc", "xls", "ppt", "csv", "xml", "htm", "zip", "tgz", "tar", "rar", "apk", "ipa",
        "bin", "dat", "jpeg", "webp", "tiff", "heic", "webm", "m3u8", "flac", "docx", "xlsx", "pptx", "json", "html",
        "js", "ts", "gz", "7z",
    ]

    /// Master names NAME could be a slave of, most likely first: names known in the directory
    /// (looked up or listed before), then guesses. A FastDFS file name is 34 characters: 27 of
    /// base64, then 7 made of random digits and `.EXT` (or 7 digits). So a master's stem is the
    /// first 27–34 characters of NAME (digits after the 27th) and its extension, of length
    /// 33 − stem length, is not part of NAME: guesses try NAME's own extension, the extensions of
    /// the known names, then common ones.
    func slaveMasterCandidates(dir: String, name: String) async -> (known: [String], guessed: [String]) {
        let known = ((try? await byIDChildren(dir)) ?? []).map(\.name).filter { $0 != name }
        let chars = Array(name)
        guard chars.count > 27 else { return (known, []) }
        func ext(_ n: String) -> String? {
            guard let dot = n.lastIndex(of: "."), n.index(after: dot) < n.endIndex else { return nil }
            let e = String(n[n.index(after: dot)...])
            return (1...6).contains(e.utf8.count) ? e : nil
        }
        var exts: [String] = []
        for e in [ext(name)].compactMap({ $0 }) + known.compactMap(ext) + Self.commonMasterExtensions where !exts.contains(e) {
            exts.append(e)
        }
        var guessed: [String] = []
        for e in exts {
            let stemLength = 33 - e.utf8.count
            guard chars.count > stemLength, chars[27..<stemLength].allSatisfy({ $0.isASCII && $0.isNumber }) else { continue }
            guessed.append(String(chars[..<stemLength]) + "." + e)
        }
        // A master without extension: 27 + 7 digits.
        if chars.count > 34, chars[27..<34].allSatisfy({ $0.isASCII && $0.isNumber }) { guessed.append(String(chars[..<34])) }
        var seen = Set(known)
        return (known, guessed.filter { $0 != name && seen.insert($0).inserted })
    }

    /// NAME split after master `m`'s stem into prefix and extension, when that makes NAME the
    /// slave name FastDFS would give (nil otherwise).
    static func slaveSplit(dir: String, name: String, master m: String) -> (prefix: String, ext: String)? {
        let stem = slaveStem(ofMaster: m)
        guard name.hasPrefix(stem), name.count > stem.count else { return nil }
        let rest = name.dropFirst(stem.count)
        var prefix = String(rest), ext = ""
        if let dot = rest.lastIndex(of: "."), dot != rest.startIndex {
            prefix = String(rest[..<dot]); ext = String(rest[rest.index(after: dot)...])
        }
        let remoteDir = dir.split(separator: "/").dropFirst().joined(separator: "/")
        guard FDFSFilename.isValidPrefix(prefix), FDFSFilename.isValidExt(ext),
              (try? FDFSFilename.slaveFilename(master: remoteDir + "/" + m, prefix: prefix, ext: ext)) == remoteDir + "/" + name else { return nil }
        return (prefix, ext)
    }

    /// Finds the master and splits NAME into prefix and extension. EINVAL: NAME is no valid slave
    /// name; ENOENT: no master of that name exists (among the known names and the guesses).
    func slaveTarget(dir: String, name: String) async throws(FSError) -> SlaveTarget {
        let child = dir + "/" + name
        let (known, guessed) = await slaveMasterCandidates(dir: dir, name: name)
        /// False: the master does not exist.
        func exists(_ master: String) async throws(FSError) -> Bool {
            guard (try? store.decode(master)) != nil else { return false }
            do { _ = try await store.fileInfo(master); return true } catch {
                if error.errno == ENOENT || error.errno == EINVAL { return false }
                throw error
            }
        }
        var invalid: String? = nil
        var tried: [String] = []
        for (m, isKnown) in known.map({ ($0, true) }) + guessed.map({ ($0, false) }) {
            guard let (prefix, ext) = Self.slaveSplit(dir: dir, name: name, master: m) else {
                // A known master with NAME's stem: the prefix or extension is what is wrong.
                let stem = Self.slaveStem(ofMaster: m)
                if isKnown, invalid == nil, name.hasPrefix(stem), name.count > stem.count, try await exists(dir + "/" + m) {
                    invalid = "\"\(name.dropFirst(stem.count))\" after the stem of master \(m) is no prefix (1–16 of [A-Za-z0-9._-]) plus optional .ext (≤ 6)"
                }
                continue
            }
            if try await exists(dir + "/" + m) {
                return SlaveTarget(master: dir + "/" + m, prefix: prefix, ext: ext, fileID: child)
            }
            tried.append(m)
        }
        if invalid == nil, !tried.isEmpty {
            let shown = tried.prefix(4).joined(separator: ", ") + (tried.count > 4 ? " and \(tried.count - 4) more" : "")
            logger.warning("refused to create \(child): no master file found (tried \(shown)); if the master has another extension, look it up first (stat \(dir)/MASTER)")
            throw FSError.noent("no master file of \(child) found (tried \(shown))")
        }
        let why = invalid ?? "it does not start with the name (up to the extension) of a master file in \(dir)"
        logger.warning("refused to create \(child): not a valid slave file name: \(why); only slave files (master name + prefix + .ext) can be created in the by-id view")
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
