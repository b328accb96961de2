// Tracker queries (101–107) and cluster listings (90–92).

import FastDFSProtocol
import NIOCore

extension FastDFSClient {
    /// Where to upload: QUERY_STORE_WITHOUT_GROUP_ONE (101), or WITH_GROUP_ONE (104) for a group.
    public func queryStore(group: String? = nil) async throws(FastDFSError) -> QueryStoreResponse {
        if let group { try Self.validateGroup(group) }
        let req = QueryStoreRequest(group: group)
        return try await withTracker(command: req.command) { (conn) async throws(FastDFSError) -> QueryStoreResponse in
            let body = try await request(req, on: conn)
            let reply = try decode(body, command: req.command, server: conn.address) { (b) throws(FDFSProtocolError) in
                try QueryStoreResponse.decode(body: &b)
            }
            learnIPWidth(reply.ipWidth)
            return reply
        }
    }

    /// Every writable storage: QUERY_STORE_*_ALL (106/107).
    public func queryStoreAll(group: String? = nil) async throws(FastDFSError) -> QueryStoreAllResponse {
        if let group { try Self.validateGroup(group) }
        let req = QueryStoreAllRequest(group: group)
        let hint = learnedIPWidth.load(ordering: .relaxed)
        return try await withTracker(command: req.command) { (conn) async throws(FastDFSError) -> QueryStoreAllResponse in
            let body = try await request(req, on: conn)
            return try decode(body, command: req.command, server: conn.address) { (b) throws(FDFSProtocolError) in
                try QueryStoreAllResponse.decode(body: &b, ipWidthHint: hint == 0 ? nil : hint)
            }
        }
    }

    /// A storage to read `fileID` from: QUERY_FETCH_ONE (102).
    public func queryFetch(_ fileID: FileID) async throws(FastDFSError) -> StorageAddress {
        try await queryFetchOrUpdate(fileID, kind: .fetchOne)
    }

    /// The storage to change `fileID` on (its source when available): QUERY_UPDATE (103).
    public func queryUpdate(_ fileID: FileID) async throws(FastDFSError) -> StorageAddress {
        try await queryFetchOrUpdate(fileID, kind: .update)
    }

    private func queryFetchOrUpdate(_ fileID: FileID, kind: QueryFetchKind) async throws(FastDFSError) -> StorageAddress {
        let req = QueryFetchRequest(kind: kind, fileID: fileID)
        return try await withTracker(command: req.command) { (conn) async throws(FastDFSError) -> StorageAddress in
            let body = try await request(req, on: conn)
            let reply = try decode(body, command: req.command, server: conn.address) { (b) throws(FDFSProtocolError) in
                try QueryFetchResponse.decode(body: &b)
            }
            learnIPWidth(reply.ipWidth)
            return reply.server
        }
    }

    /// Every storage that has `fileID`: QUERY_FETCH_ALL (105). Both the ≤ 6.15 layout (one shared
    /// port) and the 6.16 layout (a port per server) are understood; the IP width learned from
    /// earlier query replies resolves ambiguous lengths.
    public func queryFetchAll(_ fileID: FileID) async throws(FastDFSError) -> [StorageAddress] {
        let req = QueryFetchRequest(kind: .fetchAll, fileID: fileID)
        let hint = learnedIPWidth.load(ordering: .relaxed)
        return try await withTracker(command: req.command) { (conn) async throws(FastDFSError) -> [StorageAddress] in
            let body = try await request(req, on: conn)
            let reply = try decode(body, command: req.command, server: conn.address) { (b) throws(FDFSProtocolError) in
                try QueryFetchAllResponse.decode(body: &b, ipWidthHint: hint == 0 ? nil : hint)
            }
            return reply.servers
        }
    }

    /// LIST_ALL_GROUPS (91).
    public func listGroups() async throws(FastDFSError) -> [GroupStat] {
        let req = ListGroupsRequest()
        return try await withTracker(command: req.command) { (conn) async throws(FastDFSError) -> [GroupStat] in
            let body = try await request(req, on: conn)
            return try decode(body, command: req.command, server: conn.address) { (b) throws(FDFSProtocolError) in
                try GroupStat.decodeList(body: &b)
            }
        }
    }

    /// LIST_ONE_GROUP (90). ENOENT for an unknown group.
    public func group(_ name: String) async throws(FastDFSError) -> GroupStat {
        try Self.validateGroup(name)
        let req = ListOneGroupRequest(group: name)
        return try await withTracker(command: req.command) { (conn) async throws(FastDFSError) -> GroupStat in
            let body = try await request(req, on: conn)
            let list = try decode(body, command: req.command, server: conn.address) { (b) throws(FDFSProtocolError) in
                try GroupStat.decodeList(body: &b)
            }
            guard list.count == 1 else {
                throw .protocolViolation(
                    "expected one group record, got \(list.count)", command: req.command, server: conn.address)
            }
            return list[0]
        }
    }

    /// LIST_STORAGE (92): the storages of a group, or the one with `storageID` (its IP in IP mode).
    public func listStorages(group: String, storageID: String? = nil) async throws(FastDFSError) -> [StorageStat] {
        try Self.validateGroup(group)
        if let storageID, storageID.isEmpty || storageID.utf8.count > 15 {
            throw .invalidArgument("storage id \"\(storageID)\" must be 1–15 bytes", command: .trackerListStorage)
        }
        let req = ListStorageRequest(group: group, storageID: storageID)
        return try await withTracker(command: req.command) { (conn) async throws(FastDFSError) -> [StorageStat] in
            let body = try await request(req, on: conn)
            return try decode(body, command: req.command, server: conn.address) { (b) throws(FDFSProtocolError) in
                try StorageStat.decodeList(body: &b)
            }
        }
    }

    static func validateGroup(_ group: String) throws(FastDFSError) {
        guard !group.isEmpty, group.utf8.count <= 16 else {
            throw .invalidArgument("group name \"\(group)\" must be 1–16 bytes")
        }
    }
}
