// Replies of FastDFS 5.12 / 6.06 / 6.16.1 (captured bytes) through the whole client path:
// fetch-all layouts, group and storage stat layouts, unsupported commands, error text.

import FastDFSProtocol
import NIOCore
import Testing
@testable import FastDFS

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private func closeDescriptor(_ fd: Int32) { _ = close(fd) }

/// A TCP port on 127.0.0.1 that is bound but not listening: connecting to it is refused.
struct BoundButNotListening {
    let fd: Int32
    let address: StorageAddress

    struct Failure: Error { var what: String }

    init() throws {
        #if canImport(Glibc)
        let sock = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let sock = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard sock >= 0 else { throw Failure(what: "socket") }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_addr.s_addr = inet_addr("127.0.0.1")
        sin.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &sin) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(sock, sa, length) == 0 && getsockname(sock, sa, &length) == 0
            }
        }
        guard bound else {
            closeDescriptor(sock)
            throw Failure(what: "bind")
        }
        fd = sock
        address = StorageAddress(host: "127.0.0.1", port: Int(UInt16(bigEndian: sin.sin_port)))
    }

    func close() { closeDescriptor(fd) }
}

@Suite("Version tolerance (captured replies)")
struct VersionToleranceTests {
    func makeClient(_ server: FakeFDFSServer) -> FastDFSClient {
        var config = FastDFSConfiguration(trackers: [server.address])
        config.readStallTimeout = .seconds(3600)  // these tests count requests: no hedging on a loaded machine
        config.storageConnectRetries = 0
        return FastDFSClient(configuration: config)
    }

    func fileID(_ vectors: ProtocolVectors) throws -> FileID {
        var body = ByteBuffer(bytes: vectors["storage_upload_file"].response.dropFirst(FDFSHeader.size))
        return try UploadResponse.decode(body: &body).fileID
    }

    @Test(arguments: ["5.12", "6.06", "6.16.1"])
    func fetchAllWithTwoServers(version: String) async throws {
        let vectors = try ProtocolVectors.load(version)
        let server = try await FakeFDFSServer.start { request in
            switch request.command {
            case .trackerQueryFetchOne: .canned(vectors["tracker_query_fetch_one"].response)
            case .trackerQueryFetchAll: .canned(vectors["tracker_query_fetch_all_replicated"].response)
            default: .status(.einval)
            }
        }
        let client = makeClient(server)
        let id = try fileID(vectors)
        let one = try await client.queryFetch(id)  // teaches the client W = 15
        let all = try await client.queryFetchAll(id)
        #expect(all.count == 2)
        #expect(all.first == one)
        #expect(Set(all.map(\.port)).count == 1)
        #expect(client.learnedIPWidth.load(ordering: .relaxed) == 15)
        await client.shutdown()
        await server.stop()
    }

    @Test(arguments: ["5.12", "6.06", "6.16.1"])
    func groupAndStorageListings(version: String) async throws {
        let vectors = try ProtocolVectors.load(version)
        let server = try await FakeFDFSServer.start { request in
            switch request.command {
            case .trackerListAllGroups: .canned(vectors["tracker_list_all_groups"].response)
            case .trackerListOneGroup: .canned(vectors["tracker_list_one_group"].response)
            case .trackerListStorage: .canned(vectors["tracker_list_servers"].response)
            default: .status(.einval)
            }
        }
        let client = makeClient(server)
        let groups = try await client.listGroups()
        #expect(groups.map(\.name) == ["group1"])
        #expect(groups[0].storageCount == 2)
        let one = try await client.group("group1")
        #expect(one.name == "group1")
        let storages = try await client.listStorages(group: "group1")
        #expect(storages.count == 2)
        #expect(storages.allSatisfy { $0.status == 7 })
        await client.shutdown()
        await server.stop()
    }

    @Test func unknownGroupIsENOENT() async throws {
        let vectors = try ProtocolVectors.load("6.16.1")
        let server = try await FakeFDFSServer.start { _ in .canned(vectors["tracker_list_one_group_unknown"].response) }
        let client = makeClient(server)
        let error = await #expect(throws: FastDFSError.self) { _ = try await client.group("nosuchgrp") }
        #expect(error?.errno == LinuxErrno.ENOENT)
        #expect(error?.description == "LIST_ONE_GROUP on \(server.address) failed: ENOENT (No such file or directory)")
        await client.shutdown()
        await server.stop()
    }

    @Test func regenerateOnAServerWithoutCommand38() async throws {
        let vectors = try ProtocolVectors.load("5.12")
        var body = ByteBuffer(bytes: vectors["storage_upload_appender_file"].response.dropFirst(FDFSHeader.size))
        let appender = try UploadResponse.decode(body: &body).fileID
        guard case .ipv4(let sourceIP) = try FastDFSClient.decode(appender).source else { Issue.record("not an IP source"); return }
        let server = try await FakeFDFSServer.start(
            script: TrackerReplies.routing(storageID: sourceIP) { _ in .sendThenClose(ByteBuffer(bytes: vectors["storage_regenerate_appender_filename_unsupported"].response)) })
        let client = makeClient(server)
        let error = await #expect(throws: FastDFSError.self) { _ = try await client.regenerateAppenderFilename(appender) }
        #expect(error?.status == .einval)
        #expect(error?.description.contains("older than 6.02") == true)
        await client.shutdown()
        await server.stop()
    }

    @Test func oldServerDownloadAtEOFOfAnAppender() async throws {
        // 5.12 answers offset == size with an empty body; 6.16.1 with EINVAL. Both give no bytes.
        let v516 = try ProtocolVectors.load("6.16.1")
        var body = ByteBuffer(bytes: v516["storage_upload_appender_file"].response.dropFirst(FDFSHeader.size))
        let appender = try UploadResponse.decode(body: &body).fileID
        for (version, reply) in [("5.12", FDFSPacket.response(status: 0)), ("6.16.1", FDFSPacket.response(status: 22))] {
            let server = try await FakeFDFSServer.start { request in
                switch request.command {
                case .storageDownloadFile: .send(reply)
                case .storageQueryFileInfo: .canned(v516["storage_query_file_info_appender"].response)  // size 8
                default: .status(.einval)
                }
            }
            let client = makeClient(server)
            let data = try await client.download(appender, offset: 8, storage: server.address)
            #expect(data.readableBytes == 0, "\(version)")
            await client.shutdown()
            await server.stop()
        }
    }
}

@Suite("FastDFSError")
struct FastDFSErrorTests {
    @Test func serverStatusDescriptionAndErrno() {
        let e = FastDFSError.status(2, command: .storageDownloadFile, server: StorageAddress(host: "127.0.0.1", port: 23000))
        #expect(e.description == "DOWNLOAD_FILE on 127.0.0.1:23000 failed: ENOENT (No such file or directory)")
        #expect(e.errno == LinuxErrno.ENOENT)
        #expect(e.code == .serverStatus)
    }

    @Test func linuxNumberingForStatusesAbove34() {
        let e = FastDFSError.status(95, command: .trackerFetchStorageIDs, server: StorageAddress(host: "h", port: 1))
        #expect(e.errno == 95)  // EOPNOTSUPP on Linux, whatever the host
        #expect(e.status?.name == "EOPNOTSUPP")
    }

    @Test func localErrorsMapToErrno() {
        #expect(FastDFSError(code: .timeout, message: "x").errno == LinuxErrno.ETIMEDOUT)
        #expect(FastDFSError(code: .connectFailed, message: "x").errno == LinuxErrno.ECONNREFUSED)
        #expect(FastDFSError(code: .cancelled, message: "x").errno == LinuxErrno.EINTR)
        #expect(FastDFSError(code: .invalidArgument, message: "x").errno == LinuxErrno.EINVAL)
        #expect(FastDFSError(code: .connectionClosed, message: "x").errno == LinuxErrno.EIO)
    }

    @Test func decodeRejectsBadIDsWithEINVAL() {
        let error = #expect(throws: FastDFSError.self) { try FastDFSClient.decode(FileID(group: "g", filename: "M00/short")) }
        #expect(error?.errno == LinuxErrno.EINVAL)
        #expect(error?.code == .invalidArgument)
    }

    @Test func clampingRanges() {
        #expect(FastDFSClient.clamp(offset: 0, length: 0, size: 10)! == (0, 0))
        #expect(FastDFSClient.clamp(offset: 5, length: 100, size: 10)! == (5, 5))
        #expect(FastDFSClient.clamp(offset: 2, length: 3, size: 10)! == (2, 3))
        #expect(FastDFSClient.clamp(offset: 10, length: 0, size: 10) == nil)
        #expect(FastDFSClient.clamp(offset: 0, length: 0, size: 0) == nil)
    }
}

@Suite("Storage connect retry (§10.2)")
struct ConnectRetryTests {
    @Test func backoffDoublesFrom100msAndCapsAt5s() {
        #expect((1...8).map { ConnectErrorMapper.backoff(attempt: $0) } == [
            .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800),
            .milliseconds(1600), .milliseconds(3200), .milliseconds(5000), .milliseconds(5000),
        ])
    }

    @Test func onlyTheCClientsErrnosAreRetried() {
        func connectError(_ errno: Int32) -> FastDFSError { FastDFSError(code: .connectFailed, message: "x", errno: errno) }
        #expect(ConnectErrorMapper.isRetryable(connectError(LinuxErrno.ECONNREFUSED)))
        #expect(ConnectErrorMapper.isRetryable(connectError(LinuxErrno.ETIMEDOUT)))
        #expect(ConnectErrorMapper.isRetryable(connectError(LinuxErrno.EAGAIN)))
        #expect(ConnectErrorMapper.isRetryable(connectError(LinuxErrno.EADDRINUSE)))
        #expect(!ConnectErrorMapper.isRetryable(connectError(LinuxErrno.EHOSTUNREACH)))
        #expect(!ConnectErrorMapper.isRetryable(FastDFSError(code: .timeout, message: "x")))
    }

    @Test func refusedStorageConnectIsRetriedThenReported() async throws {
        // A port bound but never listened on refuses connections, and no other test's server
        // can take it meanwhile (a port merely closed again could be reused by a parallel test).
        let reserved = try BoundButNotListening()
        defer { reserved.close() }
        let closed = reserved.address
        var config = FastDFSConfiguration(trackers: [closed])
        config.readStallTimeout = .seconds(3600)  // these tests count requests: no hedging on a loaded machine
        config.storageConnectRetries = 1
        let client = FastDFSClient(configuration: config)
        let id = FileID(group: "group1", filename: "M00/00/00/fwAAA2sKYBaAOFqOAAAACm9HznM741.txt")
        let error = await #expect(throws: FastDFSError.self) { _ = try await client.download(id, storage: closed) }
        #expect(error?.code == .connectFailed)
        #expect(error?.errno == LinuxErrno.ECONNREFUSED)
        #expect(error?.server == closed)
        await client.shutdown()
    }
}
