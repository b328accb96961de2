import CFuse3
import FuseTypes
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Builds the `fuse_lowlevel_ops` table. Every closure is non-capturing (C function pointers
/// cannot capture); the Swift state comes from `fuse_req_userdata`.
enum LowLevelOps {


    /// - Parameter locks: install `getlk`, `setlk` and `flock` (`FuseFilesystem.supportsLocks`).
    ///   libfuse asks the kernel for FUSE_CAP_POSIX_LOCKS / FUSE_CAP_FLOCK_LOCKS exactly when
    ///   these are non-NULL; without them the kernel keeps locks locally.
    static func make(locks: Bool = false) -> fuse_lowlevel_ops {
        var ops = fuse_lowlevel_ops()
        ops.`init` = { userdata, conn in
            guard let userdata, let conn else { return }
            let bridge = Unmanaged<FuseBridge>.fromOpaque(userdata).takeUnretainedValue()
            let t = bridge.tuning
            let cap = conn.pointee.capable
            var want = conn.pointee.want
            for flag in [UInt32(FUSE_CAP_ASYNC_READ), UInt32(FUSE_CAP_PARALLEL_DIROPS), UInt32(FUSE_CAP_CACHE_SYMLINKS)] where cap & flag != 0 {
                want |= flag
            }
            if t.readdirplus && cap & UInt32(FUSE_CAP_READDIRPLUS) != 0 {
                want |= UInt32(FUSE_CAP_READDIRPLUS) | UInt32(FUSE_CAP_READDIRPLUS_AUTO)
            }
            // Splice is not needed: replies come from Swift buffers.
            want &= ~(UInt32(FUSE_CAP_SPLICE_READ) | UInt32(FUSE_CAP_SPLICE_WRITE) | UInt32(FUSE_CAP_SPLICE_MOVE))
            conn.pointee.want = want
            conn.pointee.max_write = t.maxWrite
            if t.maxReadahead < conn.pointee.max_readahead || conn.pointee.max_readahead == 0 {
                conn.pointee.max_readahead = t.maxReadahead
            }
            conn.pointee.time_gran = 1
            bridge.logger.info("fuse init", metadata: [
                "proto": "\(conn.pointee.proto_major).\(conn.pointee.proto_minor)", "max_write": "\(conn.pointee.max_write)",
                "max_readahead": "\(conn.pointee.max_readahead)", "readdirplus": "\(want & UInt32(FUSE_CAP_READDIRPLUS) != 0)",
                "posix_locks": "\(want & UInt32(FUSE_CAP_POSIX_LOCKS) != 0)", "flock": "\(want & UInt32(FUSE_CAP_FLOCK_LOCKS) != 0)",
            ])
            bridge.fs.initialized()
        }
        ops.destroy = { userdata in
            guard let userdata else { return }
            Unmanaged<FuseBridge>.fromOpaque(userdata).takeUnretainedValue().fs.destroyed()
        }
        ops.lookup = { req, parent, name in
            let name = fname(name), ctx = FuseBridge.context(req)
            if let now = FuseBridge.from(req).fs.immediateLookup(parent: parent, name: name) {
                return FuseBridge.answer(req, "lookup", EntryReply.self, now)
            }
            FuseBridge.dispatch(req, "lookup", EntryReply.self) { fs throws(FSError) in try await fs.lookup(parent: parent, name: name, ctx: ctx) }
        }
        ops.forget = { req, ino, n in
            FuseBridge.from(req).fs.forget(ino: ino, nlookup: n)
            fuse_reply_none(req)
        }
        ops.forget_multi = { req, count, forgets in
            let fs = FuseBridge.from(req).fs
            if let forgets {
                for i in 0..<count { fs.forget(ino: forgets[i].ino, nlookup: forgets[i].nlookup) }
            }
            fuse_reply_none(req)
        }
        ops.getattr = { req, ino, fi in
            let fh = fi?.pointee.fh
            if let (a, t) = FuseBridge.from(req).fs.immediateGetattr(ino: ino) {
                return FuseBridge.answer(req, "getattr", AttrReply.self, .success((a, t)))
            }
            FuseBridge.dispatch(req, "getattr", AttrReply.self) { fs throws(FSError) in try await fs.getattr(ino: ino, fh: fh) }
        }
        ops.setattr = { req, ino, attr, toSet, fi in
            var c = SetAttr()
            let s = Int32(toSet)
            if let a = attr?.pointee {
                if s & FUSE_SET_ATTR_MODE != 0 { c.mode = UInt32(a.st_mode) }
                if s & FUSE_SET_ATTR_UID != 0 { c.uid = UInt32(a.st_uid) }
                if s & FUSE_SET_ATTR_GID != 0 { c.gid = UInt32(a.st_gid) }
                if s & FUSE_SET_ATTR_SIZE != 0 { c.size = Int64(a.st_size) }
                if s & FUSE_SET_ATTR_ATIME_NOW != 0 { c.atime = .now }
                else if s & FUSE_SET_ATTR_ATIME != 0 { c.atime = .time(Timespec(sec: Int64(a.st_atim.tv_sec), nsec: Int64(a.st_atim.tv_nsec))) }
                if s & FUSE_SET_ATTR_MTIME_NOW != 0 { c.mtime = .now }
                else if s & FUSE_SET_ATTR_MTIME != 0 { c.mtime = .time(Timespec(sec: Int64(a.st_mtim.tv_sec), nsec: Int64(a.st_mtim.tv_nsec))) }
            }
            c.fh = fi?.pointee.fh
            let changes = c, ctx = FuseBridge.context(req)
            if let now = FuseBridge.from(req).fs.immediateSetattr(ino: ino, changes: changes, ctx: ctx) {
                return FuseBridge.answer(req, "setattr", AttrReply.self, now)
            }
            FuseBridge.dispatch(req, "setattr", AttrReply.self) { fs throws(FSError) in try await fs.setattr(ino: ino, changes: changes, ctx: ctx) }
        }
        ops.readlink = { req, ino in
            FuseBridge.dispatch(req, "readlink", ReadlinkReply.self) { fs throws(FSError) in try await fs.readlink(ino: ino) }
        }
        ops.mknod = { req, parent, name, mode, rdev in
            let name = fname(name), ctx = FuseBridge.context(req), m = UInt32(mode), rd = UInt64(rdev)
            FuseBridge.dispatch(req, "mknod", EntryReply.self) { fs throws(FSError) in try await fs.mknod(parent: parent, name: name, mode: m, rdev: rd, ctx: ctx) }
        }
        ops.mkdir = { req, parent, name, mode in
            let name = fname(name), ctx = FuseBridge.context(req), m = UInt32(mode)
            FuseBridge.dispatch(req, "mkdir", EntryReply.self) { fs throws(FSError) in try await fs.mkdir(parent: parent, name: name, mode: m, ctx: ctx) }
        }
        ops.unlink = { req, parent, name in
            let name = fname(name), ctx = FuseBridge.context(req)
            FuseBridge.dispatch(req, "unlink", EmptyReply.self) { fs throws(FSError) in try await fs.unlink(parent: parent, name: name, ctx: ctx) }
        }
        ops.rmdir = { req, parent, name in
            let name = fname(name), ctx = FuseBridge.context(req)
            FuseBridge.dispatch(req, "rmdir", EmptyReply.self) { fs throws(FSError) in try await fs.rmdir(parent: parent, name: name, ctx: ctx) }
        }
        ops.symlink = { req, link, parent, name in
            let target = fname(link), name = fname(name), ctx = FuseBridge.context(req)
            FuseBridge.dispatch(req, "symlink", EntryReply.self) { fs throws(FSError) in try await fs.symlink(target: target, parent: parent, name: name, ctx: ctx) }
        }
        ops.rename = { req, parent, name, newParent, newName, flags in
            let name = fname(name), newName = fname(newName), ctx = FuseBridge.context(req), f = UInt32(flags)
            FuseBridge.dispatch(req, "rename", EmptyReply.self) { fs throws(FSError) in
                try await fs.rename(parent: parent, name: name, newParent: newParent, newName: newName, flags: f, ctx: ctx)
            }
        }
        ops.link = { req, ino, newParent, newName in
            let newName = fname(newName), ctx = FuseBridge.context(req)
            FuseBridge.dispatch(req, "link", EntryReply.self) { fs throws(FSError) in try await fs.link(ino: ino, newParent: newParent, newName: newName, ctx: ctx) }
        }
        ops.open = { req, ino, fi in
            let info = fi!.pointee, ctx = FuseBridge.context(req)
            if let now = FuseBridge.from(req).fs.immediateOpen(ino: ino, flags: info.flags, ctx: ctx) {
                return FuseBridge.answer(req, "open", OpenReply.self, now.map { ($0, info, ino) })
            }
            FuseBridge.dispatch(req, "open", OpenReply.self) { fs throws(FSError) in (try await fs.open(ino: ino, flags: info.flags, ctx: ctx), info, ino) }
        }
        ops.create = { req, parent, name, mode, fi in
            let name = fname(name), info = fi!.pointee, ctx = FuseBridge.context(req), m = UInt32(mode)
            if let now = FuseBridge.from(req).fs.immediateCreate(parent: parent, name: name, mode: m, flags: info.flags, ctx: ctx) {
                return FuseBridge.answer(req, "create", CreateReply.self, now.map { ($0.0, $0.1, info) })
            }
            FuseBridge.dispatch(req, "create", CreateReply.self) { fs throws(FSError) in
                let (e, o) = try await fs.create(parent: parent, name: name, mode: m, flags: info.flags, ctx: ctx)
                return (e, o, info)
            }
        }
        ops.read = { req, ino, size, off, fi in
            let fh = fi?.pointee.fh ?? 0, offset = Int64(off)
            FuseBridge.dispatch(req, "read", DataReply.self) { fs throws(FSError) in try await fs.read(ino: ino, fh: fh, offset: offset, size: size) }
        }
        ops.write = { req, ino, buf, size, off, fi in
            let fh = fi?.pointee.fh ?? 0, offset = Int64(off)
            let data: [UInt8] = buf.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
            if let now = FuseBridge.from(req).fs.immediateWrite(ino: ino, fh: fh, offset: offset, data: data) {
                return FuseBridge.answer(req, "write", WriteReply.self, now)
            }
            FuseBridge.dispatch(req, "write", WriteReply.self) { fs throws(FSError) in try await fs.write(ino: ino, fh: fh, offset: offset, data: data) }
        }
        ops.flush = { req, ino, fi in
            let fh = fi?.pointee.fh ?? 0, owner = fi?.pointee.lock_owner ?? 0
            if let now = FuseBridge.from(req).fs.immediateFlush(ino: ino, fh: fh, lockOwner: owner) {
                return FuseBridge.answer(req, "flush", EmptyReply.self, now)
            }
            FuseBridge.dispatch(req, "flush", EmptyReply.self) { fs throws(FSError) in try await fs.flush(ino: ino, fh: fh, lockOwner: owner) }
        }
        ops.release = { req, ino, fi in
            let fh = fi?.pointee.fh ?? 0, owner = fi?.pointee.lock_owner ?? 0
            let flockRelease = (fi?.pointee.flock_release ?? 0) != 0
            if let now = FuseBridge.from(req).fs.immediateRelease(ino: ino, fh: fh, lockOwner: owner, flockRelease: flockRelease) {
                return FuseBridge.answer(req, "release", EmptyReply.self, now)
            }
            FuseBridge.dispatch(req, "release", EmptyReply.self) { fs throws(FSError) in
                try await fs.release(ino: ino, fh: fh, lockOwner: owner, flockRelease: flockRelease)
            }
        }
        ops.fsync = { req, ino, datasync, fi in
            let fh = fi?.pointee.fh ?? 0, d = datasync != 0
            FuseBridge.dispatch(req, "fsync", EmptyReply.self) { fs throws(FSError) in try await fs.fsync(ino: ino, fh: fh, dataOnly: d) }
        }
        ops.opendir = { req, ino, fi in
            let info = fi!.pointee
            FuseBridge.dispatch(req, "opendir", OpenDirReply.self) { fs throws(FSError) in (try await fs.opendir(ino: ino, flags: info.flags), info, ino) }
        }
        ops.readdir = { req, ino, size, off, fi in
            let fh = fi?.pointee.fh ?? 0, offset = Int64(off)
            FuseBridge.dispatch(req, "readdir", DirectoryReply.self) { fs throws(FSError) in
                (try await fs.readdir(ino: ino, fh: fh, offset: offset, plus: false), size, false)
            }
        }
        ops.readdirplus = { req, ino, size, off, fi in
            let fh = fi?.pointee.fh ?? 0, offset = Int64(off)
            FuseBridge.dispatch(req, "readdirplus", DirectoryReply.self) { fs throws(FSError) in
                (try await fs.readdir(ino: ino, fh: fh, offset: offset, plus: true), size, true)
            }
        }
        ops.releasedir = { req, ino, fi in
            let fh = fi?.pointee.fh ?? 0
            FuseBridge.dispatch(req, "releasedir", EmptyReply.self) { fs throws(FSError) in try await fs.releasedir(ino: ino, fh: fh) }
        }
        ops.statfs = { req, ino in
            FuseBridge.dispatch(req, "statfs", StatfsReply.self) { fs throws(FSError) in try await fs.statfs(ino: ino) }
        }
        ops.setxattr = { req, ino, name, value, size, flags in
            let name = cstr(name), f = XattrFlags(rawValue: flags), ctx = FuseBridge.context(req)
            let bytes: [UInt8] = value.map { p in p.withMemoryRebound(to: UInt8.self, capacity: size) { Array(UnsafeBufferPointer(start: $0, count: size)) } } ?? []
            FuseBridge.dispatch(req, "setxattr", EmptyReply.self) { fs throws(FSError) in try await fs.setxattr(ino: ino, name: name, value: bytes, flags: f, ctx: ctx) }
        }
        ops.getxattr = { req, ino, name, size in
            let name = cstr(name)
            if let now = FuseBridge.from(req).fs.immediateGetxattr(ino: ino, name: name) {
                return FuseBridge.answer(req, "getxattr", XattrReply.self, now.map { XattrAnswer.resolve(value: $0, requestedSize: size) })
            }
            FuseBridge.dispatch(req, "getxattr", XattrReply.self) { fs throws(FSError) in
                XattrAnswer.resolve(value: try await fs.getxattr(ino: ino, name: name), requestedSize: size)
            }
        }
        ops.listxattr = { req, ino, size in
            FuseBridge.dispatch(req, "listxattr", XattrReply.self) { fs throws(FSError) in
                XattrAnswer.resolve(value: XattrAnswer.list(try await fs.listxattr(ino: ino)), requestedSize: size)
            }
        }
        ops.removexattr = { req, ino, name in
            let name = cstr(name)
            FuseBridge.dispatch(req, "removexattr", EmptyReply.self) { fs throws(FSError) in try await fs.removexattr(ino: ino, name: name) }
        }
        ops.access = { req, ino, mask in
            FuseBridge.dispatch(req, "access", EmptyReply.self) { fs throws(FSError) in try await fs.access(ino: ino, mask: mask) }
        }
        if locks { installLocks(&ops) }
        return ops
    }

    private static func installLocks(_ ops: inout fuse_lowlevel_ops) {
        ops.getlk = { req, ino, fi, lock in
            let fh = fi?.pointee.fh ?? 0, owner = fi?.pointee.lock_owner ?? 0
            guard let query = lock.map({ fileLock($0.pointee) }) else { return FuseBridge.answer(req, "getlk", LockReply.self, .failure(FSError(EINVAL, "getlk without a lock"))) }
            FuseBridge.dispatch(req, "getlk", LockReply.self) { fs throws(FSError) in
                try await fs.getlk(ino: ino, fh: fh, owner: owner, lock: query)
            }
        }
        ops.setlk = { req, ino, fi, lock, sleep in
            let fh = fi?.pointee.fh ?? 0, owner = fi?.pointee.lock_owner ?? 0, wait = sleep != 0
            guard let request = lock.map({ fileLock($0.pointee) }) else { return FuseBridge.answer(req, "setlk", EmptyReply.self, .failure(FSError(EINVAL, "setlk without a lock"))) }
            FuseBridge.dispatch(req, "setlk", EmptyReply.self, interruptible: wait) { fs throws(FSError) in
                try await fs.setlk(ino: ino, fh: fh, owner: owner, lock: request, sleep: wait)
            }
        }
        ops.flock = { req, ino, fi, op in
            let fh = fi?.pointee.fh ?? 0, owner = fi?.pointee.lock_owner ?? 0, pid = FuseBridge.context(req).pid
            guard let (type, wait) = flockOperation(op) else { return FuseBridge.answer(req, "flock", EmptyReply.self, .failure(FSError(EINVAL, "flock operation \(op)"))) }
            FuseBridge.dispatch(req, "flock", EmptyReply.self, interruptible: wait) { fs throws(FSError) in
                try await fs.flock(ino: ino, fh: fh, owner: owner, type: type, pid: pid, sleep: wait)
            }
        }
    }
}

/// `struct flock` (as libfuse converts it: SEEK_SET, `l_len == 0` = to EOF) to a `FileLock`.
func fileLock(_ l: flock) -> FileLock {
    let type: LockType = switch Int32(l.l_type) {
    case F_RDLCK: .read
    case F_WRLCK: .write
    default: .unlock
    }
    let start = Int64(l.l_start), len = Int64(l.l_len)
    let end = len == 0 ? FileLock.toEOF : start &+ len &- 1
    return FileLock(type: type, start: start, end: end, pid: Int32(l.l_pid))
}

/// A `FileLock` to the `struct flock` `fuse_reply_lock` reads; nil (no conflict) is F_UNLCK.
func cFlock(_ lock: FileLock?) -> flock {
    var l = flock()
    l.l_whence = Int16(SEEK_SET)
    guard let lock, lock.type != .unlock else { l.l_type = Int16(F_UNLCK); return l }
    l.l_type = Int16(lock.type == .read ? F_RDLCK : F_WRLCK)
    l.l_start = off_t(lock.start)
    l.l_len = lock.end == FileLock.toEOF ? 0 : off_t(lock.end - lock.start + 1)
    l.l_pid = pid_t(lock.pid)
    return l
}

/// libfuse's flock `op` (LOCK_SH / LOCK_EX / LOCK_UN, with LOCK_NB when the caller must not
/// wait) as a lock type and whether to wait.
func flockOperation(_ op: Int32) -> (LockType, Bool)? {
    let wait = op & LOCK_NB == 0
    switch op & ~LOCK_NB {
    case LOCK_SH: return (.read, wait)
    case LOCK_EX: return (.write, wait)
    case LOCK_UN: return (.unlock, false)
    default: return nil
    }
}

/// Copies a C string argument (it dies when the callback returns).
private func cstr(_ p: UnsafePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }

/// Copies a name or symlink target argument byte for byte (not decoded as UTF-8: see `FileName`).
func fname(_ p: UnsafePointer<CChar>?) -> FileName {
    guard let p else { return FileName(bytes: []) }
    return FileName(bytes: Array(UnsafeRawBufferPointer(start: p, count: strlen(p))))
}
