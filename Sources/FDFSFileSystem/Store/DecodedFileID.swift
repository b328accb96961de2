// What the filesystem needs to know of a file id without asking a server, decoded by the codec
// (FastDFSProtocol's `FileID`, `FileIDInfo`) and turned into the filesystem's terms: a source
// host string and a quiet ENOENT for anything malformed.

import FastDFSProtocol
import FuseTypes

public struct DecodedFileID: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable { case normal, appender, slave, trunk }
    public var kind: Kind
    /// Known locally for normal and trunk files; nil for appender and slave files.
    public var size: Int64?
    public var createTime: Int64
    public var crc32: UInt32
    /// The source storage: IPv4 address or decimal storage id.
    public var source: String
    public init(kind: Kind, size: Int64?, createTime: Int64, crc32: UInt32, source: String) {
        self.kind = kind; self.size = size; self.createTime = createTime; self.crc32 = crc32; self.source = source
    }

    /// Decodes `GROUP/Mxx/XX/YY/NAME`: the codec's strict shape check (uppercase hex
    /// subdirectories, lengths), then its fields. A malformed id is ENOENT (quiet).
    /// `storageHost` names the host of a numeric storage id (nil: the id in decimal).
    public init(decoding fileID: String, storageHost: (UInt32) -> String? = { _ in nil }) throws(FSError) {
        guard let id = FileID(fileID), (try? FileIDInfo.validate(filename: id.filename)) != nil,
            let info = try? FileIDInfo.decode(filename: id.filename)
        else { throw FSError.noent("malformed file id \(fileID)") }
        switch info.kind {
        case .normal: kind = .normal
        case .appender: kind = .appender
        case .slave: kind = .slave
        case .trunk: kind = .trunk
        }
        switch info.source {
        case .ipv4(let ip): source = ip
        case .storageID(let n): source = storageHost(n) ?? String(n)
        }
        size = info.size
        createTime = info.createTime
        crc32 = info.crc32
    }
}
