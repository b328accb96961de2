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
///
/// A directory can be known *complete* (a shared engine marks one its mount has just made):
/// every name in it is cached, so a name not cached is absent without asking the database.
/// Another mount's change of a name in it (or an interrupted change feed) ends that; this
/// mount's own creates and removes keep it (they update the cached names themselves).
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
        /// Directories whose every name is in `entries`.
        var complete = Set<Int64>()
        /// Counts invalidations that came from elsewhere (see `markComplete`).
        var foreignGeneration: UInt64 = 0
        // Changes of the transaction in progress, applied when it commits.
        var changedNodes = Set<Int64>()
        var changedRows = Set<Int64>()
        var insertedEntry = false
        /// Rows inserted into `entries` by the transaction in progress.
        var insertedRows = 0
        /// Names the transaction in progress announced it creates (`willCreate`): applied as
        /// they are at commit, instead of forgetting every "no such name".
        var announced: [(key: EntryKey, row: Int64, child: Node)] = []
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
            return s.absent.contains(key) || s.complete.contains(parent) ? .absent : nil
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
    /// `ownCreateOrRemove`: this mount's create (whose name is then `created`) or remove; the
    /// directories stay complete. Any other change of a name ends its directory's completeness.
    package func invalidate(nodes: [Int64], entries: [DirEntryKey]?, ownCreateOrRemove: Bool = false) {
        state.withLock { s in
            s.generation &+= 1
            if !ownCreateOrRemove { s.foreignGeneration &+= 1 }
            for id in nodes { s.nodes[id] = nil }
            guard let entries else {
                Self.clear(&s)
                return
            }
            for e in entries {
                let key = EntryKey(parent: e.parent, name: e.name.bytes)
                if let old = s.entries.removeValue(forKey: key) { s.keyOfRow[old.row] = nil }
                s.absent.remove(key)
                if !ownCreateOrRemove { s.complete.remove(e.parent) }
            }
        }
    }

    /// The generation `markComplete` compares with.
    package var foreignGeneration: UInt64 { state.withLock { $0.foreignGeneration } }

    /// `dir` was just made by this mount (empty): complete, unless a change from elsewhere was
    /// seen since `foreignGeneration` was read (before the directory was made).
    package func markComplete(_ dir: Int64, foreignGeneration g: UInt64) {
        state.withLock { s in
            guard s.foreignGeneration == g else { return }
            Self.makeRoom(&s)
            s.complete.insert(dir)
        }
    }

    /// Called inside a write transaction that has just inserted the name `parent`/`name` (entry
    /// row `row`) of the new node `child`: when that transaction commits, the name and node are
    /// cached at once (in the same step as the commit's invalidation, so no lookup in between can
    /// miss the name), the directory keeps its completeness and its other "no such name" answers,
    /// and a new directory is complete (it is empty). A transaction that inserts a name it did
    /// not announce, or renames one, still forgets them all.
    package func willCreate(parent: Int64, name: FileName, row: Int64, child: Node) {
        state.withLock { $0.announced.append((EntryKey(parent: parent, name: name.bytes), row, child)) }
    }

    /// A name this mount just created or renamed to (committed): recorded whatever the
    /// generation, so a complete directory stays complete. (`entryRow` nil: not known; the
    /// name is then dropped by key only, as a shared engine does.)
    package func created(parent: Int64, name: FileName, entryRow: Int64?, child: Node) {
        let key = EntryKey(parent: parent, name: name.bytes)
        state.withLock { s in
            Self.makeRoom(&s)
            s.entries[key] = (entryRow ?? -1, child.id)
            if let entryRow { s.keyOfRow[entryRow] = key }
            s.nodes[child.id] = child
            s.absent.remove(key)
        }
    }

    /// Every name of `parent`, read from the database by a read that began at `generation` and
    /// `foreignGeneration`: cached, and the directory complete, unless something changed since.
    package func fillDirectory(_ parent: Int64, _ names: [(row: Int64, name: FileName, node: Node)],
                               generation: UInt64, foreignGeneration: UInt64) {
        state.withLock { s in
            guard s.generation == generation, s.foreignGeneration == foreignGeneration else { return }
            Self.makeRoom(&s)
            for e in names {
                let key = EntryKey(parent: parent, name: e.name.bytes)
                s.entries[key] = (e.row, e.node.id)
                s.keyOfRow[e.row] = key
                s.nodes[e.node.id] = e.node
                s.absent.remove(key)
            }
            s.complete.insert(parent)
        }
    }

    package func isComplete(_ dir: Int64) -> Bool { state.withLock { $0.complete.contains(dir) } }

    private static func clear(_ s: inout State) {
        s.nodes.removeAll(keepingCapacity: true)
        s.entries.removeAll(keepingCapacity: true)
        s.keyOfRow.removeAll(keepingCapacity: true)
        s.absent.removeAll(keepingCapacity: true)
        s.complete.removeAll(keepingCapacity: true)
    }

    private static func makeRoom(_ s: inout State) {
        guard s.nodes.count + s.entries.count + s.absent.count >= capacity else { return }
        clear(&s)
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
                if kind == .insert { s.insertedRows += 1 } else if kind == .update { s.insertedEntry = true }
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
            if s.insertedEntry || s.insertedRows > s.announced.count {
                s.absent.removeAll(keepingCapacity: true)
                s.complete.removeAll(keepingCapacity: true)
            }
            if !s.announced.isEmpty {
                Self.makeRoom(&s)
                for a in s.announced {
                    s.absent.remove(a.key)
                    s.entries[a.key] = (a.row, a.child.id)
                    s.keyOfRow[a.row] = a.key
                    s.nodes[a.child.id] = a.child
                    if a.child.isDirectory { s.complete.insert(a.child.id) }
                }
            }
            Self.endTransaction(&s)
        }
    }

    private static func endTransaction(_ s: inout State) {
        s.changedNodes.removeAll(keepingCapacity: true)
        s.changedRows.removeAll(keepingCapacity: true)
        s.insertedEntry = false
        s.insertedRows = 0
        s.announced.removeAll(keepingCapacity: true)
    }

    public func databaseDidRollback(_ db: Database) {
        state.withLock { s in
            s.generation &+= 1
            Self.endTransaction(&s)
        }
    }
}
