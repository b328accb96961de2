// Who the storages are: one loopback address per storage (or a shared --listen address), the
// ports, the source bytes of the file ids they create, and --storage-ids mode with its id table.

import FastDFSProtocol
import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import FastDFSDevServer

/// A port free on the loopback interface right now (bound to 0, read, closed).
func freePort() throws -> Int {
    let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
    let port = channel.localAddress!.port!
    try channel.close().wait()
    return port
}

@Suite("Storage addresses and ids")
struct IdentityTests {
    @Test("one address per storage: tracker on 127.0.0.1, storages on 127.0.0.2, 127.0.0.3, ...; ids embed them")
    func ownAddresses() async throws {
        try await withDevServer(groups: 2, storagesPerGroup: 2) { (server: DevServer) async throws in
            #expect(server.trackerAddress.host == "127.0.0.1")
            let hosts = server.storageIDs.compactMap(server.storageAddress).map(\.host)
            #expect(hosts == ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"])
            #expect(server.addressLines[0] == "tracker \(server.trackerAddress)")
            #expect(server.addressLines[1] == "storage group1 \(server.storageAddress(server.storageIDs[0])!)")
            #expect(server.addressLines.count == 5)
            for id in server.storageIDs {
                let address = server.storageAddress(id)!
                let (g, n) = try await rawUpload(server, Req.bytes("from \(id)"), storage: address)
                #expect(g == id.group)
                #expect(try FileIDInfo.decode(filename: n).source == .ipv4(address.host))
                let info = try decodeInfo(try await rawReply(address, Req.groupAndName(22, g, n)))
                #expect(info.sourceIP == address.host)
                // The tracker names that storage for updates.
                #expect(try await server.trackerAnswer(103, g, n) == address)
            }
            // LIST_STORAGE: id and ip are the address; the filter takes it.
            let filtered = try decode(
                try await rawReply(server.trackerAddress, Req.packet(92, Req.fixed("group2", 16) + Req.bytes("127.0.0.5")))
            ) { try StorageStat.decodeList(body: &$0) }
            #expect(filtered.map(\.id) == ["127.0.0.5"] && filtered[0].ipAddress == "127.0.0.5")
        }
    }

    @Test("--storage-port N: every storage on port N, each on its own address")
    func fixedStoragePort() async throws {
        let port = try freePort()
        try await withDevServer(storagesPerGroup: 3, configure: { $0.storagePort = port }) { (server: DevServer) async throws in
            let addresses = server.storageIDs.compactMap(server.storageAddress)
            #expect(addresses.map(\.port) == [port, port, port])
            #expect(Set(addresses.map(\.host)).count == 3)
            for a in addresses { #expect(try await rawReply(a, Req.packet(111)).status == 0) }
        }
    }

    @Test("another --listen address is shared by every storage on consecutive ports")
    func sharedAddress() async throws {
        try await withDevServer(storagesPerGroup: 2, configure: { $0.listenHost = "127.0.0.9" }) { (server: DevServer) async throws in
            let addresses = server.storageIDs.compactMap(server.storageAddress)
            #expect(addresses.allSatisfy { $0.host == "127.0.0.9" } && addresses[0].port != addresses[1].port)
            #expect(server.trackerAddress.host == "127.0.0.9")
            let (_, n) = try await rawUpload(server, Req.bytes("x"), storage: addresses[1])
            #expect(try FileIDInfo.decode(filename: n).source == .ipv4("127.0.0.9"))
            // Several storages on one IP: the tracker's ids are ip:port.
            let stats = try decode(try await rawReply(server.trackerAddress, Req.packet(92, Req.fixed("group1", 16)))) {
                try StorageStat.decodeList(body: &$0)
            }
            #expect(Set(stats.map(\.id)) == Set(addresses.map(\.description)))
        }
    }

    @Test("addresses skip a last octet of 0 or 255 (0 would read back as a storage id)")
    func addressLayout() {
        let config = DevServerConfiguration(dataDirectory: "/tmp/x", groups: 20, storagesPerGroup: 32)
        let ips = ClusterLayout.identities(config).map(\.ip)
        #expect(ips.count == 640 && Set(ips).count == 640)
        #expect(ips.first == "127.0.0.2" && ips[252] == "127.0.0.254" && ips[253] == "127.0.1.1")
        #expect(ips.allSatisfy { !$0.hasSuffix(".0") && !$0.hasSuffix(".255") })
        for ip in ips {
            let source = FDFSFilename.sourceField(ipv4: ip)!
            let name = FDFSFilename.make(
                storePathIndex: 0, sub1: 0, sub2: 0,
                base27: FDFSFilename.encode20(source: source, timestamp: 1, sizeField: 1, crc32: 1), ext7: "1234567")
            #expect((try? FileIDInfo.decode(filename: name).source) == .ipv4(ip))
        }
    }

    @Test("--storage-ids: ids 100001.. in file ids, stats, filters, parameters, the id table and file info")
    func storageIDs() async throws {
        try await withDevServer(groups: 2, storagesPerGroup: 2, configure: { $0.useStorageIDs = true }) { (server: DevServer) async throws in
            let t = server.trackerAddress
            let ids = server.storageIDs
            #expect(ids.map { server.serverID($0) } == ["100001", "100002", "100003", "100004"])
            let idLines = server.addressLines.filter { $0.hasPrefix("storage-id ") }
            #expect(idLines == ids.map { "storage-id \(server.serverID($0)!) \($0.group) \(server.storageAddress($0)!)" })
            #expect(server.addressLines.firstIndex(where: { $0.hasPrefix("storage-id") })! == 5)
            #expect(server.storageIDsFile == ids.map { "\(server.serverID($0)!) \($0.group) \(server.storageAddress($0)!.host)\n" }.joined())
            // File ids carry the id (little-endian, §5.3); the tracker resolves it.
            let a2 = server.storageAddress(ids[1])!
            let (g, n) = try await rawUpload(server, Req.bytes("by id"), appender: true, storage: a2)
            #expect(try FileIDInfo.decode(filename: n).source == .storageID(100002))
            #expect(Array(FDFSBase64.decode(Substring(n.dropFirst(10).prefix(27)))!.prefix(4)) == [0xA2, 0x86, 0x01, 0x00])
            #expect(try await server.trackerAnswer(103, g, n) == a2)
            #expect(try await server.trackerAnswer(102, g, n) == a2)
            // QUERY_FILE_INFO maps the id to the address.
            #expect(try decodeInfo(try await rawReply(a2, Req.groupAndName(22, g, n))).sourceIP == a2.host)
            // Stats carry the id; the filter takes it.
            let one = try decode(try await rawReply(t, Req.packet(92, Req.fixed("group1", 16) + Req.bytes("100002")))) {
                try StorageStat.decodeList(body: &$0)
            }
            #expect(one.map(\.id) == ["100002"] && one[0].ipAddress == a2.host)
            // PARAMETER_REQ and FETCH_STORAGE_IDS.
            let params = try decode(try await rawReply(t, Req.packet(75))) { try ParameterResponse.decode(body: &$0) }
            #expect(params.useStorageID && params.parameters["id_type_in_filename"] == "id")
            let table = try decode(try await rawReply(t, Req.packet(69, [0, 0, 0, 0, 1]))) {
                try FetchStorageIDsResponse.decode(body: &$0)
            }
            #expect(table.total == 4 && table.lines == server.storageIDsFile.split(separator: "\n").map(String.init))
            let rest = try decode(try await rawReply(t, Req.packet(69, [0, 0, 0, 3]))) {
                try FetchStorageIDsResponse.decode(body: &$0)
            }
            #expect(rest.total == 4 && rest.lines == ["100004 group2 127.0.0.5"])
            #expect(try await rawReply(t, Req.packet(69, [0, 0, 0, 4])).status == FDFSErrno.einval.rawValue)
        }
        // Without ids: EOPNOTSUPP, and use_storage_id=0.
        try await withDevServer { (server: DevServer) async throws in
            #expect(try await rawReply(server.trackerAddress, Req.packet(69, [0, 0, 0, 0])).status == FDFSErrno.eopnotsupp.rawValue)
            let params = try decode(try await rawReply(server.trackerAddress, Req.packet(75))) {
                try ParameterResponse.decode(body: &$0)
            }
            #expect(!params.useStorageID && params.parameters["id_type_in_filename"] == "ip")
            #expect(params.parameters["use_trunk_file"] == "0" && params.parameters["slot_max_size"] == "1048576")
            #expect(server.storageIDsFile.isEmpty)
        }
    }
}
