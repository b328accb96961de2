// fdfs-devserver: command-line front end of FastDFSDevServer. Parses flags into a
// DevServerConfiguration, starts the server, prints its addresses and `ready`, and stops cleanly
// on SIGTERM/SIGINT.

import ArgumentParser
import Dispatch
import FastDFSDevServer
import FastDFSProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@main
struct DevServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fdfs-devserver",
        abstract: "A FastDFS-compatible tracker and storage servers in one process, for tests and development.",
        discussion: """
            fdfs-devserver speaks the FastDFS client protocol byte for byte like the real servers \
            (FastDFS 6.16.1 by default, or 6.11 / 5.12 layouts with --compat), so FastDFS clients, \
            SDKs and the fdfsfs mount can be tested against it without installing FastDFS.

            It is NOT a FastDFS replacement: everything runs in a single process, there are no trunk \
            files, no real clustering or heartbeats, and no HTTP server. Data lives under --data laid \
            out like a real storage (DIR/<group>/storage<n>/data/XX/YY/<name>, metadata in '<name>-m', \
            replication binlogs in DIR/<group>/storage<n>/sync), and survives restarts.

            On start it prints one line per listener, then 'ready':
              tracker 127.0.0.1:22122
              storage group1 127.0.0.1:23000
              ready
            SIGTERM or SIGINT stops it cleanly.

            Fault specs (--fault, repeatable): TARGET:ACTION[,times=N]
              TARGET: tracker | storage (all storages) | GROUP | GROUP/storageN
              ACTION: delay=MS | stall | drop-after=BYTES | refuse | reset | fail=CMD:ERRNO
              Examples:
                --fault storage:delay=200
                --fault tracker:refuse
                --fault group1/storage2:stall
                --fault storage:fail=UPLOAD_FILE:ENOSPC,times=1
                --fault storage:drop-after=65536
            Scripts: start it with --tracker-port 0 --storage-port 0, read lines until 'ready', and use the printed addresses (scripts/devserver.sh does exactly this).
            """,
        version: "fdfs-devserver \(FDFSPackageVersion.string)")

    @Option(name: .long, help: "Data directory (created if missing).")
    var data: String

    @Option(name: .customLong("tracker-port"), help: "Tracker port; 0 picks a free port.")
    var trackerPort: Int = 22122

    @Option(
        name: .customLong("storage-port"),
        help: "First storage port; further storages use the following ports. 0 gives each a free port.")
    var storagePort: Int = 23000

    @Option(name: .long, help: "Number of groups (group1, group2, ...).")
    var groups: Int = 1

    @Option(name: .customLong("storages-per-group"), help: "Storage servers per group (each with its own port).")
    var storagesPerGroup: Int = 1

    @Option(
        name: .customLong("replication-lag"),
        help: "Seconds before an operation reaches the other storages of the group (fetch-all lists a replica only once it has the file).")
    var replicationLag: Double = 0

    @Option(name: .long, help: "IPv4 address to listen on; the tracker hands it out and file ids embed it.")
    var listen: String = "127.0.0.1"

    @Option(
        name: .customLong("reserved-space"),
        help: "MiB that must stay free on the data filesystem; uploads beyond it get ENOSPC.")
    var reservedSpace: Int64 = 16

    @Option(
        name: .long,
        help: "Release to emulate: 6.16 (default; 6.16.1), 6.11 (45-byte IP fields, 642-byte storage stats), 5 (5.12: 105/612-byte stats, old fetch-all and download edge cases, no command 38).")
    var compat: String = "6.16"

    @Option(name: .long, help: "Inject a fault (repeatable); syntax above.")
    var fault: [String] = []

    func validate() throws {
        guard CompatLevel(parsing: compat) != nil else {
            throw ValidationError("--compat must be 5, 6.11 or 6.16 (got \(compat))")
        }
        for spec in fault {
            do { _ = try Fault(parsing: spec) } catch { throw ValidationError(error.description) }
        }
    }

    func run() async throws {
        var faults: [Fault] = []
        for spec in fault { faults.append(try Fault(parsing: spec)) }
        let config = DevServerConfiguration(
            dataDirectory: data, listenHost: listen, trackerPort: trackerPort, storagePort: storagePort,
            groups: groups, storagesPerGroup: storagesPerGroup, replicationLag: replicationLag,
            reservedSpaceMB: reservedSpace, compat: CompatLevel(parsing: compat)!, faults: faults)
        let server: DevServer
        do {
            server = try DevServer(configuration: config)
            try await server.start()
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

