// Which real FastDFS release the dev server imitates, as a table of wire layouts and behaviours.
// Every version-dependent decision in the handlers reads this table instead of comparing versions.

import FastDFSProtocol

/// The FastDFS release whose replies the dev server reproduces.
public enum CompatLevel: String, Sendable, CaseIterable, CustomStringConvertible {
    /// FastDFS 5.12 (the 4.x/5.x family): 15-byte IPs, 105-byte group stats, 612-byte storage
    /// stats, the pre-6.16 fetch-all layout, strict download ranges, no command 38.
    case v5 = "5"
    /// FastDFS 6.11: 45-byte IP fields in tracker replies, 46 in file info, 642-byte storage stats.
    case v6_11 = "6.11"
    /// FastDFS 6.16.1 (default): 15-byte IPs, 113-byte group stats, 487-byte storage stats,
    /// one port per server in fetch-all, HTTP-range download semantics.
    case v6_16 = "6.16"

    public var description: String { rawValue }

    /// Accepts "5", "5.12", "6.11", "6.16", "6.16.1".
    public init?(parsing text: String) {
        switch text {
        case "5", "5.12": self = .v5
        case "6.11", "6.11.0": self = .v6_11
        case "6", "6.16", "6.16.1": self = .v6_16
        default: return nil
        }
    }

    public var profile: CompatProfile { CompatProfile(level: self) }
}

/// Everything that differs between the emulated releases.
public struct CompatProfile: Sendable, Hashable {
    public var level: CompatLevel

    /// Width of IP text fields in tracker query replies (W in the reference, §3.0).
    public var trackerIPWidth: Int { level == .v6_11 ? 45 : 15 }
    /// Width of the IP field in QUERY_FILE_INFO replies (§7.10).
    public var fileInfoIPWidth: Int { level == .v6_11 ? 46 : 16 }
    public var groupStatLayout: GroupStat.Layout { level == .v6_16 ? .v113 : .v105 }
    public var storageStatLayout: StorageStat.Layout {
        switch level {
        case .v5: return .v612
        case .v6_11: return .v642
        case .v6_16: return .v487
        }
    }
    public var fetchAllLayout: QueryFetchAllResponse.Layout { level == .v6_16 ? .portPerServer : .sharedPort }
    /// ≥ 6.15.4: a range past EOF is clamped and offset ≥ size is EINVAL.
    /// Before: a range past EOF is EINVAL and offset == size with count 0 gives an empty body.
    public var httpRangeDownloads: Bool { level == .v6_16 }
    /// REGENERATE_APPENDER_FILENAME (38) exists from 6.02.
    public var supportsRegenerate: Bool { level != .v5 }
    /// GET_LEADER (95) and VOLUME_STAT (98) answer only on 6.16 here (the 5.12/6.06 captures show EINVAL).
    public var supportsClusterStatCommands: Bool { level == .v6_16 }
    /// Trackers up to 6.08 closed the connection after an EINVAL reply; later ones keep it open.
    public var trackerClosesAfterEINVAL: Bool { level == .v5 }
    /// QUERY_FILE_INFO computes the CRC of appender files from their content (6.02+).
    public var computesAppenderCRC: Bool { level != .v5 }
    /// QUERY_FILE_INFO computes the CRC of slave files from their content, and honours the
    /// no-CRC flag (6.15.1+).
    public var computesSlaveCRC: Bool { level == .v6_16 }
    public var honoursNoCRCFlag: Bool { level == .v6_16 }
    /// Version text in storage stat records ("6.11." is what a 6-byte field makes of "6.11.0").
    public var versionString: String {
        switch level {
        case .v5: return "5.12"
        case .v6_11: return "6.11."  // what the real 6-byte field (with its NUL) keeps of "6.11.0"
        case .v6_16: return "6.16.1"
        }
    }
    /// Group-stat http port slot (≤ 6.12 layouts only).
    public var httpPort: Int64 { level == .v6_16 ? 0 : 8888 }
}
