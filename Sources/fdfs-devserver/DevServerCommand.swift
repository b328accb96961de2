// fdfs-devserver: command-line front end of FastDFSDevServer. Parses flags into a
// DevServerConfiguration, starts the server, prints its addresses and `ready`, and stops cleanly
// on SIGTERM/SIGINT. `fdfs-devserver control PATH COMMAND...` talks to a running one.

import ArgumentParser
import Dispatch
import FastDFSDevServer
import FastDFSProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

@main
struct DevServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fdfs-devserver",
        abstract: "A FastDFS-compatible tracker and storage servers in one process, for tests and development.",
        discussion: """
            fdfs-devserver speaks the FastDFS client protocol byte for byte like the real servers \
            (FastDFS 6.16.1 by default, or 6.11 / 5.12 layouts with --compat), so FastDFS clients, \
            SDKs and the fdfsfs mount can be tested against it without installing FastDFS.

            It behaves like a real cluster where the copies of a group differ, and is never kinder: \
            the tracker picks servers like tracker_mem.c (the source named in the file id, round \
            robin, the replicas' sync timestamps), so a lagging replica or a stale answer is handed \
            out when a real tracker would hand it out; replication sends each append, modify and \
            truncate with its offset and the other storages apply it only where their copy agrees, \
            so copies that diverged stay different; a stopped storage is OFFLINE, a restarted one \
            ACTIVE at once but synced only after --sync-resume-delay.

            It is NOT a FastDFS replacement: everything runs in a single process, there is no real \
            clustering (no heartbeats between processes, no leader election, no new storage joining \
            a group) and no HTTP server. Data lives under --data laid out like a real storage \
            (DIR/<group>/storage<n>/data/XX/YY/<name>, metadata in '<name>-m', trunk files \
            data/XX/YY/000001 with --trunk, binlogs in DIR/<group>/storage<n>/sync), and survives \
            restarts.

            Addresses: with --listen 127.0.0.1 (the default) the tracker listens there and every \
            storage gets its own loopback address, 127.0.0.2, 127.0.0.3, ... in group then index \
            order, so the source IP in a file id names one storage as on a real cluster; \
            --storage-port N then gives every storage port N (0: a free port each). With any other \
            --listen address all storages share it on consecutive ports, and the source of a file \
            cannot be told apart from its id unless --storage-ids is used. (Linux routes all of \
            127.0.0.0/8 to the loopback interface; elsewhere add the addresses as loopback aliases \
            or use another --listen address.)

            On start it prints one line per listener, then 'ready':
              tracker 127.0.0.1:22122
              storage group1 127.0.0.2:23000
              storage group1 127.0.0.3:23000
              storage-id 100001 group1 127.0.0.2:23000   (--storage-ids only)
              ready
            SIGTERM or SIGINT stops it cleanly.

            Storage ids: --storage-ids is tracker.conf use_storage_id = true with \
            id_type_in_filename = id: storages get ids 100001, 100002, ... and new file ids carry \
            them. --write-storage-ids FILE writes the storage_ids.conf a client needs \
            (client.conf: use_storage_id = true, storage_ids_filename = FILE); clients with \
            load_fdfs_parameters_from_tracker = true fetch it from the tracker instead.

            Trunk files: --trunk is use_trunk_file = true with the shipped tracker.conf values \
            (slot_min_size 256, slot_max_size 1 MB, trunk_alloc_alignment_size 256, trunk_file_size \
            64 MB): uploads up to 1 MB minus the 24-byte slot header get 60-character trunk names \
            and are packed into trunk files; appender files never are. storage1 of each group is the \
            trunk server: while it is down, small uploads to the group fail with EAGAIN.

            Fault specs (--fault, repeatable): TARGET:ACTION[,times=N]
              TARGET: tracker | storage (all storages) | GROUP | GROUP/storageN
              ACTION: delay=MS | stall | drop-after=BYTES | refuse | reset | fail=CMD:ERRNO
              Examples:
                --fault storage:delay=200
                --fault tracker:refuse
                --fault group1/storage2:stall
                --fault storage:fail=UPLOAD_FILE:ENOSPC,times=1
                --fault storage:drop-after=65536

            Control (--control PATH): the server listens on a unix socket for one-line commands; \
            send them with 'fdfs-devserver control PATH COMMAND...' (exit 0 and the output on \
            success, non-zero and a message on failure):
              stop-storage GROUP/storageN [--crash]   (--crash: still listed ACTIVE)
              start-storage GROUP/storageN | restart-storage GROUP/storageN
              stop-tracker | start-tracker
              fault SPEC (prints a handle) | clear-fault HANDLE | clear-faults
              wait-replication [TIMEOUT_S]   (until every peer applied every record)
              status   (ID ADDRESS STATUS running|stopped pending=PEER:BYTES,...)
            Scripts: start it with --tracker-port 0 --storage-port 0, read lines until 'ready', and use \
            the printed addresses (scripts/devserver.sh does exactly this; 'scripts/devserver.sh ctl \
            DATA_DIR COMMAND...' sends control commands to a server it started).
            """,
        version: "fdfs-devserver \(FDFSPackageVersion.string)",
        subcommands: [ControlCommand.self])

    @Option(name: .long, help: "Data directory (required; created if missing).")
    var data: String?

    @Option(name: .customLong("tracker-port"), help: "Tracker port; 0 picks a free port.")
    var trackerPort: Int = 22122

    @Option(
        name: .customLong("storage-port"),
        help: "Storage port: every storage's (each has its own address) or the first of consecutive ports (shared --listen address). 0 gives each a free port.")
    var storagePort: Int = 23000

    @Option(name: .long, help: "Number of groups (group1, group2, ...).")
    var groups: Int = 1

    @Option(name: .customLong("storages-per-group"), help: "Storage servers per group (each with its own address or port).")
    var storagesPerGroup: Int = 1

    @Option(
        name: .customLong("replication-lag"),
        help: "Seconds before an operation reaches the other storages of the group.")
    var replicationLag: Double = 0

    @Option(
        name: .customLong("sync-resume-delay"),
        help: "Seconds after a storage is started again before replication to and from it resumes (the real heartbeat interval).")
    var syncResumeDelay: Double = 30

    @Option(
        name: .long,
        help: "Tracker address (IPv4). 127.0.0.1 gives every storage its own loopback address; any other address is shared by all storages.")
    var listen: String = "127.0.0.1"

    @Option(
        name: .customLong("reserved-space"),
        help: "MiB that must stay free on the data filesystem; uploads beyond it get ENOSPC.")
    var reservedSpace: Int64 = 16

    @Option(
        name: .long,
        help: "Release to emulate: 6.16 (default; 6.16.1), 6.11 (45-byte IP fields, 642-byte storage stats), 5 (5.12: 105/612-byte stats, old fetch-all and download edge cases, no command 38).")
    var compat: String = "6.16"

    @Flag(name: .customLong("storage-ids"), help: "Numeric storage ids (use_storage_id = true, id_type_in_filename = id).")
    var storageIDs = false

    @Option(
        name: .customLong("write-storage-ids"),
        help: "With --storage-ids: write a storage_ids.conf for clients to this file once listening.")
    var writeStorageIDs: String?

    @Flag(name: .long, help: "Trunk files for small uploads (use_trunk_file = true).")
    var trunk = false

    @Option(name: .long, help: "Listen for control commands on this unix socket path.")
    var control: String?

    @Option(name: .long, help: "Inject a fault (repeatable); syntax above.")
    var fault: [String] = []

    func validate() throws {
        // (--data is checked in run(): validate() also runs when the control subcommand is used.)
        guard CompatLevel(parsing: compat) != nil else {
            throw ValidationError("--compat must be 5, 6.11 or 6.16 (got \(compat))")
        }
        if writeStorageIDs != nil && !storageIDs {
            throw ValidationError("--write-storage-ids needs --storage-ids")
        }
        for spec in fault {
            do { _ = try Fault(parsing: spec) } catch { throw ValidationError(error.description) }
        }
    }

    func run() async throws {
        guard let data else { throw ValidationError("Missing expected argument '--data <data>'") }
        var faults: [Fault] = []
        for spec in fault { faults.append(try Fault(parsing: spec)) }
        let config = DevServerConfiguration(
            dataDirectory: data, listenHost: listen, trackerPort: trackerPort, storagePort: storagePort,
            groups: groups, storagesPerGroup: storagesPerGroup, replicationLag: replicationLag,
            reservedSpaceMB: reservedSpace, compat: CompatLevel(parsing: compat)!, faults: faults,
            syncResumeDelay: syncResumeDelay, useStorageIDs: storageIDs, trunk: trunk ? TrunkParameters() : nil)
        let server: DevServer
        do {
            server = try DevServer(configuration: config)
            try await server.start()
            if let control { try await server.startControlSocket(path: control) }
            if let writeStorageIDs { try writeFile(writeStorageIDs, server.storageIDsFile) }
        } catch {
            printError("fdfs-devserver: \(error)")
            throw ExitCode(1)
        }
        for line in server.addressLines { emit(line) }
        emit("ready")

        await waitForTerminationSignal()
        await server.stop()
        emit("stopped")
    }
}

/// `fdfs-devserver control PATH COMMAND...`
struct ControlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "control",
        abstract: "Send one command to a running fdfs-devserver started with --control PATH.",
        discussion: """
            Commands: stop-storage GROUP/storageN [--crash], start-storage GROUP/storageN, \
            restart-storage GROUP/storageN, stop-tracker, start-tracker, fault SPEC, clear-fault \
            HANDLE, clear-faults, wait-replication [TIMEOUT_S], status, help. Prints the output and \
            exits 0, or prints the error on stderr and exits 1.
            """)

    @Argument(help: "The control socket (--control PATH of the server).")
    var path: String

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.")
    var command: [String] = []

    func run() async throws {
        guard !command.isEmpty else {
            printError("fdfs-devserver control: no command (try: help)")
            throw ExitCode(2)
        }
        let reply: ControlReply
        do {
            reply = try await DevServerControl.send(path: path, command: command.joined(separator: " "))
        } catch {
            printError("fdfs-devserver control: cannot reach \(path): \(error)")
            throw ExitCode(1)
        }
        if reply.ok {
            for line in reply.lines { emit(line) }
        } else {
            printError("fdfs-devserver control: \(command.joined(separator: " ")): \(reply.lines.joined(separator: " "))")
            throw ExitCode(1)
        }
    }
}

/// Writes `text` to `path` (replacing it).
func writeFile(_ path: String, _ text: String) throws {
    do {
        let fd = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .truncate, .closeOnExec],
                                         permissions: [.ownerReadWrite, .groupRead, .otherRead])
        try fd.closeAfter { _ = try fd.writeAll(Array(text.utf8)) }
    } catch {
        throw DevServerError.io("cannot write \(path): \(error)")
    }
}

func printError(_ message: String) { writeLine(message, to: 2) }

/// Writes a line to stdout unbuffered, so a script waiting for `ready` sees it at once.
func emit(_ message: String) { writeLine(message, to: 1) }

func writeLine(_ message: String, to fd: Int32) {
    var line = message + "\n"
    line.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
}

/// Suspends until SIGTERM or SIGINT arrives.
func waitForTerminationSignal() async {
    signal(SIGTERM, SIG_IGN)
    signal(SIGINT, SIG_IGN)
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let queue = DispatchQueue(label: "fdfs-devserver.signals")
        let fired = SignalLatch(continuation)
        queue.async {
            for sig in [SIGTERM, SIGINT] {
                let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
                source.setEventHandler { fired.fire() }
                source.resume()
                fired.keep(source)
            }
        }
    }
}

/// Resumes the continuation once; keeps the signal sources alive. Invariant: after init, every
/// access (setup and event handlers) happens on the one serial signal queue, hence unchecked Sendable.
final class SignalLatch: @unchecked Sendable {
    private var continuation: CheckedContinuation<Void, Never>?
    private var sources: [any DispatchSourceSignal] = []
    init(_ c: CheckedContinuation<Void, Never>) { continuation = c }
    func keep(_ s: any DispatchSourceSignal) { sources.append(s) }
    func fire() {
        continuation?.resume()
        continuation = nil
    }
}
