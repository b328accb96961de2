import FuseTypes
#if canImport(Glibc)
import Glibc
#endif

/// Answers given from memory on libfuse's thread (issue 12): no Task, no database round trip.
/// Each one covers only the cases whose async answer depends on nothing but memory; anything
/// else returns nil and goes the async way (the by-id view; a name at the root while the group
/// list is not in memory). A file being written has the size of its writer's mirror, as `liveAttr` gives.
extension FDFSFileSystem {
    /// A node from the cache, or read on this thread from a local database; nil when neither
    /// can say (the async way answers).
    func nodeNow(_ id: Int64) -> Node? {
        if let n = naming.cachedNode(id) { return n }
        guard case .success(let n?)? = naming.nodeNow(id) else { return nil }
        return n
    }

    /// Whether `name` in `parent` is known not to be a FastDFS group's directory (groups shadow
    /// the root): only with the group list in memory can a root name be known not to be one.
    func knownNotGroup(_ name: FileName, in parent: UInt64) -> Bool {
        guard parent == InodeTable.root else { return true }
        guard let groups = groupsCache.get(0) else { return false }
        return !(name.string.map { s in groups.contains { $0.name == s } } ?? false)
    }

    /// `liveAttr` without awaiting: a writer's size from its mirror.
    func liveAttrNow(_ n: Node) -> Attr {
        var a = n.attr
        if n.isRegular, let w = writer(of: UInt64(n.id)) { a.size = w.liveSize.load(ordering: .relaxed) }
        return a
    }

    public func immediateGetxattr(ino: UInt64, name: String) -> Result<[UInt8], FSError>? {
        // Same answer as getxattr for the namespaces fdfsfs does not keep (asked by the kernel
        // before every write, for security.capability).
        if name.hasPrefix("security.") || name.hasPrefix("system.") || name.hasPrefix("trusted.") {
            return .failure(FSError(ENODATA, "", quiet: true))
        }
        return nil
    }

    /// A write that extends a small new file: kept in memory and journaled (`WriteJournal`).
    public func immediateWrite(ino: UInt64, fh: UInt64, offset: Int64, data: [UInt8]) -> Result<Int, FSError>? {
        guard !data.isEmpty, !options.readOnly, let w = handles.withLock({ $0.get(fh) })?.writer,
              let done = w.appendSmall(offset: offset, data: data) else { return nil }
        if case .success(let n) = done {
            metrics.bytesWritten.increment(by: Int64(n))
            invalidateReaders(ino)
        }
        return done
    }

    /// A new file in the named tree, when the naming engine creates on the calling thread (the
    /// local SQLite database: one short transaction, no Task, no hop to the database's queue).
    /// Everything else the async `create` does, in the same order; a name that exists is left to
    /// it (without O_EXCL it opens what is there), as are the by-id view and the root while the
    /// group list is not in memory.
    public func immediateCreate(parent: UInt64, name: FileName, mode: UInt32, flags: Int32, ctx: RequestContext)
        -> Result<(Entry, Opened), FSError>?
    {
        guard !InodeTable.isByID(parent), knownNotGroup(name, in: parent) else { return nil }
        do throws(FSError) {
            try requireWritable()
            try checkName(name)
        } catch {
            return .failure(error)
        }
        let mode = UInt32(S_IFREG) | (mode & 0o7777)
        guard let made = naming.createOpenedNow(parent: Int64(parent), name: name, mode: mode, uid: ctx.uid, gid: ctx.gid) else { return nil }
        let n: Node
        switch made {
        case .success(let node): n = node
        case .failure(let e) where e.errno == EEXIST: return nil
        case .failure(let e): return .failure(e)
        }
        let w: FileWriter
        do throws(FSError) {
            let (writer, new) = try retainWriterMade(ino: UInt64(n.id), fileID: nil, size: 0, named: true, created: true, createdName: name.string)
            w = writer
            if !new { Task { await writer.markCreated(name: name.string) } }
        } catch {
            let naming = naming, id = n.id
            Task { _ = try? await naming.closed(id) }
            return .failure(error)
        }
        let e = counted(n.attr)
        return .success((e, makeHandle(ino: UInt64(n.id), fileID: nil, size: 0, writer: w)))
    }

    /// chmod, chown, utimens of a named node (no size change: a truncate goes through the
    /// writer), when the naming engine changes it on the calling thread (the local SQLite
    /// database). The same steps as the async `setattr`.
    public func immediateSetattr(ino: UInt64, changes c: SetAttr, ctx: RequestContext) -> Result<(Attr, Double), FSError>? {
        guard c.size == nil, !InodeTable.isByID(ino) else { return nil }
        do throws(FSError) { try requireWritable() } catch { return .failure(error) }
        guard let done = naming.setAttributesNow(Int64(ino), mode: c.mode, uid: c.uid, gid: c.gid, atime: c.atime, mtime: c.mtime) else {
            return nil
        }
        return done.map { updated in
            if let m = c.mtime, let w = writer(of: ino) { w.timesSet(mtime: m) }
            return (liveAttrNow(updated), options.attrTimeout)
        }
    }

    /// open(2) for reading of a named file whose node the naming engine has at hand (memory or
    /// the local database): the same handle the async `open` makes. A small file's download
    /// starts in a Task of its own (the kernel's read request finds it on its way).
    public func immediateOpen(ino: UInt64, flags: Int32, ctx: RequestContext) -> Result<Opened, FSError>? {
        guard !InodeTable.isByID(ino), !Self.wantsWrite(flags), flags & O_TRUNC == 0,
              let found = naming.openedForReadingNow(Int64(ino)) else { return nil }
        switch found {
        case .failure(let e): return .failure(e)
        case .success(nil): return .failure(FSError.noent("inode \(ino) is gone"))
        case .success(let (n, unchanged)?):
            if n.isDirectory { return .failure(FSError(EISDIR, "is a directory")) }
            let o = makeHandle(ino: ino, fileID: n.fileID, size: n.size, writer: nil, unchanged: unchanged)
            if n.size <= Prefetcher.primeLimit, let pf = handles.withLock({ $0.get(o.fh) })?.prefetcher {
                Task { await pf.prime() }
            }
            return .success(o)
        }
    }

    /// close(2) of a descriptor with nothing to make durable (no writer: a read-only handle) and
    /// no POSIX lock of its owner to drop: nothing to do, answered at once (a `cat` of a small
    /// file costs one Task less).
    public func immediateFlush(ino: UInt64, fh: UInt64, lockOwner: UInt64) -> Result<Void, FSError>? {
        guard let h = handles.withLock({ $0.get(fh) }), h.writer == nil,
              !heldLocks.withLock({ $0.contains(HeldLock(ino: ino, owner: lockOwner, kind: .posix)) }) else { return nil }
        return .success(())
    }

    /// The last close of a named file's handle, when nothing in it needs awaiting: no flock of
    /// its owner held, a writer (if any) left settled by the close's flush, a local naming
    /// engine, and not the last reference of an unlinked node (its purge goes the async way).
    /// The same steps as the async `release`, in the same order; a read-ahead's buffers are
    /// dropped by a Task of their own, which the reply does not wait for.
    public func immediateRelease(ino: UInt64, fh: UInt64, lockOwner: UInt64, flockRelease: Bool) -> Result<Void, FSError>? {
        guard !InodeTable.isByID(ino) else { return nil }
        if flockRelease, heldLocks.withLock({ $0.contains(HeldLock(ino: ino, owner: lockOwner, kind: .flock)) }) { return nil }
        guard let h = handles.withLock({ $0.get(fh) }),
              h.writer.map({ $0.slave == nil && $0.settled }) ?? true,
              !inodes.withLock({ $0.closeWouldPurge(ino) }),
              case .success(nil)? = naming.closedNow(Int64(ino)) else { return nil }
        guard handles.withLock({ $0.remove(fh) }) != nil else { return .success(()) }
        if let pf = h.prefetcher { Task { await pf.dropAll() } }
        // As `releaseWriter` + `dropIfIdle`, with "settled" for the clean check: a writer
        // changed meanwhile stays.
        if let w = h.writer, dropWriterReference(ino: ino) === w, w.settled { forgetIdleWriter(ino: ino, w) }
        if case .purge(let id) = inodes.withLock({ $0.closed(ino) }) {
            Task { await self.purge(Int64(id)) }   // a forget raced the check above
        }
        return .success(())
    }

    public func immediateGetattr(ino: UInt64) -> (Attr, Double)? {
        guard ino != InodeTable.root, !InodeTable.isByID(ino), let n = nodeNow(Int64(ino)) else { return nil }
        return (liveAttrNow(n), options.attrTimeout)
    }

    public func immediateLookup(parent: UInt64, name: FileName) -> Result<Entry, FSError>? {
        // Group names at the root lead to the by-id view: the async way.
        guard !InodeTable.isByID(parent), name.count <= Self.nameMax, knownNotGroup(name, in: parent) else { return nil }
        let found: Node?
        switch naming.cachedEntry(parent: Int64(parent), name: name) {
        case .absent:
            found = nil
        case .child(let id):
            guard let n = nodeNow(id) else { return nil }
            found = n
        case nil:
            // Not in the cache: a local database is read on this thread (it fills the cache).
            guard case .success(let n)? = naming.lookupNow(parent: Int64(parent), name: name) else { return nil }
            found = n
        }
        guard let n = found else {
            let miss = FSError.noent("\(name) not found")
            return options.kernelNegativeCache ? .success(negativeEntry(timeout: options.entryTimeout)) : .failure(miss)
        }
        return .success(counted(liveAttrNow(n)))
    }
}
