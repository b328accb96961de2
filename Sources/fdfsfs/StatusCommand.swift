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
            // What recovery will find: the recorded map plus the writes logged after it (a
            // daemon killed between two records).
            var state = r.state
            if let file = state.stagingFile {
                let u = StagingFile.unrecordedWrites(stagingPath: file, generation: state.logGeneration ?? 0)
                _ = state.adoptUnrecorded(logged: u.logged, extents: u.extents, stagingSize: u.size)
            }
            var line = "\(r.status)\t\(r.path)\tinode \(r.ino)\tsize \(state.size)\tstaged \(state.dirty.byteCount)"
            if let id = r.state.fileID ?? r.state.committedID { line += "\tfile \(id)" }
            if let e = r.lastError { line += "\terror: \(e)" }
            print(line)
        }
        return 0
    }
}
