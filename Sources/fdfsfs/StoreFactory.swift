import FDFSFileSystem
import FuseTypes
#if canImport(Glibc)
import Glibc
#endif

/// The FastDFS-backed store for SOURCE (client.conf path or HOST:PORT list).
/// Wired to FastDFSClient once the client library is merged into this branch.
func makeFastDFSStore(_ command: MountCommand) async throws(FSError) -> any FileStore {
    throw FSError(ENOSYS, "this build has no FastDFS client yet; use SOURCE memory: for a test mount")
}

func shutdownStore(_ store: any FileStore) async {}
