// The `--control PATH` unix socket: one command line per connection, the reply
// (ControlReply.text), then the server closes. `ControlSocket.send` is the client side
// (`fdfs-devserver control PATH COMMAND...`).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

final class ControlSocket: Sendable {
    let path: String
    /// Strong on purpose: `DevServer.stop()` drops the socket, which breaks the cycle.
    private let server: DevServer
    private let channel = NIOLockedValueBox<(any Channel)?>(nil)

    init(path: String, server: DevServer) {
        self.path = path
        self.server = server
    }

    func start() async throws {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        let listening = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) { child in
            child.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child)
            }
        }
        channel.withLockedValue { $0 = listening.channel }
        let server = self.server
        Task {
            _ = try? await listening.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        group.addTask { await Self.serve(connection, server: server) }
                    }
                }
            }
        }
    }

    func stop() async {
        let c = channel.withLockedValue { c -> (any Channel)? in
            let old = c
            c = nil
            return old
        }
        try? await c?.close()
        unlink(path)
    }

    private static func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, server: DevServer) async {
        try? await connection.executeThenClose { inbound, outbound in
            var line: [UInt8] = []
            reading: for try await chunk in inbound {
                for byte in chunk.readableBytesView {
                    if byte == UInt8(ascii: "\n") { break reading }
                    line.append(byte)
                }
                if line.count > 64 * 1024 { break }
            }
            let reply = await server.control(String(decoding: line, as: UTF8.self))
            try await outbound.write(ByteBuffer(string: reply.text))
        }
    }

    /// Sends one command to the control socket at `path` and returns the reply.
    public static func send(path: String, command: String) async throws -> ControlReply {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(unixDomainSocketPath: path) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: command + "\n"))
            var text = ByteBuffer()
            for try await var chunk in inbound { text.writeBuffer(&chunk) }
            return ControlReply(text: String(buffer: text))
        }
    }
}

/// The client side of `--control`, for the CLI.
public enum DevServerControl {
    /// Sends `command` to the control socket at `path`.
    public static func send(path: String, command: String) async throws -> ControlReply {
        try await ControlSocket.send(path: path, command: command)
    }
}
