// QUERY_FETCH_ALL (105) reply, whose layout changed in 6.16.0 (§3.4 of the reference).
//
//   ≤ 6.15: group(16) + ip₁(W) + port(8) + (N−1) × ipᵢ(W)     — one port shared by all
//   ≥ 6.16: group(16) + N × (ip(W) + port(8))                 — one port per server
//
// Length alone is ambiguous (69 bytes = old W=15 N=3 or new W=45 N=1), so the decoder tries
// every (width, layout) reading that fits the length and keeps only readings whose port fields
// have their top 6 bytes zero with a value in 1...65535 and whose IP fields hold address text.
// Exactly one surviving reading wins; several that disagree throw (never a guess).
import NIOCore

public struct QueryFetchAllResponse: Hashable, Sendable {
    public enum Layout: Hashable, Sendable {
        /// ≤ 6.15: only the first server carries a port; all share it.
        case sharedPort
        /// ≥ 6.16: every server carries its own port.
        case portPerServer
    }

    public var group: String
    public var servers: [StorageAddress]
    public var ipWidth: Int
    /// The layout the reply was read with. A one-server reply is identical in both layouts and
    /// decodes as `.portPerServer`.
    public var layout: Layout

    public init(group: String, servers: [StorageAddress], ipWidth: Int = 15, layout: Layout = .portPerServer) {
        self.group = group
        self.servers = servers
        self.ipWidth = ipWidth
        self.layout = layout
    }

    public func encode(into buffer: inout ByteBuffer) { encode(into: &buffer, ipWidth: ipWidth, layout: layout) }

    public func encode(into buffer: inout ByteBuffer, layout: Layout) {
        encode(into: &buffer, ipWidth: ipWidth, layout: layout)
    }

    /// In `.sharedPort` layout only the first server's port is written.
    public func encode(into buffer: inout ByteBuffer, ipWidth: Int, layout: Layout = .portPerServer) {
        let width = IPField.normalized(ipWidth)
        buffer.writeFDFSFixedString(group, width: 16)
        for (i, server) in servers.enumerated() {
            buffer.writeFDFSFixedString(server.host, width: width)
            if layout == .portPerServer || i == 0 {
                buffer.writeFDFSInt64(Int64(server.port))
            }
        }
    }

    public static func decode(body: inout ByteBuffer) throws(FDFSProtocolError) -> QueryFetchAllResponse {
        try decode(body: &body, ipWidthHint: nil)
    }

    /// `ipWidthHint`: W learned from an earlier 101/102 reply (15 or 45), or nil to try both.
    public static func decode(body: inout ByteBuffer, ipWidthHint: Int? = nil) throws(FDFSProtocolError) -> QueryFetchAllResponse {
        let command = "QUERY_FETCH_ALL response"
        let length = body.readableBytes
        var readings: [QueryFetchAllResponse] = []
        var lastError: FDFSProtocolError?

        for width in IPField.candidates(ipWidthHint) {
            for layout in [Layout.portPerServer, .sharedPort] {
                guard let count = serverCount(length: length, width: width, layout: layout) else { continue }
                var copy = body
                do throws(FDFSProtocolError) {
                    readings.append(try read(&copy, count: count, width: width, layout: layout, command: command))
                } catch {
                    lastError = error
                }
            }
        }

        // A one-server reply reads the same in both layouts; keep one of each distinct value.
        var distinct: [QueryFetchAllResponse] = []
        for reading in readings where !distinct.contains(where: { $0.group == reading.group && $0.servers == reading.servers }) {
            distinct.append(reading)
        }
        if distinct.count == 1 {
            body.moveReaderIndex(forwardBy: length)
            return distinct[0]
        }
        if distinct.count > 1 {
            throw .malformed(command: command, reason: "\(length)-byte body fits \(distinct.count) different layouts; pass ipWidthHint")
        }
        if let lastError { throw lastError }
        throw .invalidLength(command: command, length: length,
                             expected: "16 + N×(W+8) (≥ 6.16) or 16 + W + 8 + (N−1)×W (≤ 6.15), W = 15 or 45")
    }

    /// N for a (width, layout) reading of `length` bytes, or nil when it doesn't fit (N ≥ 1).
    static func serverCount(length: Int, width: Int, layout: Layout) -> Int? {
        let rest = length - 16
        switch layout {
        case .portPerServer:
            guard rest > 0, rest % (width + 8) == 0 else { return nil }
            return rest / (width + 8)
        case .sharedPort:
            let extra = rest - width - 8
            guard extra >= 0, extra % width == 0 else { return nil }
            return 1 + extra / width
        }
    }

    static func read(_ buffer: inout ByteBuffer, count: Int, width: Int, layout: Layout,
                     command: String) throws(FDFSProtocolError) -> QueryFetchAllResponse {
        let group = try Wire.readGroup(&buffer, command: command)
        var servers: [StorageAddress] = []
        servers.reserveCapacity(count)
        var sharedPort = 0
        for i in 0..<count {
            let host = try IPField.read(&buffer, width: width, command: command, strict: true)
            var port = sharedPort
            if layout == .portPerServer || i == 0 {
                port = try Wire.readPort(&buffer, command: command)
                guard port > 0 else { throw .malformed(command: command, reason: "port 0") }
                sharedPort = port
            }
            servers.append(StorageAddress(host: host, port: port))
        }
        guard buffer.readableBytes == 0 else {
            throw .malformed(command: command, reason: "\(buffer.readableBytes) trailing bytes")
        }
        return QueryFetchAllResponse(group: group, servers: servers, ipWidth: width, layout: layout)
    }
}
