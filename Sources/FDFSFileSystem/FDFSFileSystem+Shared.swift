import FuseTypes

/// A named tree shared with other mounts (`-o meta=postgres://…`): their changes arrive from the
/// engine's change feed (already applied to the engine's own cache) and drop what the kernel
/// caches of those names and nodes, so they show here within the feed's delay instead of after
/// the entry and attribute timeouts.
extension FDFSFileSystem {
    func remoteChanged(_ change: RemoteChange) {
        remoteGeneration.add(1, ordering: .releasing)
        guard let notifier = kernelNotifier.withLock({ $0 }) else { return }
        // Never on a thread answering a request (the kernel may wait on that request's inode).
        Task.detached {
            for e in change.entries { notifier.invalidateEntry(parent: UInt64(e.parent), name: e.name) }
            for id in change.nodes { notifier.invalidateInode(ino: UInt64(id)) }
        }
    }
}
