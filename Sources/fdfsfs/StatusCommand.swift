#if canImport(Glibc)
import Glibc
#endif
import FDFSFileSystem

/// `fdfsfs status STATE_DIR`: lists files with staged writes (pending: being written or waiting
/// for their next retry; failed: the last attempt failed, with its error). Exit status 0 when the
/// state directory could be read (whatever it lists), 2 otherwise.
enum StatusCommand {
    static func run(stateDir: String) -> Int32 {
        let records: [StagedFileRecord]
        do { records = try NamingStore.stagedFiles(stateDir: stateDir) } catch {
            fputsErr("fdfsfs status: \(error.message)\n")
            return 2
        }
        if records.isEmpty {
            print("no staged writes in \(stateDir): everything written is on the cluster")
            return 0
        }
        print("\(records.count) file(s) with staged writes in \(stateDir):")
        for r in records {
            var line = "\(r.status)\t\(r.path)\tinode \(r.ino)\tsize \(r.state.size)\tstaged \(r.state.dirty.byteCount)"
            if let id = r.state.fileID ?? r.state.committedID { line += "\tfile \(id)" }
            if let e = r.lastError { line += "\terror: \(e)" }
            print(line)
        }
        return 0
    }
}
