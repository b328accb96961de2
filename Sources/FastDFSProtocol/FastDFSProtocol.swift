// FastDFSProtocol — the pure FastDFS wire codec shared by the client (`FastDFS`) and the
// dev server (`FastDFSDevServer`).
//
// Design:
// * Value types only, no I/O. Every message has `encode(into:)` (body only, no header) and
//   `static func decode(body:)`, which consumes a whole body and throws a typed
//   `FDFSProtocolError` when the bytes fit no known layout. Decoders never trap: every length
//   read from the wire is range-checked before it is used as an `Int`.
// * Requests conform to `FDFSRequest`; `FDFSPacket.encode` prepends the 10-byte header.
//   Requests that precede streamed content (upload, slave upload, append, modify) are split
//   into a fixed *head* plus content the caller streams; `contentLength` tells the packet
//   builder how many content bytes follow the head.
// * Version tolerance: IP fields (15/45, 16/46), group stats (105/113), storage stats
//   (600/612/642/644/509/517/487) and both QUERY_FETCH_ALL layouts are recognised from lengths
//   (and port validation), per the FastDFS protocol reference (read from the C sources).
// * `FDFSFrameDecoder` cuts a byte stream into header / body chunks / end without ever
//   buffering a whole body.
// * File-id helpers (`FileID`, `FileIDInfo`, `FDFSFilename`, `FDFSBase64`, `CRC32`) follow §5
//   of the reference exactly like the C client.
import NIOCore

/// The 10-byte header in front of every request and response.
public struct FDFSHeader: Hashable, Sendable {
    public static let size = 10
    public var bodyLength: Int64
    public var command: UInt8
    public var status: UInt8

    public init(bodyLength: Int64, command: UInt8, status: UInt8 = 0) {
        self.bodyLength = bodyLength
        self.command = command
        self.status = status
    }

    public init(bodyLength: Int64, command: FDFSCommand, status: UInt8 = 0) {
        self.init(bodyLength: bodyLength, command: command.rawValue, status: status)
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(bodyLength, endianness: .big)
        buffer.writeInteger(command)
        buffer.writeInteger(status)
    }

    /// nil (reader index untouched) when fewer than 10 bytes are readable; throws on negative length.
    public static func decode(from buffer: inout ByteBuffer) throws(FDFSProtocolError) -> FDFSHeader? {
        guard buffer.readableBytes >= size,
              let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: Int64.self),
              let command = buffer.getInteger(at: buffer.readerIndex + 8, as: UInt8.self),
              let status = buffer.getInteger(at: buffer.readerIndex + 9, as: UInt8.self)
        else { return nil }
        guard length >= 0 else { throw .negativeBodyLength(length) }
        buffer.moveReaderIndex(forwardBy: size)
        return FDFSHeader(bodyLength: length, command: command, status: status)
    }

    /// The command as a known `FDFSCommand`, or nil for an unknown code.
    public var knownCommand: FDFSCommand? { FDFSCommand(rawValue: command) }

    /// The status as an errno, nil for success.
    public var errno: FDFSErrno? { status == 0 ? nil : FDFSErrno(rawValue: status) }

    /// Throws `.unexpectedResponseCommand` unless this is a response header (cmd 100).
    public func checkIsResponse() throws(FDFSProtocolError) {
        guard command == FDFSCommand.response.rawValue else { throw .unexpectedResponseCommand(command) }
    }
}

/// Command codes (§2.2 of the reference).
public enum FDFSCommand: UInt8, Sendable, CaseIterable {
    case quit = 82, activeTest = 111, response = 100
    case trackerQueryStoreWithoutGroupOne = 101, trackerQueryFetchOne = 102, trackerQueryUpdate = 103
    case trackerQueryStoreWithGroupOne = 104, trackerQueryFetchAll = 105
    case trackerQueryStoreWithoutGroupAll = 106, trackerQueryStoreWithGroupAll = 107
    case trackerListOneGroup = 90, trackerListAllGroups = 91, trackerListStorage = 92
    case trackerGetLeader = 95, trackerVolumeStat = 98
    case trackerParameterReq = 75, trackerFetchStorageIDs = 69
    case storageUploadFile = 11, storageDeleteFile = 12, storageSetMetadata = 13
    case storageDownloadFile = 14, storageGetMetadata = 15, storageUploadSlaveFile = 21
    case storageQueryFileInfo = 22, storageUploadAppenderFile = 23, storageAppendFile = 24
    case storageModifyFile = 34, storageTruncateFile = 36, storageRegenerateAppenderFilename = 38

    /// The C constant's short name, e.g. "UPLOAD_FILE", "QUERY_STORE_WITHOUT_GROUP_ONE".
    public var name: String {
        switch self {
        case .quit: "QUIT"
        case .activeTest: "ACTIVE_TEST"
        case .response: "RESP"
        case .trackerQueryStoreWithoutGroupOne: "QUERY_STORE_WITHOUT_GROUP_ONE"
        case .trackerQueryFetchOne: "QUERY_FETCH_ONE"
        case .trackerQueryUpdate: "QUERY_UPDATE"
        case .trackerQueryStoreWithGroupOne: "QUERY_STORE_WITH_GROUP_ONE"
        case .trackerQueryFetchAll: "QUERY_FETCH_ALL"
        case .trackerQueryStoreWithoutGroupAll: "QUERY_STORE_WITHOUT_GROUP_ALL"
        case .trackerQueryStoreWithGroupAll: "QUERY_STORE_WITH_GROUP_ALL"
        case .trackerListOneGroup: "LIST_ONE_GROUP"
        case .trackerListAllGroups: "LIST_ALL_GROUPS"
        case .trackerListStorage: "LIST_STORAGE"
        case .trackerGetLeader: "GET_LEADER"
        case .trackerVolumeStat: "VOLUME_STAT"
        case .trackerParameterReq: "PARAMETER_REQ"
        case .trackerFetchStorageIDs: "FETCH_STORAGE_IDS"
        case .storageUploadFile: "UPLOAD_FILE"
        case .storageDeleteFile: "DELETE_FILE"
        case .storageSetMetadata: "SET_METADATA"
        case .storageDownloadFile: "DOWNLOAD_FILE"
        case .storageGetMetadata: "GET_METADATA"
        case .storageUploadSlaveFile: "UPLOAD_SLAVE_FILE"
        case .storageQueryFileInfo: "QUERY_FILE_INFO"
        case .storageUploadAppenderFile: "UPLOAD_APPENDER_FILE"
        case .storageAppendFile: "APPEND_FILE"
        case .storageModifyFile: "MODIFY_FILE"
        case .storageTruncateFile: "TRUNCATE_FILE"
        case .storageRegenerateAppenderFilename: "REGENERATE_APPENDER_FILENAME"
        }
    }
}

/// A storage (or tracker) address as the tracker hands it out.
public struct StorageAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
    /// "127.0.0.1:23000"; IPv6 hosts are bracketed: "[::1]:23000".
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// The version of this package (the codec, client, `fdfs`, `fdfsfs` and `fdfs-devserver`),
/// printed by their `--version`.
public enum FDFSPackageVersion {
    public static let string = "0.1.0"
}
