#if canImport(Glibc)
import Glibc
#endif
import FDFSFileSystem
import FDFSNamingPostgres
import Foundation
import FuseTypes
import Logging

/// The naming engine `-o meta=` names: SQLite in the state directory (default), SQLite at a
/// path, or a PostgreSQL namespace shared with other mounts (connected and its schema checked
/// before the mount goes ahead, so a wrong URL or password fails the mount with a clear message).
enum NamingFactory {
    static func make(meta: String?, passwordFile: String?, stateDir: String?, mountpoint: String,
                     sessionTTL: Int, timeout: Double, logger: Logger = .silent) async throws(FSError) -> any NamingEngine {
        guard let meta else { return try NamingStore(path: (stateDir ?? ".") + "/names.sqlite") }
        switch try MetaURL.parse(meta, passwordFile: passwordFile) {
        case .sqlite(let path):
            return try NamingStore(path: path)
        case .postgres(let target):
            let engine = try PostgresNamingStore(target: target, stagedPath: stateDir.map { $0 + "/staged.sqlite" }, mountpoint: mountpoint,
                                                 timeout: timeout, sessionTTL: sessionTTL, logger: logger)
            do { try await engine.open() } catch {
                await engine.shutdown()
                throw FSError(error.errno, "cannot use the naming database \(target.redacted): \(error.message)")
            }
            return engine
        }
    }

    /// A dump's or load's source: a state directory (its names.sqlite) or a meta URL.
    static func open(source: String, passwordFile: String?) async throws(FSError) -> any NamingEngine {
        if source.hasPrefix("sqlite:") || source.contains("://") {
            return try await make(meta: source, passwordFile: passwordFile, stateDir: nil, mountpoint: "",
                                  sessionTTL: 60, timeout: 30)
        }
        var st = stat()
        guard stat(source + "/names.sqlite", &st) == 0 else {
            throw FSError(ENOENT, "\(source) is neither a state directory with names.sqlite nor a meta URL (sqlite:PATH, postgres://…)")
        }
        return try NamingStore(path: source + "/names.sqlite")
    }
}

/// `fdfsfs dump SOURCE > tree.json` and `fdfsfs load META_URL < tree.json`.
enum DumpCommand {
    static let usage = """
        usage: fdfsfs dump STATE_DIR|META_URL [--password-file PATH] > tree.json
               fdfsfs load META_URL [--password-file PATH] < tree.json
        """

    static func run(_ args: [String]) async -> Int32 {
        guard args.count == 2 || (args.count == 4 && args[2] == "--password-file") else {
            fputsErr(usage + "\n")
            return 2
        }
        let verb = args[0], source = args[1]
        let passwordFile = args.count == 4 ? args[3] : nil
        do throws(FSError) {
            if verb == "dump" {
                let engine = try await NamingFactory.open(source: source, passwordFile: passwordFile)
                defer { Task { await engine.shutdown() } }
                let dump = try await engine.dump()
                let data: Data
                do { data = try dump.json() } catch { throw FSError(EIO, "cannot encode the dump: \(error)") }
                FileHandle.standardOutput.write(data)
                FileHandle.standardOutput.write(Data("\n".utf8))
                fputsErr("fdfsfs dump: \(dump.nodes.count) nodes, \(dump.entries.count) names\n")
            } else {
                let input = FileHandle.standardInput.readDataToEndOfFile()
                let dump = try NamingDump.decode(input)
                let engine: any NamingEngine
                if source.hasPrefix("sqlite:") || source.contains("://") {
                    engine = try await NamingFactory.open(source: source, passwordFile: passwordFile)
                } else {
                    throw FSError(EINVAL, "load needs a meta URL (sqlite:PATH or postgres://USER@HOST/DB), not \(source)")
                }
                try await engine.load(dump)
                await engine.shutdown()
                fputsErr("fdfsfs load: \(dump.nodes.count) nodes, \(dump.entries.count) names loaded into \(MetaURL.scrub(source))\n")
            }
            return 0
        } catch {
            fputsErr("fdfsfs \(verb): \(error.message)\n")
            return 1
        }
    }
}
