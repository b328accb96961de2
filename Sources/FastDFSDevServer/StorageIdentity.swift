// Who each storage is, as the tracker and file ids see it: its address, its port, its storage id
// (ID mode), and the 4 bytes it writes as the source of the files it creates (reference §5.3).
//
// With the default listen host 127.0.0.1 the tracker keeps 127.0.0.1 and the storages get
// 127.0.0.2, 127.0.0.3, ... in group then index order (addresses ending in .0 or .255 are
// skipped: a last octet of 0 would read back as a storage id, §5.3). Linux routes all of
// 127.0.0.0/8 to the loopback interface, so nothing needs configuring. With any other listen host
// every storage shares it.

import FastDFSProtocol

/// The fixed identity of one storage node.
struct StorageIdentity: Sendable, Equatable {
    var id: StorageNodeID
    /// The address it listens on and the tracker hands out.
    var ip: String
    /// The numeric storage id in ID mode ("100001"), else nil.
    var serverID: String?
    /// The port to bind (0: ephemeral).
    var requestedPort: Int
    /// Bytes 0–3 of the names it creates, as `FDFSFilename.encode20` takes them.
    var sourceField: UInt32
}

enum ClusterLayout {
    /// First storage id in ID mode (the ids of a real storage_ids.conf usually start there too).
    static let firstServerID: UInt32 = 100001

    /// Every storage of the configuration, in group then index order.
    static func identities(_ config: DevServerConfiguration) -> [StorageIdentity] {
        var out: [StorageIdentity] = []
        var address: UInt32 = 0x7F00_0001  // 127.0.0.1, the tracker's
        var k = 0
        for g in 1...config.groups {
            for i in 1...config.storagesPerGroup {
                let ip: String
                let port: Int
                if config.storagesHaveOwnAddresses {
                    repeat { address &+= 1 } while address & 0xFF == 0 || address & 0xFF == 0xFF
                    ip = IPv4.format(address)
                    port = config.storagePort
                } else {
                    ip = config.listenHost
                    port = config.storagePort == 0 ? 0 : config.storagePort + k
                }
                let serverID = config.useStorageIDs ? firstServerID + UInt32(k) : nil
                let source = serverID.map { FDFSFilenameSource.storageID($0) }
                    ?? FDFSFilenameSource.ipv4(ip)
                out.append(
                    StorageIdentity(
                        id: StorageNodeID(group: "group\(g)", index: i), ip: ip, serverID: serverID.map(String.init),
                        requestedPort: port, sourceField: source))
                k += 1
            }
        }
        return out
    }
}

/// The source bytes of new file names (via the codec's FDFSFilename).
enum FDFSFilenameSource {
    static func ipv4(_ ip: String) -> UInt32 { FDFSFilename.sourceField(ipv4: ip) ?? 0x7F00_0001 }
    static func storageID(_ id: UInt32) -> UInt32 { FDFSFilename.sourceField(storageID: id) }
}
