import FuseTypes
import GRDB
import Synchronization

/// Nodes and names of the naming database kept in memory, so lookups and stats of the named tree
/// cost no database round trip (issue 12: a GRDB read is a thread hop each way, hundreds of
/// microseconds on a small VM; the same answer from memory is a dictionary lookup).
///
/// Coherence comes from the database itself, not from the callers: the cache is a GRDB
/// `TransactionObserver` of the `nodes` and `entries` tables, so every committed change, by any
/// code path, drops what it touched (a node by its row id; a name by the entry row id it was read
/// with; any new name, created or renamed to, drops the cached "no such name" answers). A read fills the cache only if no
/// change committed while it ran (a generation counter), so a slow reader never puts back a value
/// a writer has just replaced. The cache is bounded; past the bound it starts over.
public final class NamingCache: TransactionObserver, Sendable {
    struct EntryKey: Hashable, Sendable {
        var parent: Int64
        var name: [UInt8]
    }

    public enum EntryHit: Sendable {
        case child(Int64)
        case absent
    }

    private struct State {
        var generation: UInt64 = 0
        var nodes: [Int64: Node] = [:]
        var entries: [EntryKey: (row: Int64, child: Int64)] = [:]
        var keyOfRow: [Int64: EntryKey] = [:]
        var absent = Set<EntryKey>()
        // Changes of the transaction in progress, applied when it commits.
        var changedNodes = Set<Int64>()
        var changedRows = Set<Int64>()
        var insertedEntry = false
    }

    private let state = Mutex(State())
    package init() {}
    static let capacity = 200_000

    // MARK: - Reads

    package var generation: UInt64 { state.withLock { $0.generation } }

    package func node(_ id: Int64) -> Node? { state.withLock { $0.nodes[id] } }

    package func entry(parent: Int64, name: FileName) -> EntryHit? {
        let key = EntryKey(parent: parent, name: name.bytes)
        return state.withLock { s in
            if let e = s.entries[key] { return .child(e.child) }
            return s.absent.contains(key) ? .absent : nil
        }
    }

    /// Stores what a read that began at `generation` found, unless something changed since.
    package func fill(node: Node, generation: UInt64) {
        state.withLock { s in
            guard s.generation == generation else { return }
            Self.makeRoom(&s)
            s.nodes[node.id] = node
        }
    }

    package func fill(parent: Int64, name: FileName, entryRow: Int64?, child: Node?, generation: UInt64) {
        let key = EntryKey(parent: parent, name: name.bytes)
        state.withLock { s in
            guard s.generation == generation else { return }
            Self.makeRoom(&s)
            if let entryRow, let child {
                s.entries[key] = (entryRow, child.id)
                s.keyOfRow[entryRow] = key
                s.nodes[child.id] = child
            } else {
                s.absent.insert(key)
            }
        }
    }

    /// A change committed outside this process (another mount of a shared tree), or by an
    /// engine that does not observe its database: drops what it touched. `entries` nil: every
    /// name (the change feed was interrupted and what changed meanwhile is unknown).
    package func invalidate(nodes: [Int64], entries: [DirEntryKey]?) {
        state.withLock { s in
            s.generation &+= 1
            for id in nodes { s.nodes[id] = nil }
            guard let entries else {
                s.nodes.removeAll(keepingCapacity: true)
                s.entries.removeAll(keepingCapacity: true)
                s.keyOfRow.removeAll(keepingCapacity: true)
                s.absent.removeAll(keepingCapacity: true)
                return
            }
            for e in entries {
                let key = EntryKey(parent: e.parent, name: e.name.bytes)
                if let old = s.entries.removeValue(forKey: key) { s.keyOfRow[old.row] = nil }
                s.absent.remove(key)
            }
        }
    }

    private static func makeRoom(_ s: inout State) {
        guard s.nodes.count + s.entries.count + s.absent.count >= capacity else { return }
        s.nodes.removeAll(keepingCapacity: true)
        s.entries.removeAll(keepingCapacity: true)
        s.keyOfRow.removeAll(keepingCapacity: true)
        s.absent.removeAll(keepingCapacity: true)
    }

    // MARK: - TransactionObserver (called on the database's writer)

    public func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool {
        eventKind.tableName == "nodes" || eventKind.tableName == "entries"
    }

    public func databaseDidChange(with event: DatabaseEvent) {
        let table = event.tableName, row = event.rowID, kind = event.kind
        state.withLock { s in
            if table == "nodes" {
                s.changedNodes.insert(row)
            } else {
                s.changedRows.insert(row)
                // A new name (an insert, or a rename's update) may be one cached as absent.
                if kind != .delete { s.insertedEntry = true }
            }
        }
    }

    public func databaseDidCommit(_ db: Database) {
        state.withLock { s in
            s.generation &+= 1
            for id in s.changedNodes { s.nodes[id] = nil }
            for row in s.changedRows {
                if let key = s.keyOfRow.removeValue(forKey: row) { s.entries[key] = nil }
            }
            if s.insertedEntry { s.absent.removeAll(keepingCapacity: true) }
            s.changedNodes.removeAll(keepingCapacity: true)
            s.changedRows.removeAll(keepingCapacity: true)
            s.insertedEntry = false
        }
    }

    public func databaseDidRollback(_ db: Database) {
        state.withLock { s in
            s.generation &+= 1
            s.changedNodes.removeAll(keepingCapacity: true)
            s.changedRows.removeAll(keepingCapacity: true)
            s.insertedEntry = false
        }
    }
}
