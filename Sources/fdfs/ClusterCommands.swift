// groups, servers: what the tracker knows about the cluster.

import ArgumentParser
import FastDFS
import Foundation

struct Groups: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the groups (or one group) with their space and servers.")
    @Argument(help: "Only this group.") var group: String?
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await global.withClient { client in
            let groups: [GroupStat]
            if let group { groups = [try await client.group(group)] } else { groups = try await client.listGroups() }
            if global.json {
                Output.printJSON(["groups": groups.map(Self.json)])
                return
            }
            Output.printTable(
                ["GROUP", "TOTAL_MB", "FREE_MB", "RESERVED_MB", "STORAGES", "READABLE", "WRITABLE", "PORT", "PATHS"],
                groups.map { g in
                    [g.name, "\(g.totalMB)", "\(g.freeMB)", "\(g.reservedMB)", "\(g.storageCount)",
                     "\(g.readableServerCount)", "\(g.writableServerCount)", "\(g.storagePort)", "\(g.storePathCount)"]
                })
        }
    }

    static func json(_ g: GroupStat) -> [String: Any] {
        [
            "name": g.name, "total_mb": g.totalMB, "free_mb": g.freeMB, "reserved_mb": g.reservedMB,
            "trunk_free_mb": g.trunkFreeMB, "storage_count": g.storageCount, "storage_port": g.storagePort,
            "http_port": g.httpPort, "readable_server_count": g.readableServerCount,
            "writable_server_count": g.writableServerCount, "current_write_server": g.currentWriteServer,
            "store_path_count": g.storePathCount, "subdir_count_per_path": g.subdirCountPerPath,
            "current_trunk_file_id": g.currentTrunkFileID,
        ]
    }
}

struct Servers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the storage servers of a group.")
    @Argument(help: "The group.") var group: String
    @Option(help: "Only this storage (its id, or its IP when storage ids are off).") var storage: String?
    @OptionGroup var global: GlobalOptions


    func run() async throws {
        try await global.withClient { client in
            let servers = try await client.listStorages(group: group, storageID: storage)
            if global.json {
                Output.printJSON(["group": group, "servers": servers.map(Self.json)])
                return
            }
            Output.printTable(
                ["ID", "IP", "PORT", "STATUS", "VERSION", "TOTAL_MB", "FREE_MB", "UPLOADS", "DOWNLOADS", "HEARTBEAT"],
                servers.map { s in
                    [s.id, s.ipAddress, "\(s.port)", StorageStat.statusName(s.status), s.version, "\(s.totalMB)", "\(s.freeMB)",
                     "\(s.successUploadCount)/\(s.totalUploadCount)", "\(s.successDownloadCount)/\(s.totalDownloadCount)",
                     Output.time(s.lastHeartBeatTime)]
                })
        }
    }

    static func json(_ s: StorageStat) -> [String: Any] {
        [
            "id": s.id, "ip": s.ipAddress, "port": s.port, "status": Int(s.status), "status_name": StorageStat.statusName(s.status),
            "rw_mode": Int(s.rwMode), "version": s.version, "domain_name": s.domainName, "source_id": s.sourceID,
            "join_time": s.joinTime, "up_time": s.upTime, "total_mb": s.totalMB, "free_mb": s.freeMB,
            "reserved_mb": s.reservedMB, "upload_priority": s.uploadPriority, "store_path_count": s.storePathCount,
            "subdir_count_per_path": s.subdirCountPerPath, "current_write_path": s.currentWritePath,
            "http_port": s.httpPort, "is_trunk_server": s.isTrunkServer,
            "connections": ["alloc": Int(s.connectionAllocCount), "current": Int(s.connectionCurrentCount), "max": Int(s.connectionMaxCount)],
            "total_upload_count": s.totalUploadCount, "success_upload_count": s.successUploadCount,
            "total_download_count": s.totalDownloadCount, "success_download_count": s.successDownloadCount,
            "last_heart_beat_time": s.lastHeartBeatTime, "last_synced_timestamp": s.lastSyncedTimestamp,
            "last_source_update": s.lastSourceUpdate, "last_sync_update": s.lastSyncUpdate,
            "counters": s.counters,
        ]
    }
}
