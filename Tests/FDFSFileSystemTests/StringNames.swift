import FuseTypes
@testable import FDFSFileSystem

// Names are `FileName`s (bytes) in the filesystem API; most tests build them from Swift strings.
// These overloads keep those tests short: each converts the string's UTF-8 bytes and calls the
// byte API. Tests of names that are not UTF-8 call the `FileName` versions directly.
extension FDFSFileSystem {
    func lookup(parent: UInt64, name: String, ctx: RequestContext) async throws(FSError) -> Entry {
        try await lookup(parent: parent, name: FileName(name), ctx: ctx)
    }
    func create(parent: UInt64, name: String, mode: UInt32, flags: Int32, ctx: RequestContext) async throws(FSError) -> (Entry, Opened) {
        try await create(parent: parent, name: FileName(name), mode: mode, flags: flags, ctx: ctx)
    }
    func unlink(parent: UInt64, name: String, ctx: RequestContext) async throws(FSError) {
        try await unlink(parent: parent, name: FileName(name), ctx: ctx)
    }
    func mkdir(parent: UInt64, name: String, mode: UInt32, ctx: RequestContext) async throws(FSError) -> Entry {
        try await mkdir(parent: parent, name: FileName(name), mode: mode, ctx: ctx)
    }
}

extension NamingStore {
    func lookup(parent: Int64, name: String) async throws(FSError) -> Node? {
        try await lookup(parent: parent, name: FileName(name))
    }
    func create(parent: Int64, name: String, mode: UInt32, uid: UInt32, gid: UInt32) async throws(FSError) -> Node {
        try await create(parent: parent, name: FileName(name), mode: mode, uid: uid, gid: gid)
    }
    func remove(parent: Int64, name: String, directory: Bool) async throws(FSError) -> Node {
        try await remove(parent: parent, name: FileName(name), directory: directory)
    }
    func link(node id: Int64, parent: Int64, name: String) async throws(FSError) -> Node {
        try await link(node: id, parent: parent, name: FileName(name))
    }
    func rename(parent: Int64, name: String, newParent: Int64, newName: String, flags: UInt32) async throws(FSError) -> [Node] {
        try await rename(parent: parent, name: FileName(name), newParent: newParent, newName: FileName(newName), flags: flags)
    }
}
