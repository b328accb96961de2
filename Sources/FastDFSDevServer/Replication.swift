// Replication between the storages of a group, modelled on the real storage sync
// [storage/storage_sync.c, storage/storage_service.c `storage_sync_*`].
//
// Every storage appends what it does to its binlog (Binlog.swift). For each peer in the group a
// `Replicator` reads that binlog from its mark (`sync/storage<peer>.mark`, persisted every
// `markEvery` records and whenever it has caught up, as the real sync thread's
// `write_mark_file_freq`, default 500: after a restart the records since then are sent again and
// applied as a real destination applies repeated records), waits until the record is `--replication-lag` seconds old and both storages sync
// (running, and past the `--sync-resume-delay` after a restart), and applies it the way the real
// source and destination storages do (SyncApply.swift): the bytes to send are read from the
// source's *current* file at the recorded offset, and the destination applies them only when its
// own copy agrees (an append only at its end, a truncate only from the same size, ...). Copies
// that differ therefore stay different, as on a real cluster. Lower-case records (changes that
// were themselves synced copies) are not sent again. A record the destination refuses with an
// error the real sync thread does not skip (a truncate of a file the destination lacks) is retried
// until it succeeds, as the real sync thread does. Each record that reaches the destination also
// updates the sync timestamp the destination reports to the tracker (`last_synced_timestamp`).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Applies one source storage's binlog to one peer.
final class Replicator: Sendable {
    let source: StorageNode
    let peer: StorageNode
    /// The source's binlog (read) and the peer's (appended with lower-case records).
    let log: ReplicationLog
    let peerLog: ReplicationLog
    let cluster: ClusterState
    let lagMilliseconds: Int64
    let markPath: String
    private let applied = NIOLockedValueBox<Int64>(0)

    init(source: StorageNode, peer: StorageNode, log: ReplicationLog, peerLog: ReplicationLog, cluster: ClusterState) {
        self.source = source
        self.peer = peer
        self.log = log
        self.peerLog = peerLog
        self.cluster = cluster
        self.lagMilliseconds = Int64(cluster.configuration.replicationLag * 1000)
        self.markPath = source.disk.syncDirectory + "/storage\(peer.id.index).mark"
    }

    /// True when every record appended so far has been applied.
    var isCaughtUp: Bool { applied.withLockedValue { $0 } >= log.currentSize }

    /// Binlog bytes not applied to the peer yet.
    var pendingBytes: Int64 { max(0, log.currentSize - applied.withLockedValue { $0 }) }

    /// Loads the mark (blocking; at start) so the peer's reported sync timestamp survives restarts.
    func loadMark() -> SyncMark {
        let mark = SyncMark.read(markPath) ?? SyncMark()
        applied.withLockedValue { $0 = mark.offset }
        cluster.recordSynced(source: source.id, dest: peer.id, timestamp: mark.syncedTimestamp)
        return mark
    }

    /// Runs until cancelled.
    func run(io: BlockingIO) async {
        guard var mark = try? await io.run({ self.loadMark() }) else { return }
        var unsaved = 0
        while !Task.isCancelled {
            let from = mark.offset
            guard log.currentSize > from, let records = try? await io.run({ self.log.records(from: from) }),
                !records.isEmpty
            else {
                // Caught up: the mark is written now (storage_sync.c writes it when the binlog
                // has no more records, before sleeping sync_wait_msec).
                if unsaved > 0 {
                    await persist(mark, io: io)
                    unsaved = 0
                }
                do { try await Task.sleep(for: .milliseconds(20)) } catch { return }
                continue
            }
            for record in records {
                var next = mark
                next.offset = record.end
                if !record.isReplica {
                    let wait = record.milliseconds + lagMilliseconds - WallClock.milliseconds()
                    if wait > 0 {
                        do { try await Task.sleep(for: .milliseconds(wait)) } catch { return }
                    }
                    // A stopped storage neither sends nor receives; a restarted one only after the
                    // sync-resume delay.
                    while !(source.canSync(atMilliseconds: WallClock.milliseconds())
                        && peer.canSync(atMilliseconds: WallClock.milliseconds()))
                    {
                        do { try await Task.sleep(for: .milliseconds(50)) } catch { return }
                    }
                    let outcome = (try? await io.run { self.apply(record) }) ?? .retry
                    if outcome == .retry {
                        // The real sync thread rewinds to this record and tries again later.
                        do { try await Task.sleep(for: .milliseconds(500)) } catch { return }
                        break
                    }
                    if outcome == .delivered {
                        next.syncedTimestamp = record.seconds
                        cluster.recordSynced(source: source.id, dest: peer.id, timestamp: record.seconds)
                    }
                }
                mark = next
                applied.withLockedValue { $0 = next.offset }
                unsaved += 1
                if unsaved >= Self.markEvery {
                    await persist(mark, io: io)
                    unsaved = 0
                }
            }
        }
    }

    /// The real storage's default `write_mark_file_freq`.
    static let markEvery = 500

    /// Writes the mark file in place on the I/O pool (a failure leaves the older mark: its
    /// records are sent again after a restart).
    private func persist(_ mark: SyncMark, io: BlockingIO) async {
        let path = markPath
        _ = try? await io.run { try mark.overwrite(path) }
    }
}

/// Runs blocking work on the server's NIO thread pool.
struct BlockingIO: Sendable {
    let pool: NIOThreadPool
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }
}
