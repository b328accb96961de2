// The I/O edge: one async loop per connection reading frame parts, applying faults, calling the
// handlers on the thread pool, and writing replies. One request, then one reply, as the real
// servers do. Streamed content (uploads, downloads) moves in chunks with backpressure in both
// directions: the inbound sequence stops reading while a chunk is written to disk, and the
// outbound writer suspends while the socket is not writable.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FastDFSProtocol
import NIOCore

struct ConnectionContext: Sendable {
    let role: ServerRole
    let faults: FaultInjector
    let io: BlockingIO
    let maxRequestBody: Int
}

/// Ends the connection without a reply (protocol violation, fault, QUIT).
private struct CloseConnection: Error {}

/// Reads requests: a header, then its body chunks. Body completion is counted from the header's
/// length rather than taken from the decoder's `.end` part, because `ByteToMessageHandler` only
/// calls the decoder again when new bytes arrive, so `.end` shows up just before the next header.
private struct RequestReader {
    var iterator: NIOAsyncChannelInboundStream<FDFSFramePart>.AsyncIterator
    /// Body bytes of the current request not read yet.
    var remaining: Int64 = 0

    /// The next request header, or nil when the peer closed the connection.
    mutating func nextHeader() async throws -> FDFSHeader? {
        while let part = try await iterator.next() {
            if case .head(let header) = part {
                remaining = header.bodyLength
                return header
            }
        }
        return nil
    }

    /// The next chunk of the current body; nil once the body is complete.
    mutating func nextChunk() async throws -> ByteBuffer? {
        guard remaining > 0 else { return nil }
        while let part = try await iterator.next() {
            switch part {
            case .body(let chunk):
                remaining -= Int64(chunk.readableBytes)
                return chunk
            case .end: continue
            case .head: throw CloseConnection()
            }
        }
        throw CloseConnection()
    }

    /// The whole body, or nil once it exceeds `limit` (the rest is left unread).
    mutating func collectBody(limit: Int) async throws -> ByteBuffer? {
        guard remaining <= Int64(limit) else { return nil }
        var body = ByteBuffer()
        while var chunk = try await nextChunk() { body.writeBuffer(&chunk) }
        return body
    }

    /// Reads and discards the rest of the body.
    mutating func drain() async throws {
        while try await nextChunk() != nil {}
    }
}

extension ConnectionContext {
    /// Serves one connection until the peer closes, QUIT, an EINVAL reply, or a fault ends it.
    func serve(
        _ connection: FrameChannel,
        onOpen: @Sendable () -> Void = {},
        onClose: @Sendable () -> Void = {},
        request: @escaping @Sendable (FDFSHeader, inout RequestStream) async throws -> Void
    ) async {
        if faults.resetOnAccept(role) {
            // executeThenClose finishes the outbound writer (closing the bare channel would not).
            try? await connection.executeThenClose { _, _ in }
            return
        }
        onOpen()
        defer { onClose() }
        try? await connection.executeThenClose { inbound, outbound in
            var stream = RequestStream(reader: RequestReader(iterator: inbound.makeAsyncIterator()), outbound: outbound, context: self)
            while let header = try await stream.reader.nextHeader() {
                if faults.stall(role) {
                    // Accept the request and never answer: keep reading until the peer gives up.
                    while try await stream.reader.iterator.next() != nil {}
                    return
                }
                if let status = faults.failure(role, command: header.command) {
                    try await stream.reader.drain()
                    try await stream.send(.error(status, close: status == .einval))
                    if status == .einval { return }
                    continue
                }
                do {
                    try await request(header, &stream)
                } catch is CloseConnection {
                    return
                }
            }
        }
    }
}

/// The current connection's reader and writer, handed to the per-role request functions.
struct RequestStream {
    fileprivate var reader: RequestReader
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let context: ConnectionContext

    /// The whole body, or nil (nothing read) if it exceeds `limit` (default: the request limit).
    mutating func body(limit: Int? = nil) async throws -> ByteBuffer? {
        try await reader.collectBody(limit: limit ?? context.maxRequestBody)
    }

    mutating func drain() async throws { try await reader.drain() }
    mutating func nextChunk() async throws -> ByteBuffer? { try await reader.nextChunk() }

    func delayIfAsked() async throws {
        if let ms = context.faults.delayMilliseconds(context.role), ms > 0 {
            try await Task.sleep(for: .milliseconds(ms))
        }
    }

    /// Sends a complete reply; throws `CloseConnection` afterwards when the reply asks for it.
    func send(_ reply: Reply) async throws {
        try await delayIfAsked()
        try await outbound.write(reply.packet())
        if reply.closeAfterSending { throw CloseConnection() }
    }

    func sendResult(_ result: HandlerResult) async throws {
        switch result {
        case .quit: throw CloseConnection()
        case .reply(let r): try await send(r)
        }
    }

    func write(_ buffer: ByteBuffer) async throws { try await outbound.write(buffer) }

    static func closeConnection() -> any Error { CloseConnection() }
}

// MARK: tracker

extension ConnectionContext {
    func serveTracker(_ connection: FrameChannel, handler: TrackerHandler) async {
        await serve(connection) { header, stream in
            guard let body = try await stream.body() else {
                try await stream.send(.error(.einval, close: true))
                return
            }
            let status = header.status
            // Queries touch memory only: answered here; the rest (stats: statvfs) on the pool.
            let result =
                TrackerHandler.memoryOnlyCommands.contains(header.command)
                ? handler.handle(command: header.command, status: status, body: body)
                : try await io.run { handler.handle(command: header.command, status: status, body: body) }
            try await stream.sendResult(result)
        }
    }
}

// MARK: storage

extension ConnectionContext {
    func serveStorage(_ connection: FrameChannel, handler: StorageHandler) async {
        let node = handler.node
        await serve(
            connection,
            onOpen: {
                node.runtime.withLockedValue {
                    $0.connections += 1
                    $0.allocatedConnections += 1
                    $0.maxConnections = max($0.maxConnections, $0.connections)
                }
            },
            onClose: { node.runtime.withLockedValue { $0.connections -= 1 } }
        ) { header, stream in
            if StorageHandler.streamedCommands.contains(header.command) {
                try await receiveContent(header, handler: handler, stream: &stream)
            } else if header.command == FDFSCommand.storageDownloadFile.rawValue {
                guard let body = try await stream.body() else {
                    try await stream.send(StorageHandler.invalid)
                    return
                }
                try await sendDownload(body, handler: handler, stream: stream)
            } else {
                guard let body = try await stream.body() else {
                    try await stream.send(StorageHandler.invalid)
                    return
                }
                let status = header.status
                let result = try await io.run { handler.handle(command: header.command, status: status, body: body) }
                try await stream.sendResult(result)
            }
        }
    }

    /// Requests and downloads up to this size are handled in one trip to the thread pool (head,
    /// content and finish together); larger ones stream in chunks.
    static let wholeRequestLimit: Int64 = 256 * 1024

    /// Upload, appender upload, slave upload, append, modify: head, then content to disk.
    private func receiveContent(_ header: FDFSHeader, handler: StorageHandler, stream: inout RequestStream) async throws {
        let dropAfter = faults.dropAfter(role)
        if header.bodyLength <= Self.wholeRequestLimit, dropAfter == nil,
            let body = try await stream.body(limit: Int(Self.wholeRequestLimit))
        {
            let command = header.command
            guard let reply = try await io.run({ handler.handleWhole(command: command, body: body) }) else {
                throw RequestStream.closeConnection()
            }
            try await stream.send(reply)
            return
        }
        var pending = ByteBuffer()
        var ended = header.bodyLength == 0
        var sink: ContentSink
        func next() async throws -> ByteBuffer? {
            let chunk = try await stream.nextChunk()
            if stream.reader.remaining == 0 { ended = true }
            return chunk
        }
        while true {
            let buffered = pending
            let (start, rest) = try await io.run {
                var b = buffered
                let r = handler.startStream(command: header.command, bodyLength: header.bodyLength, buffer: &b)
                return (r, b)
            }
            switch start {
            case .accept(let s):
                sink = s
                pending = rest
            case .reject(let reply, let drain):
                if drain {
                    if !ended { try await stream.drain() }
                    try await stream.send(reply)
                } else {
                    try await stream.send(Reply(status: reply.status, body: reply.body, closeAfterSending: true))
                }
                return
            case .needMore:
                guard !ended, var chunk = try await next() else { throw RequestStream.closeConnection() }
                pending.writeBuffer(&chunk)
                continue
            }
            break
        }
        do {
            if pending.readableBytes > 0 {
                sink = try await writeChunk(pending, to: sink, handler: handler, dropAfter: dropAfter)
            }
            while !ended, let chunk = try await next() {
                sink = try await writeChunk(chunk, to: sink, handler: handler, dropAfter: dropAfter)
            }
        } catch let partial as PartialWrite {
            let failed = partial.sink
            _ = try? await io.run { handler.abort(failed) }
            throw RequestStream.closeConnection()
        } catch {
            let failed = sink
            _ = try? await io.run { handler.abort(failed) }
            if let diskError = error as? DiskError {
                try await stream.send(.error(diskError.status, close: true))
            }
            throw error
        }
        let done = sink
        let reply = try await io.run { handler.finish(done) }
        try await stream.send(reply)
    }

    private func writeChunk(_ chunk: ByteBuffer, to sink: ContentSink, handler: StorageHandler, dropAfter: Int64?)
        async throws -> ContentSink
    {
        var chunk = chunk
        if let limit = dropAfter, sink.received + Int64(chunk.readableBytes) >= limit {
            // Fault: the connection dies after `limit` content bytes.
            let keep = Int(max(0, limit - sink.received))
            let head = chunk.readSlice(length: keep)!
            let partial = try await io.run { () throws -> ContentSink in
                var s = sink
                try s.write(head)
                return s
            }
            throw PartialWrite(sink: partial)
        }
        let payload = chunk
        return try await io.run { () throws -> ContentSink in
            var s = sink
            try s.write(payload)
            return s
        }
    }

    /// DOWNLOAD_FILE: header with the byte count, then the file in chunks read on the thread pool.
    private func sendDownload(_ body: ByteBuffer, handler: StorageHandler, stream: RequestStream) async throws {
        let allocator = ByteBufferAllocator()
        let limit = Self.wholeRequestLimit
        // Prepared, and read whole when small (one trip to the thread pool).
        let planned = try await io.run { () throws -> Result<(StorageHandler.DownloadPlan, ByteBuffer?), ReplyError> in
            switch handler.prepareDownload(body) {
            case .failure(let e): return .failure(e)
            case .success(let plan):
                guard plan.length <= limit else { return .success((plan, nil)) }
                do {
                    return .success((plan, try DiskStore.readChunk(fd: plan.fd, at: plan.offset, count: Int(plan.length), allocator: allocator)))
                } catch {
                    close(plan.fd)
                    throw error
                }
            }
        }
        let plan: StorageHandler.DownloadPlan
        let whole: ByteBuffer?
        switch planned {
        case .failure(let e):
            try await stream.send(e.reply)
            return
        case .success(let (p, w)): (plan, whole) = (p, w)
        }
        defer { close(plan.fd) }
        let dropAfter = faults.dropAfter(role)
        try await stream.delayIfAsked()
        var head = ByteBuffer()
        FDFSHeader(bodyLength: plan.length, command: FDFSCommand.response.rawValue, status: 0).encode(into: &head)
        if var whole, dropAfter == nil, whole.readableBytes == Int(plan.length) {
            head.writeBuffer(&whole)
            try await stream.write(head)
            handler.node.countDownload(bytes: plan.length)
            return
        }
        try await stream.write(head)
        let chunkSize: Int64 = 256 * 1024
        var sent: Int64 = 0
        while sent < plan.length {
            var want = min(chunkSize, plan.length - sent)
            if let limit = dropAfter { want = min(want, max(0, limit - sent)) }
            if want == 0 { throw RequestStream.closeConnection() }
            let at = plan.offset + sent
            let count = Int(want)
            let chunk = try await io.run { try DiskStore.readChunk(fd: plan.fd, at: at, count: count, allocator: allocator) }
            // The file shrank under us: the client sees a short read, as with the real server.
            guard chunk.readableBytes > 0 else { throw RequestStream.closeConnection() }
            try await stream.write(chunk)
            sent += Int64(chunk.readableBytes)
        }
        handler.node.countDownload(bytes: sent)
    }
}

/// A drop-after fault fired during an upload; carries the sink so it can be cleaned up.
private struct PartialWrite: Error {
    var sink: ContentSink
}
