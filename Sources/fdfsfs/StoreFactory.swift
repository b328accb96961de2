import FDFSFileSystem
import FastDFS
import FuseTypes
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The FastDFS-backed store for SOURCE (client.conf path or HOST:PORT list, or conf=).
func makeFastDFSStore(_ command: MountCommand, logger: Logger) async throws(FSError) -> any FileStore {
    var config = try FastDFSFileStore.configuration(source: command.source, conf: command.conf, connectTimeout: command.connectTimeout)
    if let t = command.networkTimeout { config.networkTimeout = .milliseconds(Int64(t * 1000)) }
    logger.info("trackers", metadata: ["trackers": "\(config.trackers.map(\.description).joined(separator: ","))"])
    var clientLogger = logger
    clientLogger[metadataKey: "component"] = "fastdfs"
    return FastDFSFileStore(client: FastDFSClient(configuration: config, logger: clientLogger))
}

func shutdownStore(_ store: any FileStore) async {
    if let s = store as? FastDFSFileStore { await s.shutdown() }
}
