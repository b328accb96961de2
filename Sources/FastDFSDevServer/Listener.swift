// One TCP listener (the tracker, or one storage): binds, accepts, and runs a serve function per
// connection as an `NIOAsyncChannel` of frame parts. It can be stopped and started again on the
// same port (storage restart, `refuse` faults), optionally keeping open connections alive.

import FastDFSProtocol
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

typealias FrameChannel = NIOAsyncChannel<FDFSFramePart, ByteBuffer>

final class Listener: Sendable {
    private struct State {
        var port: Int
        var server: (any Channel)?
        var acceptTask: Task<Void, Never>?
        var children: [ObjectIdentifier: any Channel] = [:]
    }

    let host: String
    let group: any EventLoopGroup
    let serve: @Sendable (FrameChannel) async -> Void
    private let state: NIOLockedValueBox<State>

    init(host: String, port: Int, group: any EventLoopGroup, serve: @escaping @Sendable (FrameChannel) async -> Void) {
        self.host = host
        self.group = group
        self.serve = serve
        self.state = NIOLockedValueBox(State(port: port))
    }

    /// The bound port (the requested one until the first bind).
    var port: Int { state.withLockedValue { $0.port } }
    var isListening: Bool { state.withLockedValue { $0.server != nil } }

    /// Binds (to the remembered port after the first time) and starts accepting.
    func start() async throws {
        guard !isListening else { return }
        let requested = port
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: requested) { [state] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FDFSFrameDecoder()))
                    let id = ObjectIdentifier(channel)
                    state.withLockedValue { $0.children[id] = channel }
                    channel.closeFuture.whenComplete { _ in
                        _ = state.withLockedValue { $0.children.removeValue(forKey: id) }
                    }
                    return try FrameChannel(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8)))
                }
            }
        let bound = server.channel.localAddress?.port ?? requested
        let serve = self.serve
        let task = Task {
            _ = try? await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        group.addTask { await serve(connection) }
                    }
                }
            }
        }
        state.withLockedValue {
            $0.port = bound
            $0.server = server.channel
            $0.acceptTask = task
        }
    }

    /// Stops accepting. With `closeConnections`, also closes every open connection and waits for
    /// their handlers to finish.
    func stop(closeConnections: Bool) async {
        let (server, task, children) = state.withLockedValue { s in
            let r = (s.server, s.acceptTask, Array(s.children.values))
            s.server = nil
            s.acceptTask = nil
            return r
        }
        try? await server?.close()
        if closeConnections {
            for child in children { try? await child.close() }
            task?.cancel()
            await task?.value
        }
    }
}
