// A small scripted FastDFS server for end-to-end tests of the client's request/response path:
// listens on 127.0.0.1:0, decodes each request with the codec's frame decoder and answers what
// the test's script says (canned bytes, one byte at a time, nothing, a cut-off reply...).

import FastDFSProtocol
@testable import FastDFS
import NIOCore
import NIOPosix
import Synchronization

final class FakeFDFSServer: Sendable {
    enum Reply: Sendable {
        /// Send these bytes (a whole packet, usually) in one write.
        case send(ByteBuffer)
        /// Send these bytes one byte per write.
        case sendSplit(ByteBuffer)
        /// Send these bytes, then close the connection (e.g. a reply cut mid-body).
        case sendThenClose(ByteBuffer)
        /// Send these bytes after a pause.
        case sendAfter(Duration, ByteBuffer)
        /// Never answer; keep the connection open until the client closes it.
        case hang
        /// Close the connection without answering.
        case closeWithoutReply
    }

    struct Request: Sendable {
        var header: FDFSHeader
        var body: ByteBuffer
        /// 1-based number of the connection (in accept order).
        var connection: Int
        /// 0-based index of the request on its connection.
        var index: Int
        /// This server's address (tracker replies point at it).
        var server: StorageAddress
        var command: FDFSCommand? { FDFSCommand(rawValue: header.command) }
    }

    private struct Stats {
        var accepted = 0
        var open = 0
        var maxOpen = 0
        var closed = 0
        var requests: [Request] = []
        var children: [any Channel] = []
    }

    let address: StorageAddress
    private let serverChannel: NIOAsyncChannel<NIOAsyncChannel<FDFSFramePart, ByteBuffer>, Never>
    private let stats = Mutex(Stats())
    private let script: @Sendable (Request) -> Reply

    private init(
        address: StorageAddress, channel: NIOAsyncChannel<NIOAsyncChannel<FDFSFramePart, ByteBuffer>, Never>,
        script: @escaping @Sendable (Request) -> Reply
    ) {
        self.address = address
        self.serverChannel = channel
        self.script = script
    }

    static func start(script: @escaping @Sendable (Request) -> Reply) async throws -> FakeFDFSServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: "127.0.0.1", port: 0) { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(ByteToMessageHandler(FramePartDecoder()))
                    return try NIOAsyncChannel<FDFSFramePart, ByteBuffer>(wrappingChannelSynchronously: child)
                }
            }
        let port = channel.channel.localAddress!.port!
        let server = FakeFDFSServer(
            address: StorageAddress(host: "127.0.0.1", port: port), channel: channel, script: script)
        Task { await server.acceptLoop() }
        return server
    }

    private func acceptLoop() async {
        try? await serverChannel.executeThenClose { inbound in
            try await withThrowingDiscardingTaskGroup { group in
                for try await connection in inbound {
                    let number = stats.withLock { s in
                        s.accepted += 1
                        s.open += 1
                        s.maxOpen = max(s.maxOpen, s.open)
                        s.children.append(connection.channel)
                        return s.accepted
                    }
                    group.addTask {
                        try? await self.serve(connection, number: number)
                        try? await connection.channel.close()
                        self.stats.withLock { s in
                            s.open -= 1
                            s.closed += 1
                        }
                    }
                }
            }
        }
    }

    private func serve(_ connection: NIOAsyncChannel<FDFSFramePart, ByteBuffer>, number: Int) async throws {
        try await connection.executeThenClose { inbound, outbound in
            var header: FDFSHeader?
            var body = ByteBuffer()
            var index = 0
            var iterator = inbound.makeAsyncIterator()
            while let part = try await iterator.next() {
                switch part {
                case .head(let h):
                    header = h
                    body.clear()
                case .body(var chunk):
                    body.writeBuffer(&chunk)
                case .end:
                    guard let h = header else { continue }
                    let request = Request(header: h, body: body, connection: number, index: index, server: address)
                    index += 1
                    stats.withLock { $0.requests.append(request) }
                    switch script(request) {
                    case .send(let bytes):
                        try await outbound.write(bytes)
                    case .sendAfter(let pause, let bytes):
                        try await Task.sleep(for: pause)
                        try await outbound.write(bytes)
                    case .sendSplit(let bytes):
                        for i in 0..<bytes.readableBytes {
                            try await outbound.write(bytes.getSlice(at: bytes.readerIndex + i, length: 1)!)
                            try await Task.sleep(for: .milliseconds(1))
                        }
                    case .sendThenClose(let bytes):
                        try await outbound.write(bytes)
                        return
                    case .hang:
                        while try await iterator.next() != nil {}
                        return
                    case .closeWithoutReply:
                        return
                    }
                }
            }
        }
    }

    var acceptedConnections: Int { stats.withLock { $0.accepted } }
    var closedConnections: Int { stats.withLock { $0.closed } }
    var maxOpenConnections: Int { stats.withLock { $0.maxOpen } }
    var requests: [Request] { stats.withLock { $0.requests } }
    var commands: [UInt8] { requests.map(\.header.command) }

    func stop() async {
        let children = stats.withLock { $0.children }
        for child in children { try? await child.close() }
        try? await serverChannel.channel.close()
    }
}

extension FakeFDFSServer.Reply {
    /// A success reply with `body`.
    static func ok(_ body: ByteBuffer = ByteBuffer()) -> Self { .send(FDFSPacket.response(status: 0, body: body)) }
    /// An error reply (header only).
    static func status(_ errno: FDFSErrno) -> Self { .send(FDFSPacket.response(status: errno.rawValue)) }
    /// Raw bytes from a protocol vector.
    static func canned(_ bytes: [UInt8]) -> Self { .send(ByteBuffer(bytes: bytes)) }
}

/// Tracker replies pointing at `storage`.
enum TrackerReplies {
    static func queryStore(_ storage: StorageAddress, group: String = "group1") -> ByteBuffer {
        var body = ByteBuffer()
        QueryStoreResponse(group: group, server: storage, storePathIndex: 0).encode(into: &body)
        return FDFSPacket.response(status: 0, body: body)
    }

    static func queryFetch(_ storage: StorageAddress, group: String = "group1") -> ByteBuffer {
        var body = ByteBuffer()
        QueryFetchResponse(group: group, server: storage).encode(into: &body)
        return FDFSPacket.response(status: 0, body: body)
    }

    /// A LIST_STORAGE reply naming one ACTIVE storage: id `id`, reachable at `storage`.
    static func listStorage(id: String, at storage: StorageAddress) -> ByteBuffer {
        var stat = StorageStat()
        stat.status = 7
        stat.rwMode = 6
        stat.id = id
        stat.ipAddress = storage.host
        stat.port = Int64(storage.port)
        stat.version = "6.16.1"
        var body = ByteBuffer()
        stat.encode(into: &body, layout: .v487)
        return FDFSPacket.response(status: 0, body: body)
    }

    /// Answers tracker queries with this server's own address, and passes storage commands to `storageScript`.
    /// `dropSecondRequest`: every connection (tracker or storage) is closed unanswered at its second
    /// request, as if the server had restarted while the connection sat in the client's pool.
    /// `storageID`: LIST_STORAGE lists this server under that id (the source of the appender
    /// files a test changes, so the client accepts this server as their source).
    static func routing(split: Bool = false, dropSecondRequest: Bool = false, storageID: String? = nil,
                        storageScript: @escaping @Sendable (FakeFDFSServer.Request) -> FakeFDFSServer.Reply)
        -> @Sendable (FakeFDFSServer.Request) -> FakeFDFSServer.Reply
    {
        { request in
            let reply: ByteBuffer
            if dropSecondRequest && request.index == 1 { return .closeWithoutReply }
            switch request.command {
            case .trackerQueryStoreWithoutGroupOne, .trackerQueryStoreWithGroupOne:
                reply = queryStore(request.server)
            case .trackerQueryFetchOne, .trackerQueryUpdate:
                reply = queryFetch(request.server)
            case .trackerListStorage where storageID != nil:
                reply = listStorage(id: storageID!, at: request.server)
            default:
                return storageScript(request)
            }
            return split ? .sendSplit(reply) : .send(reply)
        }
    }
}
