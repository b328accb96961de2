// Which storage of a group is a file's source, read from the group's storage list (LIST_STORAGE):
// the source in the file id is an IPv4 address (IP mode) or a numeric storage id (ID mode,
// `use_storage_id`), never a port, so it is matched against the listed ids and addresses.
// Pure: the list is passed in.

import FastDFSProtocol

/// One storage of a group as the tracker lists it.
public struct ListedStorage: Sendable, Hashable {
    /// The storage id (its IP in IP mode).
    public var id: String
    /// The address to connect to (the IP the tracker gives this caller, and the storage's port).
    public var address: StorageAddress
    /// Tracker status code; 7 is ACTIVE (only ACTIVE storages are handed out by queries).
    public var status: UInt8

    public init(id: String, address: StorageAddress, status: UInt8) {
        self.id = id
        self.address = address
        self.status = status
    }

    public init(_ stat: StorageStat) {
        self.init(id: stat.id, address: StorageAddress(host: stat.ipAddress, port: Int(stat.port)), status: stat.status)
    }

    public static let activeStatus: UInt8 = 7
    public var isActive: Bool { status == Self.activeStatus }
}

public enum SourceMatcher {
    /// The listed storages that can be `source`: in ID mode the one with that id; in IP mode the
    /// ones whose id or address is that IP (several only when storages share an IP).
    public static func candidates(for source: FileIDInfo.Source, in storages: [ListedStorage]) -> [ListedStorage] {
        switch source {
        case .storageID(let n):
            let id = String(n)
            return storages.filter { $0.id == id }
        case .ipv4(let ip):
            return storages.filter { $0.id == ip || $0.address.host == ip }
        }
    }

    /// The source storage when the list names exactly one.
    public static func source(for source: FileIDInfo.Source, in storages: [ListedStorage]) -> ListedStorage? {
        let c = candidates(for: source, in: storages)
        return c.count == 1 ? c[0] : nil
    }

    /// Whether `address` (a tracker's answer) is the file's source. `storages` may be nil when the
    /// list could not be read; then only an IP match can be judged.
    public static func isSource(_ address: StorageAddress, of source: FileIDInfo.Source, in storages: [ListedStorage]?)
        -> Bool
    {
        if let storages {
            let c = candidates(for: source, in: storages)
            if c.count == 1 { return c[0].address == address }
            // Several storages share the IP (no port in a file id): the IP is all there is to compare.
            if c.count > 1 { return c.contains { $0.address.host == address.host } }
        }
        if case .ipv4(let ip) = source { return ip == address.host }
        return false
    }
}
