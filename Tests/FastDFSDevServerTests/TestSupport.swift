// Shared helpers: temp directories, an in-process server on ephemeral ports, a raw NIO client
// that speaks bytes (so tests see exactly what the server sends, including closes), and request
// builders.

import FastDFSProtocol
import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import FastDFSDevServer

/// A fresh directory under /tmp, removed by the caller with `removeTemporaryDirectory`.
func makeTemporaryDirectory(_ tag: String = "devserver") -> String {
    let path = NSTemporaryDirectory() + "fdfs-\(tag)-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Starts a server on 127.0.0.1 (one loopback address per storage) with ephemeral ports and a
/// temp data dir, runs `body`, stops it. A restarted storage syncs again after `syncResumeDelay`
/// (short here; the real default is 30 s). `configure` changes anything else.
func withDevServer<T>(
    groups: Int = 1, storagesPerGroup: Int = 1, replicationLag: Double = 0, compat: CompatLevel = .v6_16,
    reservedSpaceMB: Int64 = 0, faults: [Fault] = [], dataDirectory: String? = nil, syncResumeDelay: Double = 0.3,
    configure: (inout DevServerConfiguration) -> Void = { _ in },
    _ body: (DevServer) async throws -> T
) async throws -> T {
    let dir = dataDirectory ?? makeTemporaryDirectory()
    var config = DevServerConfiguration.ephemeral(
        dataDirectory: dir, groups: groups, storagesPerGroup: storagesPerGroup, replicationLag: replicationLag,
        compat: compat)
    config.reservedSpaceMB = reservedSpaceMB
    config.faults = faults
    config.syncResumeDelay = syncResumeDelay
    configure(&config)
    let server = try DevServer(configuration: config)
    try await server.start()
    do {
        let result = try await body(server)
        await server.stop()
        if dataDirectory == nil { try? FileManager.default.removeItem(atPath: dir) }
        return result
    } catch {
        await server.stop()
        if dataDirectory == nil { try? FileManager.default.removeItem(atPath: dir) }
        throw error
    }
}

extension DevServer {
    var firstStorage: StorageAddress { storageAddress(storageIDs[0])! }
}

/// One reply as read off the socket.
struct RawReply: Equatable, CustomStringConvertible {
    var header: FDFSHeader
    var body: [UInt8]
    var status: UInt8 { header.status }
    var bodyString: String { String(decoding: body, as: UTF8.self) }
    var packet: [UInt8] {
        var b = ByteBuffer()
        header.encode(into: &b)
        return Array(b.readableBytesView) + body
    }
    var description: String { "status \(header.status) body \(body.count) bytes" }
}

enum RawOutcome: Equatable {
    case reply(RawReply)
    /// The server closed the connection before a complete reply.
    case closed(partial: [UInt8])
}

/// A raw TCP connection; use within `RawConnection.with`.
struct RawConnection {
    var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    var pending = ByteBuffer()

    static func with<T>(_ address: StorageAddress, _ body: (inout RawConnection) async throws -> T) async throws -> T {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: address.host, port: address.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var conn = RawConnection(iterator: inbound.makeAsyncIterator(), outbound: outbound)
            return try await body(&conn)
        }
    }

    func send(_ bytes: [UInt8]) async throws {
        try await outbound.write(ByteBuffer(bytes: bytes))
    }

    func send(_ buffer: ByteBuffer) async throws { try await outbound.write(buffer) }

    /// Reads until `count` bytes are buffered; false if the peer closed (or reset) first.
    mutating func fill(_ count: Int) async throws -> Bool {
        while pending.readableBytes < count {
            let next: ByteBuffer?
            do { next = try await iterator.next() } catch is IOError { return false }
            guard var chunk = next else { return false }
            pending.writeBuffer(&chunk)
        }
        return true
    }

    /// The next complete reply, or `.closed` with whatever arrived before the close.
    mutating func receive() async throws -> RawOutcome {
        guard try await fill(10) else { return .closed(partial: Array(pending.readableBytesView)) }
        var copy = pending
        let header = try FDFSHeader.decode(from: &copy)!
        guard try await fill(10 + Int(header.bodyLength)) else {
            return .closed(partial: Array(pending.readableBytesView))
        }
        pending.moveReaderIndex(forwardBy: 10)
        let body = pending.readBytes(length: Int(header.bodyLength))!
        return .reply(RawReply(header: header, body: body))
    }

    /// True when the server closes the connection without sending anything more.
    mutating func isClosedByServer() async throws -> Bool {
        do {
            while let chunk = try await iterator.next() {
                if chunk.readableBytes > 0 { return false }
            }
            return true
        } catch {
            return true  // connection reset counts as closed
        }
    }

    mutating func request(_ bytes: [UInt8]) async throws -> RawOutcome {
        try await send(bytes)
        return try await receive()
    }
}

/// One request on a new connection.
func rawRequest(_ address: StorageAddress, _ bytes: [UInt8]) async throws -> RawOutcome {
    try await RawConnection.with(address) { try await $0.request(bytes) }
}

/// One request that must succeed or fail with a status; returns the reply.
func rawReply(_ address: StorageAddress, _ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation)
    async throws -> RawReply
{
    let outcome = try await rawRequest(address, bytes)
    guard case .reply(let r) = outcome else {
        Issue.record("connection closed without a reply", sourceLocation: sourceLocation)
        throw TestFailure("no reply")
    }
    return r
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

// MARK: request builders (raw bytes, independent of the codec's request types)

enum Req {
    static func packet(_ command: UInt8, _ body: [UInt8] = [], status: UInt8 = 0) -> [UInt8] {
        var b = ByteBuffer()
        FDFSHeader(bodyLength: Int64(body.count), command: command, status: status).encode(into: &b)
        return Array(b.readableBytesView) + body
    }
    static func int64(_ v: Int64) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
    static func fixed(_ s: String, _ width: Int) -> [UInt8] {
        let b = Array(s.utf8.prefix(width))
        return b + [UInt8](repeating: 0, count: width - b.count)
    }
    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    static func upload(_ data: [UInt8], ext: String = "txt", appender: Bool = false, index: UInt8 = 0) -> [UInt8] {
        packet(appender ? 23 : 11, [index] + int64(Int64(data.count)) + fixed(ext, 6) + data)
    }
    static func slave(master: String, prefix: String, ext: String, _ data: [UInt8]) -> [UInt8] {
        packet(
            21, int64(Int64(master.utf8.count)) + int64(Int64(data.count)) + fixed(prefix, 16) + fixed(ext, 6)
                + bytes(master) + data)
    }
    static func download(_ group: String, _ name: String, offset: Int64 = 0, count: Int64 = 0) -> [UInt8] {
        packet(14, int64(offset) + int64(count) + fixed(group, 16) + bytes(name))
    }
    static func groupAndName(_ cmd: UInt8, _ group: String, _ name: String, status: UInt8 = 0) -> [UInt8] {
        packet(cmd, fixed(group, 16) + bytes(name), status: status)
    }
    static func setMetadata(_ group: String, _ name: String, _ meta: [UInt8], mode: UInt8 = 0x4F) -> [UInt8] {
        packet(
            13, int64(Int64(name.utf8.count)) + int64(Int64(meta.count)) + [mode] + fixed(group, 16) + bytes(name) + meta)
    }
    static func append(_ name: String, _ data: [UInt8]) -> [UInt8] {
        packet(24, int64(Int64(name.utf8.count)) + int64(Int64(data.count)) + bytes(name) + data)
    }
    static func modify(_ name: String, offset: Int64, _ data: [UInt8]) -> [UInt8] {
        packet(34, int64(Int64(name.utf8.count)) + int64(offset) + int64(Int64(data.count)) + bytes(name) + data)
    }
    static func truncate(_ name: String, to size: Int64) -> [UInt8] {
        packet(36, int64(Int64(name.utf8.count)) + int64(size) + bytes(name))
    }
    static func regenerate(_ name: String) -> [UInt8] { packet(38, bytes(name)) }
    static func queryFetch(_ cmd: UInt8, _ group: String, _ name: String) -> [UInt8] {
        packet(cmd, fixed(group, 16) + bytes(name))
    }
}

/// Uploads through the raw protocol and returns (group, remote filename).
func rawUpload(_ server: DevServer, _ data: [UInt8], ext: String = "txt", appender: Bool = false,
               storage: StorageAddress? = nil) async throws -> (group: String, name: String)
{
    let r = try await rawReply(storage ?? server.firstStorage, Req.upload(data, ext: ext, appender: appender))
    guard r.status == 0, r.body.count > 16 else { throw TestFailure("upload failed with status \(r.status)") }
    let group = String(decoding: r.body[0..<16].prefix { $0 != 0 }, as: UTF8.self)
    return (group, String(decoding: r.body[16...], as: UTF8.self))
}
