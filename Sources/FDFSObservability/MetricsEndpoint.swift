#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus

/// Serves the registry in Prometheus' text format (`GET /metrics`, also `/`) over HTTP/1.1 on
/// the listeners it is given: a TCP address (`-o metrics=HOST:PORT`, for a scraper) and the
/// mount's unix socket (always; what `fdfsfs stats` reads). Each scrape renders the registry
/// on the event loop (a few KiB of text); nothing else runs there.
public final class MetricsEndpoint: Sendable {
    public enum Listener: Sendable, Hashable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    let channels: [any Channel]
    /// The TCP port actually bound (for `port 0`), nil without a TCP listener.
    public let tcpPort: Int?

    init(channels: [any Channel], tcpPort: Int?) {
        self.channels = channels
        self.tcpPort = tcpPort
    }

    public static func start(registry: PrometheusCollectorRegistry, listeners: [Listener],
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> MetricsEndpoint {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(registry: registry))
                }
            }
        var channels: [any Channel] = []
        var port: Int?
        do {
            for listener in listeners {
                switch listener {
                case .tcp(let host, let p):
                    let channel = try await bootstrap.bind(host: host, port: p).get()
                    port = channel.localAddress?.port
                    channels.append(channel)
                case .unix(let path):
                    _ = unlink(path)
                    let channel = try await bootstrap.bind(unixDomainSocketPath: path).get()
                    _ = chmod(path, 0o660)
                    channels.append(channel)
                }
            }
        } catch {
            for c in channels { try? await c.close() }
            throw error
        }
        return MetricsEndpoint(channels: channels, tcpPort: port)
    }

    public func close() async {
        for channel in channels {
            let path = channel.localAddress?.pathname
            try? await channel.close()
            if let path { _ = unlink(path) }
        }
    }

    /// Parses `HOST:PORT` (`[V6]:PORT` for IPv6).
    public static func parseTCP(_ text: String) -> Listener? {
        var host: Substring, port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            port = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let p = Int(port), (0...65535).contains(p) else { return nil }
        return .tcp(host: String(host), port: p)
    }

    /// The unix socket of the mount at `mountpoint`: `RUN_DIR/<FNV-1a of the path>.sock`, where
    /// RUN_DIR is `$FDFSFS_RUN_DIR`, else `/run/fdfsfs` for root and `/tmp/fdfsfs-UID` for others.
    public static func socketPath(forMountpoint mountpoint: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in mountpoint.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return runDirectory + "/" + String(h, radix: 16) + ".sock"
    }

    public static var runDirectory: String {
        if let dir = getenv("FDFSFS_RUN_DIR") { return String(cString: dir) }
        return getuid() == 0 ? "/run/fdfsfs" : "/tmp/fdfsfs-\(getuid())"
    }
}

final class MetricsHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let registry: PrometheusCollectorRegistry
    private var head: HTTPRequestHead?

    init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            let status: HTTPResponseStatus, body: [UInt8], type: String
            if head.method != .GET && head.method != .HEAD {
                (status, body, type) = (.methodNotAllowed, Array("only GET\n".utf8), "text/plain")
            } else if path == "/metrics" || path == "/" {
                (status, body, type) = (.ok, registry.emitToBuffer(), "text/plain; version=0.0.4; charset=utf-8")
            } else {
                (status, body, type) = (.notFound, Array("not found; metrics are at /metrics\n".utf8), "text/plain")
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: String(body.count))
            let keepAlive = head.isKeepAlive
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            if head.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            }
            let done = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
            if !keepAlive {
                let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
                done.futureResult.whenComplete { _ in ctx.value.close(promise: nil) }
            }
        }
    }
}
