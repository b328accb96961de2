// The tracker: request bytes in, reply bytes out, no sockets (reference §3, §8.1).
// It blocks briefly (stat of a file on each node for fetch queries, statvfs for stats), so the
// connection layer calls it on the thread pool; tests call it directly.

import FastDFSProtocol
import NIOCore

struct TrackerHandler: Sendable {
    let cluster: ClusterState
    var profile: CompatProfile { cluster.profile }
    var host: String { cluster.configuration.listenHost }

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
            guard let group = cluster.group(named: g) else { return .reply(.error(Errno.enoent)) }
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
            out.writeString(
                "use_storage_id=0\nid_type_in_filename=ip\nstorage_sync_file_max_delay=86400\n"
                    + "store_path=0\nreserved_storage_space=\(cluster.configuration.reservedSpaceMB)MB\n"
                    + "use_trunk_file=0\nstore_slave_file_use_link=0\n")
            return .reply(.ok(out))
        case FDFSCommand.trackerFetchStorageIDs.rawValue:
            // use_storage_id is off: EOPNOTSUPP, or an empty list when allow_empty (6.11+) is set.
            if body.readableBytes == 5, body.getInteger(at: body.readerIndex + 4, as: UInt8.self) == 1 {
                var out = ByteBuffer()
                out.writeInteger(Int32(0))
                out.writeInteger(Int32(0))
                return .reply(.ok(out))
            }
            guard body.readableBytes == 4 || body.readableBytes == 5 else { return .reply(invalid()) }
            return .reply(.error(Errno.eopnotsupp))
        default:
            return .reply(invalid())
        }
    }

    private func invalid() -> Reply { .error(Errno.einval, close: profile.trackerClosesAfterEINVAL) }

    // MARK: queries

    private func address(_ node: StorageNode) -> StorageAddress { StorageAddress(host: host, port: node.port) }

    /// Upload target: 101/104 (one) and 106/107 (all writable servers of the group).
    private func queryStore(group name: String?, all: Bool) -> Reply {
        let candidates: [GroupState]
        if let name {
            guard let g = cluster.group(named: name) else { return .error(Errno.enoent) }
            candidates = [g]
        } else {
            let writable = cluster.groups.filter { $0.nodes.contains(where: \.isActive) }
            guard !writable.isEmpty else { return .error(Errno.enoent) }
            let start = cluster.nextRoundRobin("store-group") % writable.count
            candidates = Array(writable[start...] + writable[..<start])
        }
        var sawActive = false
        for group in candidates {
            let active = group.nodes.filter(\.isActive)
            guard !active.isEmpty else { continue }
            sawActive = true
            let space = active[0].disk.diskSpace()
            guard space.freeMB >= cluster.configuration.reservedSpaceMB else { continue }
            let first = cluster.nextRoundRobin("store-server-\(group.name)") % active.count
            var out = ByteBuffer()
            if all {
                let ordered = Array(active[first...] + active[..<first])
                QueryStoreAllResponse(group: group.name, servers: ordered.map(address), storePathIndex: 0)
                    .encode(into: &out, ipWidth: profile.trackerIPWidth)
            } else {
                QueryStoreResponse(group: group.name, server: address(active[first]), storePathIndex: 0)
                    .encode(into: &out, ipWidth: profile.trackerIPWidth)
            }
            return .ok(out)
        }
        return .error(sawActive ? Errno.enospc : Errno.enoent)
    }

    /// 102 fetch one, 103 update, 105 fetch all (reference §3.3, §3.4).
    private func queryFetch(command: UInt8, group name: String, filename: String) -> Reply {
        guard let group = cluster.group(named: name) else { return .error(Errno.enoent) }
        let active = group.nodes.filter(\.isActive)
        guard !active.isEmpty else { return .error(Errno.enoent) }
        let stored = StoredFilename.validate(filename)
        let kind = stored?.info?.kind
        let originIndex = cluster.origin(group: name, filename: filename)
        let holders = stored.map { s in active.filter { $0.disk.exists(s) } } ?? []
        // The source: the node the file was created on, else the first active holder.
        let source = active.first { $0.id.index == originIndex } ?? holders.first
        let fallback = source ?? active[0]

        let chosen: [StorageNode]
        switch command {
        case FDFSCommand.trackerQueryUpdate.rawValue:
            chosen = [fallback]
        case FDFSCommand.trackerQueryFetchOne.rawValue:
            if kind == .appender || kind == .slave || holders.isEmpty {
                chosen = [fallback]
            } else {
                chosen = [holders[cluster.nextRoundRobin("fetch-\(name)") % holders.count]]
            }
        default:  // fetch all: the servers that have the file (a replica only once it has it)
            if kind == .appender || kind == .slave || holders.isEmpty {
                chosen = [fallback]
            } else if let source, holders.contains(where: { $0 === source }) {
                chosen = [source] + holders.filter { $0 !== source }
            } else {
                chosen = holders
            }
        }
        var out = ByteBuffer()
        if command == FDFSCommand.trackerQueryFetchAll.rawValue {
            QueryFetchAllResponse(group: name, servers: chosen.map(address))
                .encode(into: &out, ipWidth: profile.trackerIPWidth, layout: profile.fetchAllLayout)
        } else {
            QueryFetchResponse(group: name, server: address(chosen[0]))
                .encode(into: &out, ipWidth: profile.trackerIPWidth)
        }
        return .ok(out)
    }

    // MARK: stats

    func storageID(_ node: StorageNode) -> String {
        cluster.configuration.storagesPerGroup == 1 ? host : "\(host):\(node.port)"
    }

    func groupStat(_ group: GroupState) -> GroupStat {
        let space = group.nodes[0].disk.diskSpace()
        let active = Int64(group.nodes.filter(\.isActive).count)
        var stat = GroupStat(name: group.name)
        stat.totalMB = space.totalMB
        stat.freeMB = space.freeMB
        stat.reservedMB = profile.groupStatLayout == .v113 ? cluster.configuration.reservedSpaceMB : 0
        stat.trunkFreeMB = 0
        stat.storageCount = Int64(group.nodes.count)
        stat.storagePort = Int64(group.nodes[0].port)
        stat.httpPort = profile.httpPort
        stat.readableServerCount = active
        stat.writableServerCount = active
        stat.currentWriteServer = Int64(cluster.nextRoundRobinPeek("store-server-\(group.name)") % group.nodes.count)
        stat.storePathCount = 1
        stat.subdirCountPerPath = Int64(cluster.configuration.subdirCount)
        stat.currentTrunkFileID = profile.level == .v6_16 ? -1 : 0
        return stat
    }

    private func listStorage(group name: String, filter: String?) -> Reply {
        guard let group = cluster.group(named: name) else { return .error(Errno.enoent) }
        var nodes = group.nodes
        if let filter {
            nodes = nodes.filter { storageID($0) == filter || host == filter }
            guard !nodes.isEmpty else { return .error(Errno.enoent) }
        }
        var out = ByteBuffer()
        for node in nodes { storageStat(node, in: group).encode(into: &out, layout: profile.storageStatLayout) }
        return .ok(out)
    }

    func storageStat(_ node: StorageNode, in group: GroupState) -> StorageStat {
        let space = node.disk.diskSpace()
        let r = node.runtime.withLockedValue { $0 }
        var s = StorageStat()
        s.status = r.status
        s.rwMode = 6
        s.id = storageID(node)
        s.ipAddress = host
        s.domainName = ""
        s.sourceID = node.id.index == 1 ? "" : storageID(group.nodes[0])
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
        counters[StatCounter.lastHeartBeat.rawValue] = WallClock.seconds()
        s.counters = counters
        s.isTrunkServer = false
        return s
    }

    /// VOLUME_STAT (98, 6.16): use_trunk(1) count(4) then per group name[17], total, free,
    /// reserved, avail, trunk_free (int64 MB), disk_ok(1), trunk_ok(1).
    private func volumeStat() -> ByteBuffer {
        var out = ByteBuffer()
        out.writeInteger(UInt8(0))
        out.writeInteger(Int32(cluster.groups.count))
        for group in cluster.groups {
            let space = group.nodes[0].disk.diskSpace()
            let reserved = cluster.configuration.reservedSpaceMB
            out.writeFixedField(group.name, width: 17)
            out.writeInteger(space.totalMB)
            out.writeInteger(space.freeMB)
            out.writeInteger(reserved)
            out.writeInteger(max(0, space.freeMB - reserved))
            out.writeInteger(Int64(0))
            out.writeInteger(UInt8(space.freeMB > reserved ? 1 : 0))
            out.writeInteger(UInt8(0))
        }
        return out
    }
}
