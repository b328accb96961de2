import FDFSFileSystem
import Foundation
import FuseTypes
import Logging
import PostgresNIO
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Schema set-up, the mount's session (heartbeat, expiry of dead ones) and the change feed.
extension PostgresNamingStore {
    func migrate() async throws(FSError) {
        let s = self.s, channel = self.channel, target = self.target
        let version: Int = try await call("schema") { client in
            try await client.withTransaction(logger: Logger(label: "fdfsfs.postgres.schema")) { conn in
                let lg = Logger(label: "fdfsfs.postgres.schema")
                try await conn.query("SELECT pg_advisory_xact_lock(hashtext(\("fdfsfs schema " + s)))", logger: lg)
                try await conn.query("CREATE SCHEMA IF NOT EXISTS \(unescaped: s)", logger: lg)
                var existing: Int? = nil
                for try await (t) in try await conn.query("SELECT to_regclass(\(s + ".meta"))::text", logger: lg).decode((String?).self) where t != nil {
                    for try await v in try await conn.query("SELECT value FROM \(unescaped: s).meta WHERE key = 'schema_version'", logger: lg).decode(String.self) {
                        existing = Int(v)
                    }
                }
                if let existing {
                    if existing > PostgresSchema.version { return existing }
                    // An older version is migrated; the functions are replaced in any case, so
                    // fixes in them reach old namespaces.
                    for stmt in PostgresSchema.migrations(from: existing, schema: s) { try await conn.query(PostgresQuery(unsafeSQL: stmt), logger: lg) }
                    for stmt in PostgresSchema.functions(s, channel) { try await conn.query(PostgresQuery(unsafeSQL: stmt), logger: lg) }
                    if existing < PostgresSchema.version {
                        try await conn.query("UPDATE \(unescaped: s).meta SET value = \(String(PostgresSchema.version)) WHERE key = 'schema_version'", logger: lg)
                    }
                    return PostgresSchema.version
                }
                for stmt in PostgresSchema.statements(schema: s, channel: channel) {
                    try await conn.query(PostgresQuery(unsafeSQL: stmt), logger: lg)
                }
                try await conn.query("INSERT INTO \(unescaped: s).meta (key, value) VALUES ('schema_version', \(String(PostgresSchema.version)))", logger: lg)
                return PostgresSchema.version
            }
        }
        if version > PostgresSchema.version {
            throw FSError(EPROTO, "the namespace \(target.namespace) in \(target.redacted) has schema version \(version), newer than version \(PostgresSchema.version) that this fdfsfs understands; upgrade fdfsfs on this host")
        }
    }

    // MARK: - Life cycle

    public func start(onRemoteChange: @escaping @Sendable (RemoteChange) -> Void) async throws(FSError) {
        try await open()
        try await register()
        let beat = Task { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                try? await Task.sleep(for: .seconds(max(1, self.sessionTTL / 4)))
                await self.heartbeat()
            }
        }
        let feed = Task { [weak self] in
            guard let self else { return }
            await self.changeFeed(onRemoteChange)
        }
        tasks.withLock { $0 += [beat, feed] }
        // Wait briefly for the feed, so the first operations already use the cache.
        for _ in 0..<50 where !feedUp.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(20)) }
    }

    public func shutdown() async {
        for t in tasks.withLock({ t in defer { t = [] }; return t }) { t.cancel() }
        feedUp.store(false, ordering: .relaxed)
        await flushCloses()
        let id = sid
        if id != 0 {
            // Our handles and locks go with the session; nodes only we held open are purged.
            try? await exec("end session", "DELETE FROM \(unescaped: s).sessions WHERE id = \(id)")
            _ = try? await rows("expire", "SELECT \(unescaped: s).fdfs_expire(\(id))") { try $0.decode(Int32.self) }
        }
        closing.store(true, ordering: .relaxed)
        runTask.withLock { $0?.cancel(); $0 = nil }
    }

    func register() async throws(FSError) {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let hostname = String(decoding: host.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let id = try await rows("session", """
            INSERT INTO \(unescaped: s).sessions (host, pid, mountpoint, ttl_s)
            VALUES (\(hostname), \(Int32(getpid())), \(mountpoint), \(Int32(sessionTTL))) RETURNING id
            """) { try $0.decode(Int64.self) }.first ?? 0
        sessionID.store(id, ordering: .relaxed)
        self.logger.info("naming: session \(id) in \(target.redacted) (expires \(sessionTTL) s after its last heartbeat)")
    }

    /// Keeps the session alive; expires dead ones. A session found expired (this host could not
    /// reach the database for longer than session_ttl) is registered again with its open handles.
    func heartbeat() async {
        let id = sid
        do {
            let alive = try await rows("heartbeat", "UPDATE \(unescaped: s).sessions SET heartbeat = now() WHERE id = \(id) RETURNING id") {
                try $0.decode(Int64.self)
            }
            if alive.isEmpty {
                self.logger.warning("naming: session \(id) had expired (no heartbeat for \(sessionTTL) s); registering again — files unlinked elsewhere meanwhile may be gone")
                try await register()
                let open = openCounts.withLock { $0 }
                for (ino, count) in open {
                    try await exec("handles", """
                        INSERT INTO \(unescaped: s).open_handles (session, ino, count)
                        SELECT \(sid), id, \(Int32(count)) FROM \(unescaped: s).nodes WHERE id = \(ino)
                        """)
                }
            }
            let expired = try await rows("expire", "SELECT \(unescaped: s).fdfs_expire(\(sid))") { try $0.decode(Int32.self) }.first ?? 0
            if expired > 0 { self.logger.info("naming: expired \(expired) dead session(s); their open files and locks are released") }
        } catch {
            // Logged once per outage by `call`.
        }
    }

    // MARK: - Change feed

    /// LISTENs on the namespace's channel on a connection of its own. Other mounts' changes drop
    /// cached nodes and names (here and, through `onRemoteChange`, in the kernel). While it is
    /// down, the cache is off; on reconnect it starts empty (changes may have been missed).
    func changeFeed(_ onRemoteChange: @escaping @Sendable (RemoteChange) -> Void) async {
        var delay = 0.2
        var logged = false
        while !Task.isCancelled {
            do {
                let conn = try await PostgresConnection.connect(configuration: connectionConfig, id: 1, logger: logger)
                do {
                    try await conn.listen(on: channel) { notifications in
                        self.dropAll()
                        self.feedUp.store(true, ordering: .relaxed)
                        if logged { self.logger.info("naming: change feed of \(self.target.redacted) listening again") }
                        logged = false
                        delay = 0.2
                        for try await n in notifications {
                            guard let change = Self.parse(n.payload, ignoring: self.sid) else { continue }
                            self.cache.invalidate(nodes: change.nodes, entries: change.entries)
                            onRemoteChange(change)
                        }
                    }
                } catch {}
                try? await conn.close()
            } catch {}
            feedUp.store(false, ordering: .relaxed)
            dropAll()
            if Task.isCancelled { return }
            if !logged {
                self.logger.warning("naming: change feed of \(target.redacted) lost; other mounts' changes show after the cache lifetimes until it reconnects")
                logged = true
            }
            try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
            delay = min(delay * 2, 5)
        }
    }

    func dropAll() { cache.invalidate(nodes: [], entries: nil) }

    /// `SESSION n<ino> … e<parent>:<hex name> …`; nil for this mount's own changes.
    static func parse(_ payload: String, ignoring own: Int64) -> RemoteChange? {
        var parts = payload.split(separator: " ")
        guard let first = parts.first, let from = Int64(first) else { return nil }
        if from == own && own != 0 { return nil }
        parts.removeFirst()
        var nodes: [Int64] = [], entries: [DirEntryKey] = []
        for p in parts {
            if p.hasPrefix("n"), let id = Int64(p.dropFirst()) {
                nodes.append(id)
            } else if p.hasPrefix("e"), let colon = p.firstIndex(of: ":"), let parent = Int64(p[p.index(after: p.startIndex)..<colon]),
                      let bytes = hexBytes(p[p.index(after: colon)...]) {
                entries.append(DirEntryKey(parent: parent, name: FileName(bytes: bytes)))
            }
        }
        return RemoteChange(nodes: nodes, entries: entries)
    }

    static func hexBytes(_ s: Substring) -> [UInt8]? {
        guard s.utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count / 2)
        var it = s.utf8.makeIterator()
        func v(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: return c - 48
            case 97...102: return c - 87
            case 65...70: return c - 55
            default: return nil
            }
        }
        while let a = it.next(), let b = it.next() {
            guard let x = v(a), let y = v(b) else { return nil }
            out.append(x << 4 | y)
        }
        return out
    }
}

extension PostgresNamingStore {
    /// Tests: the mount dies (SIGKILL): heartbeats and the change feed stop, the session stays.
    package func abandonForTesting() {
        closing.store(true, ordering: .relaxed)
        for t in tasks.withLock({ t in defer { t = [] }; return t }) { t.cancel() }
        runTask.withLock { $0?.cancel(); $0 = nil }
    }

    package func settingForTesting(_ name: String) async throws(FSError) -> String? {
        try await rows("setting", "SELECT current_setting(\(name))") { try $0.decode(String.self) }.first
    }

    package func executeForTesting(_ sql: String) async throws(FSError) {
        try await exec("test", PostgresQuery(unsafeSQL: sql))
    }
}
