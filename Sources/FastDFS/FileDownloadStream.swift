// An AsyncSequence of ByteBuffer chunks of one download. Nothing is sent until the first
// `next()`; chunks come straight from the connection's inbound stream, which reads the socket
// only when asked (NIOAsyncChannel backpressure), so memory stays bounded for files of any size.

import FastDFSProtocol
import NIOCore

public struct FileDownloadStream: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    public typealias Failure = any Error

    let open: @Sendable () async throws(FastDFSError) -> DownloadSession?

    init(open: @escaping @Sendable () async throws(FastDFSError) -> DownloadSession?) {
        self.open = open
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(open: open)
    }

    /// Throws FastDFSError.
    public struct AsyncIterator: AsyncIteratorProtocol {
        enum State {
            case notStarted(@Sendable () async throws(FastDFSError) -> DownloadSession?)
            case streaming(DownloadSession)
            case finished
        }
        var state: State

        init(open: @escaping @Sendable () async throws(FastDFSError) -> DownloadSession?) {
            state = .notStarted(open)
        }

        public mutating func next() async throws -> ByteBuffer? {
            switch state {
            case .finished:
                return nil
            case .notStarted(let open):
                state = .finished
                guard let session = try await open() else { return nil }
                state = .streaming(session)
                return try await next()
            case .streaming(let session):
                do {
                    guard let chunk = try await session.next() else {
                        state = .finished
                        return nil
                    }
                    return chunk
                } catch {
                    state = .finished
                    throw error
                }
            }
        }
    }
}
