import CFuse3
import Dispatch
import FuseTypes
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `KernelCacheNotifier` over `fuse_lowlevel_notify_inval_entry` / `_inval_inode`.
///
/// Notifications are queued and sent in order from one serial dispatch queue, never from the
/// caller's thread. libfuse: these calls "must not be called in the execution path of a related
/// filesystem operation": the kernel may wait for a lookup in the parent, or a setattr, unlink,
/// readdir... of the inode, to be answered before it takes the notification. A libfuse worker or
/// a request's Task that sent it itself could wait for its own reply. From the queue, the worst
/// case is that the notification waits until that request's Task has replied.
/// `inval_inode` with offset 0 and length 0 drops the attributes and all cached pages (after
/// writing back dirty ones, which needs our write handlers: another reason not to block them).
final class KernelNotifier: KernelCacheNotifier {
    /// The session; nil once `close()` has run (teardown destroys the session after that).
    /// Invariant (for the @unchecked wrapper): the pointer is only used on `queue` while set.
    private struct Session: @unchecked Sendable { let raw: OpaquePointer }
    private let session: Mutex<Session?>
    private let queue = DispatchQueue(label: "fdfsfs.kernel-notify")

    private let logger: Logger

    init(session: OpaquePointer, logger: Logger) {
        self.session = Mutex(Session(raw: session))
        self.logger = logger
    }

    func invalidateEntry(parent: UInt64, name: FileName) {
        queue.async { [self] in
            guard let se = session.withLock({ $0 }) else { return }
            let rc = withCString(name) { fuse_lowlevel_notify_inval_entry(se.raw, fuse_ino_t(parent), $0, name.count) }
            report(rc, "inval_entry \(parent)/\(name)")
        }
    }

    func invalidateInode(ino: UInt64) {
        queue.async { [self] in
            guard let se = session.withLock({ $0 }) else { return }
            let rc = fuse_lowlevel_notify_inval_inode(se.raw, fuse_ino_t(ino), 0, 0)
            report(rc, "inval_inode \(ino)")
        }
    }

    /// Stops sending: waits for the notification being sent (if any); later ones are dropped.
    /// Called before the session is destroyed.
    func close() {
        session.withLock { $0 = nil }
        queue.sync {}
    }

    /// ENOENT: the kernel has nothing cached for it, which is fine.
    private func report(_ rc: Int32, _ what: @autoclosure () -> String) {
        if rc == 0 || rc == -ENOENT { return }
        logger.debug("kernel notification failed", metadata: ["notify": "\(what())", "errno": "\(-rc)"])
    }
}
