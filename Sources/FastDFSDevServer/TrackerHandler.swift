// The tracker: request bytes in, reply bytes out, no sockets (reference §3, §8.1).
// The connection layer calls the queries (`memoryOnlyCommands`) directly and the rest (stats,
// which statvfs every storage) on the thread pool; tests call it directly.
//
// Which storage a query names follows tracker/tracker_mem.c `tracker_mem_get_storage_by_filename`
// and `tracker_get_writable_storage` with tracker.conf defaults (store_server = 0 round robin,
// download_server = 0 round robin), reference §3.3, §3.4 and its Appendix:
//   * the source of a file is read from the file id (IP or storage id, §5.3); only an ACTIVE
//     storage with that IP or id counts;
//   * QUERY_UPDATE (103): the source if ACTIVE, otherwise the next writable storage in round
//     robin (whether it has the file or not);
//   * QUERY_FETCH_ONE (102): appender and slave files: the source if ACTIVE, otherwise the group's
//     store server (the first ACTIVE storage in the tracker's order). Normal files: the next ACTIVE
//     storage in round robin if it passes the sync test below or is the source, else the source if
//     ACTIVE, else the store server;
//   * QUERY_FETCH_ALL (105): normal files: every ACTIVE storage that passes the sync test or has
//     the source's IP; appender and slave files: the source if ACTIVE; nothing: the store server.
// The sync test: the file is older than storage_sync_file_max_delay, or the storage's
// last_synced_timestamp is later than the file's timestamp, or it is at most 1 s behind and the
// file is older than storage_sync_file_max_time. last_synced_timestamp comes from what the
// replicators delivered (ClusterState.lastSyncedTimestamp), never from what is on disk.
// Names shorter than 39 characters carry no source (INADDR_NONE): any ACTIVE storage will do.

import FastDFSProtocol
import NIOCore

struct TrackerHandler: Sendable {
    let cluster: ClusterState
    var profile: CompatProfile { cluster.profile }
    var host: String { cluster.configuration.listenHost }

    /// Commands answered from memory (store queries add one statvfs of the data directory, which
    /// the kernel answers from the superblock): the connection layer calls `handle` for them
    /// without a trip to the thread pool. Stats and the rest go through the pool.
    static let memoryOnlyCommands: Set<UInt8> = [
        FDFSCommand.quit.rawValue, FDFSCommand.activeTest.rawValue,
        FDFSCommand.trackerQueryStoreWithoutGroupOne.rawValue, FDFSCommand.trackerQueryStoreWithoutGroupAll.rawValue,
        FDFSCommand.trackerQueryStoreWithGroupOne.rawValue, FDFSCommand.trackerQueryStoreWithGroupAll.rawValue,
        FDFSCommand.trackerQueryFetchOne.rawValue, FDFSCommand.trackerQueryUpdate.rawValue,
        FDFSCommand.trackerQueryFetchAll.rawValue,
    ]

    func handle(command: UInt8, status: UInt8, body: ByteBuffer) -> HandlerResult {
        var body = body
        switch command {
        case FDFSCommand.quit.rawValue:
            return .quit
        case FDFSCommand.activeTest.rawValue:
            return .reply(body.readableBytes == 0 ? .ok() : invalid())
        case FDFSCommand.trackerQueryStoreWithoutGroupOne.rawValue,
            FDFSCommand.trackerQueryStoreWithoutGroupAll.rawValue:
            guard body.readableBytes == 0 else { return .reply(invalid()) }
            return .reply(queryStore(group: nil, all: command == FDFSCommand.trackerQueryStoreWithoutGroupAll.rawValue))
        case FDFSCommand.trackerQueryStoreWithGroupOne.rawValue, FDFSCommand.trackerQueryStoreWithGroupAll.rawValue:
            guard body.readableBytes == 16, let g = body.readFixedField(width: 16) else { return .reply(invalid()) }
            return .reply(queryStore(group: g, all: command == FDFSCommand.trackerQueryStoreWithGroupAll.rawValue))
        case FDFSCommand.trackerQueryFetchOne.rawValue, FDFSCommand.trackerQueryUpdate.rawValue,
            FDFSCommand.trackerQueryFetchAll.rawValue:
            guard body.readableBytes >= 38, body.readableBytes < 144, let g = body.readFixedField(width: 16) else {
                return .reply(invalid())
            }
            let filename = body.readRemainingString()
            return .reply(queryFetch(command: command, group: g, filename: filename))
        case FDFSCommand.trackerListOneGroup.rawValue:
            guard body.readableBytes == 16, let g = body.readFixedField(width: 16) else { return .reply(invalid()) }
            guard let group = cluster.group(named: g) else { return .reply(.error(.enoent)) }
            var out = ByteBuffer()
            groupStat(group).encode(into: &out, layout: profile.groupStatLayout)
            return .reply(.ok(out))
        case FDFSCommand.trackerListAllGroups.rawValue:
            guard body.readableBytes == 0 else { return .reply(invalid()) }
            var out = ByteBuffer()
            for group in cluster.groups.sorted(by: { $0.name < $1.name }) {
                groupStat(group).encode(into: &out, layout: profile.groupStatLayout)
            }
            return .reply(.ok(out))
        case FDFSCommand.trackerListStorage.rawValue:
            guard body.readableBytes >= 16, body.readableBytes < 32, let g = body.readFixedField(width: 16) else {
                return .reply(invalid())
            }
            let filter = body.readableBytes > 0 ? body.readRemainingString() : nil
            return .reply(listStorage(group: g, filter: filter))
        case FDFSCommand.trackerGetLeader.rawValue where profile.supportsClusterStatCommands:
            guard body.readableBytes == 0 else { return .reply(invalid()) }
            var out = ByteBuffer()
            out.writeString("\(host):\(cluster.trackerPort.withLockedValue { $0 })")
            return .reply(.ok(out))
        case FDFSCommand.trackerVolumeStat.rawValue where profile.supportsClusterStatCommands:
            guard body.readableBytes == 4 else { return .reply(invalid()) }
            return .reply(.ok(volumeStat()))
        case FDFSCommand.trackerParameterReq.rawValue:
            guard body.readableBytes == 0 else { return .reply(invalid()) }
            var out = ByteBuffer()
            out.writeString(parameters())
            return .reply(.ok(out))
        case FDFSCommand.trackerFetchStorageIDs.rawValue:
            return .reply(fetchStorageIDs(body))
        default:
            return .reply(invalid())
        }
    }

    private func invalid() -> Reply { .error(.einval, close: profile.trackerClosesAfterEINVAL) }

    // MARK: queries

    /// Upload target: 101/104 (one) and 106/107 (all writable servers of the group).
    private func queryStore(group name: String?, all: Bool) -> Reply {
        let candidates: [GroupState]
        if let name {
            guard let g = cluster.group(named: name) else { return .error(.enoent) }
            candidates = [g]
        } else {
            let writable = cluster.groups.filter { !$0.activeNodes.isEmpty }
            guard !writable.isEmpty else { return .error(.enoent) }
            let start = cluster.nextRoundRobin("store-group") % writable.count
            candidates = Array(writable[start...] + writable[..<start])
        }
        var sawActive = false
        for group in candidates {
            let active = group.activeNodes
            guard !active.isEmpty else { continue }
            sawActive = true
            let space = active[0].disk.diskSpace()
            guard space.freeMB >= cluster.configuration.reservedSpaceMB else { continue }
            let first = cluster.nextRoundRobin(Self.writeCounter(group)) % active.count
            var out = ByteBuffer()
            if all {
                let ordered = Array(active[first...] + active[..<first])
                QueryStoreAllResponse(group: group.name, servers: ordered.map(\.address), storePathIndex: 0)
                    .encode(into: &out, ipWidth: profile.trackerIPWidth)
            } else {
                QueryStoreResponse(group: group.name, server: active[first].address, storePathIndex: 0)
                    .encode(into: &out, ipWidth: profile.trackerIPWidth)
            }
            return .ok(out)
        }
        return .error(sawActive ? .enospc : .enoent)
    }

    /// `current_write_server`: shared by store queries and QUERY_UPDATE's fallback.
    static func writeCounter(_ group: GroupState) -> String { "write-\(group.name)" }
    /// `current_read_server`: QUERY_FETCH_ONE's round robin.
    static func readCounter(_ group: GroupState) -> String { "read-\(group.name)" }

    /// What the tracker reads from a remote filename [tracker_mem.c `tracker_mem_get_storage_by_filename`].
    struct NameFacts {
        /// False for names shorter than 32 + 7 characters (INADDR_NONE: no source, timestamp 0).
        var hasSource = false
        var source: FileIDInfo.Source = .ipv4("")
        /// The 4 source bytes printed as an IPv4 address (also for storage ids).
        var sourceIPText = ""
        var timestamp: Int64 = 0
        /// Not an appender and not a slave.
        var isNormal = true

        init(_ filename: String) {
            let bytes = Array(filename.utf8)
            guard bytes.count >= 32 + 7, bytes.count >= 37,
                let raw = FDFSBase64.decode(Substring(String(decoding: bytes[10..<37], as: UTF8.self))), raw.count == 20
            else { return }
            hasSource = true
            let v = UInt32(raw[0]) | UInt32(raw[1]) << 8 | UInt32(raw[2]) << 16 | UInt32(raw[3]) << 24
            sourceIPText = "\(raw[0]).\(raw[1]).\(raw[2]).\(raw[3])"
            source = (1...FDFSLimits.maxServerID).contains(v) ? .storageID(v) : .ipv4(sourceIPText)
            timestamp = Int64(Int32(bitPattern: UInt32(raw[4]) << 24 | UInt32(raw[5]) << 16 | UInt32(raw[6]) << 8 | UInt32(raw[7])))
            var sizeBits: UInt64 = 0
            for b in raw[8..<16] { sizeBits = sizeBits << 8 | UInt64(b) }
            let size = Int64(bitPattern: sizeBits)
            let trunk = size & FDFSLimits.trunkFlag != 0
            let appender = size & FDFSLimits.appenderFlag != 0
            let slave = bytes.count > FDFSLimits.trunkFilenameLength
                || (bytes.count > FDFSLimits.normalFilenameLength && !trunk)
            isNormal = !(appender || slave)
        }
    }

    /// 102 fetch one, 103 update, 105 fetch all (reference §3.3, §3.4; see the top of this file).
    private func queryFetch(command: UInt8, group name: String, filename: String) -> Reply {
        guard let group = cluster.group(named: name) else { return .error(.enoent) }
        let active = group.activeNodes
        guard let storeServer = active.first else { return .error(.enoent) }
        let facts = NameFacts(filename)
        let source = facts.hasSource ? cluster.node(forSource: facts.source, in: group).flatMap { $0.isActive ? $0 : nil } : nil
        let now = WallClock.seconds()
        let chosen: [StorageNode]
        switch command {
        case FDFSCommand.trackerQueryUpdate.rawValue:
            if let source {
                chosen = [source]
            } else {
                chosen = [active[cluster.nextRoundRobin(Self.writeCounter(group)) % active.count]]
            }
        case FDFSCommand.trackerQueryFetchOne.rawValue:
            if !facts.isNormal {
                chosen = [source ?? storeServer]
            } else {
                let candidate = active[cluster.nextRoundRobin(Self.readCounter(group)) % active.count]
                if !facts.hasSource || passesSyncTest(candidate, facts.timestamp, now: now) {
                    chosen = [candidate]
                } else if isSource(candidate, facts) {
                    chosen = [candidate]
                } else {
                    chosen = [source ?? storeServer]
                }
            }
        default:  // fetch all
            var list: [StorageNode]
            if facts.isNormal {
                // The source is recognised here by its IP text only, so in ID mode it is listed
                // only when it passes the sync test itself (tracker_mem.c compares
                // `FDFS_CURRENT_IP_ADDR` with the inet_ntop of the id).
                list = active.filter {
                    !facts.hasSource || passesSyncTest($0, facts.timestamp, now: now) || $0.ip == facts.sourceIPText
                }
            } else {
                list = source.map { [$0] } ?? []
            }
            if list.isEmpty { list = [storeServer] }
            chosen = list
        }
        var out = ByteBuffer()
        if command == FDFSCommand.trackerQueryFetchAll.rawValue {
            QueryFetchAllResponse(group: name, servers: chosen.map(\.address))
                .encode(into: &out, ipWidth: profile.trackerIPWidth, layout: profile.fetchAllLayout)
        } else {
            QueryFetchResponse(group: name, server: chosen[0].address)
                .encode(into: &out, ipWidth: profile.trackerIPWidth)
        }
        return .ok(out)
    }

    /// Whether `node` may be assumed to have a normal file with this timestamp.
    private func passesSyncTest(_ node: StorageNode, _ timestamp: Int64, now: Int64) -> Bool {
        let config = cluster.configuration
        let synced = cluster.lastSyncedTimestamp(node)
        return timestamp < now - config.syncFileMaxDelay || synced > timestamp
            || (synced + 1 >= timestamp && now - timestamp > config.syncFileMaxTime)
    }

    /// FETCH_ONE's comparison with the source: by storage id in ID mode, by IP otherwise.
    private func isSource(_ node: StorageNode, _ facts: NameFacts) -> Bool {
        switch facts.source {
        case .storageID(let v): return node.serverID == String(v)
        case .ipv4(let ip): return node.ip == ip
        }
    }

    // MARK: stats

    /// The storage id the tracker shows for a node (see `StorageNode.trackerID`).
    func storageID(_ node: StorageNode) -> String { node.trackerID }

    func groupStat(_ group: GroupState) -> GroupStat {
        let space = group.nodes[0].disk.diskSpace()
        let active = Int64(group.activeNodes.count)
        var stat = GroupStat(name: group.name)
        stat.totalMB = space.totalMB
        stat.freeMB = space.freeMB
        stat.reservedMB = profile.groupStatLayout == .v113 ? cluster.configuration.reservedSpaceMB : 0
        stat.trunkFreeMB = (group.trunk?.freeBytes ?? 0) / (1 << 20)
        stat.storageCount = Int64(group.nodes.count)
        stat.storagePort = Int64(group.nodes[0].port)
        stat.httpPort = profile.httpPort
        stat.readableServerCount = active
        stat.writableServerCount = active
        stat.currentWriteServer = active == 0 ? 0 : Int64(cluster.nextRoundRobinPeek(Self.writeCounter(group)) % Int(active))
        stat.storePathCount = 1
        stat.subdirCountPerPath = Int64(cluster.configuration.subdirCount)
        if let trunk = group.trunk {
            stat.currentTrunkFileID = trunk.currentTrunkFileID
        } else {
            stat.currentTrunkFileID = profile.level == .v6_16 ? -1 : 0
        }
        return stat
    }

    private func listStorage(group name: String, filter: String?) -> Reply {
        guard let group = cluster.group(named: name) else { return .error(.enoent) }
        var nodes = group.sortedNodes
        if let filter {
            nodes = nodes.filter { $0.trackerID == filter }
            guard !nodes.isEmpty else { return .error(.enoent) }
        }
        var out = ByteBuffer()
        for node in nodes { storageStat(node, in: group).encode(into: &out, layout: profile.storageStatLayout) }
        return .ok(out)
    }

    func storageStat(_ node: StorageNode, in group: GroupState) -> StorageStat {
        let space = node.disk.diskSpace()
        let synced = cluster.lastSyncedTimestamp(node)
        let r = node.runtime.withLockedValue { $0 }
        var s = StorageStat()
        s.status = r.status
        s.rwMode = 6
        s.id = node.trackerID
        s.ipAddress = node.ip
        s.domainName = ""
        s.sourceID = node.id.index == 1 ? "" : group.nodes[0].trackerID
        s.version = profile.versionString
        s.joinTime = r.joinTime
        s.upTime = r.upTime
        s.totalMB = space.totalMB
        s.freeMB = space.freeMB
        s.reservedMB = cluster.configuration.reservedSpaceMB
        s.uploadPriority = 10
        s.storePathCount = 1
        s.subdirCountPerPath = Int64(cluster.configuration.subdirCount)
        s.currentWritePath = 0
        s.port = Int64(r.port)
        s.httpPort = profile.httpPort
        s.connectionAllocCount = r.allocatedConnections
        s.connectionCurrentCount = r.connections
        s.connectionMaxCount = r.maxConnections
        var counters = r.counters
        counters[StatCounter.lastSyncedTimestamp.rawValue] = synced
        counters[StatCounter.lastHeartBeat.rawValue] = WallClock.seconds()
        s.counters = counters
        s.isTrunkServer = group.trunkServer === node
        return s
    }

    /// PARAMETER_REQ (75): the tracker's parameters as `key=value` lines
    /// [tracker/tracker_service.c `tracker_deal_parameter_req`; values of the shipped tracker.conf].
    func parameters() -> String {
        let config = cluster.configuration
        let t = config.trunk ?? TrunkParameters()
        var lines = [
            "use_storage_id=\(config.useStorageIDs ? 1 : 0)",
            "id_type_in_filename=\(config.useStorageIDs ? "id" : "ip")",
            "storage_ip_changed_auto_adjust=1",
            "storage_sync_file_max_delay=\(config.syncFileMaxDelay)",
            "store_path=0",
            "reserved_storage_space=\(config.reservedSpaceMB) MB",
            "use_trunk_file=\(config.trunk == nil ? 0 : 1)",
            "slot_min_size=\(t.slotMinSize)",
            "slot_max_size=\(t.slotMaxSize)",
        ]
        if profile.level != .v5 { lines.append("trunk_alloc_alignment_size=\(t.allocationAlignment)") }
        lines += [
            "trunk_file_size=\(t.trunkFileSize)",
            "trunk_create_file_advance=0",
            "trunk_create_file_time_base=02:00",
            "trunk_create_file_interval=86400",
            "trunk_create_file_space_threshold=\(Int64(20) << 30)",
            "trunk_init_check_occupying=0",
            "trunk_init_reload_from_binlog=0",
        ]
        if profile.level != .v5 { lines += ["trunk_free_space_merge=1", "delete_unused_trunk_files=0"] }
        lines.append("trunk_compress_binlog_min_interval=86400")
        if profile.level != .v5 {
            lines += [
                "trunk_compress_binlog_interval=86400", "trunk_compress_binlog_time_base=03:00",
                "trunk_binlog_max_backups=7",
            ]
        }
        lines.append("store_slave_file_use_link=0")
        return lines.map { $0 + "\n" }.joined()
    }

    /// The storage id table, one `<id> <group> <ip>[:port]` line per storage (the port only when
    /// the storages share an address) [tracker_service.c `tracker_deal_fetch_storage_ids`].
    func storageIDLines() -> [String] {
        cluster.allNodes.compactMap { node in
            guard let id = node.serverID else { return nil }
            let port = cluster.configuration.storagesHaveOwnAddresses ? "" : ":\(node.port)"
            return "\(id) \(node.id.group) \(node.ip)\(port)"
        }
    }

    /// FETCH_STORAGE_IDS (69, §3.8): EOPNOTSUPP (or an empty list when allow_empty is set) without
    /// storage ids; else total, count, and the lines from start_index on.
    private func fetchStorageIDs(_ body: ByteBuffer) -> Reply {
        guard body.readableBytes == 4 || body.readableBytes == 5,
            let start = body.getInteger(at: body.readerIndex, endianness: .big, as: Int32.self)
        else { return invalid() }
        guard cluster.configuration.useStorageIDs else {
            // use_storage_id is off: EOPNOTSUPP, or an empty list when allow_empty (6.11+) is set.
            if body.readableBytes == 5, body.getInteger(at: body.readerIndex + 4, as: UInt8.self) == 1 {
                var out = ByteBuffer()
                out.writeInteger(Int32(0))
                out.writeInteger(Int32(0))
                return .ok(out)
            }
            return .error(.eopnotsupp)
        }
        let lines = storageIDLines()
        guard start >= 0, Int(start) < lines.count else { return invalid() }
        var out = ByteBuffer()
        FetchStorageIDsResponse(total: Int32(lines.count), lines: Array(lines[Int(start)...])).encode(into: &out)
        return .ok(out)
    }

    /// VOLUME_STAT (98, 6.16): use_trunk(1) count(4) then per group name[17], total, free,
    /// reserved, avail, trunk_free (int64 MB), disk_ok(1), trunk_ok(1).
    private func volumeStat() -> ByteBuffer {
        var out = ByteBuffer()
        out.writeInteger(UInt8(cluster.configuration.trunk == nil ? 0 : 1))
        out.writeInteger(Int32(cluster.groups.count))
        for group in cluster.groups {
            let space = group.nodes[0].disk.diskSpace()
            let reserved = cluster.configuration.reservedSpaceMB
            out.writeFixedField(group.name, width: 17)
            out.writeInteger(space.totalMB)
            out.writeInteger(space.freeMB)
            out.writeInteger(reserved)
            out.writeInteger(max(0, space.freeMB - reserved))
            out.writeInteger((group.trunk?.freeBytes ?? 0) / (1 << 20))
            out.writeInteger(UInt8(space.freeMB > reserved ? 1 : 0))
            out.writeInteger(UInt8(group.trunk == nil ? 0 : 1))
        }
        return out
    }
}
