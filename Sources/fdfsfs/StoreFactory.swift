import FDFSFileSystem
import FastDFS
import FuseTypes
#if canImport(Glibc)
import Glibc
#endif

/// The FastDFS-backed store for SOURCE (client.conf path or HOST:PORT list, or conf=).
func makeFastDFSStore(_ command: MountCommand) async throws(FSError) -> any FileStore {
    var config = try FastDFSFileStore.configuration(source: command.source, conf: command.conf, connectTimeout: command.connectTimeout)
    if let t = command.networkTimeout { config.networkTimeout = .milliseconds(Int64(t * 1000)) }
    Log.info("trackers: \(config.trackers.map(\.description).joined(separator: ", "))")
    return FastDFSFileStore(client: FastDFSClient(configuration: config))
}

func shutdownStore(_ store: any FileStore) async {
    if let s = store as? FastDFSFileStore { await s.shutdown() }
}
