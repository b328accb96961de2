// Command tree, global options, and error → exit status mapping.

import ArgumentParser
import FastDFS
import Logging
import Foundation

enum CLI {
    static func run(_ arguments: [String]) async -> Int32 {
        var command: any ParsableCommand
        do {
            command = try Fdfs.parseAsRoot(arguments)
        } catch {
            let code = Fdfs.exitCode(for: error)
            let message = Fdfs.fullMessage(for: error)
            if code == .success {
                Fdfs.exit(withError: error)  // --help, --version: prints and exits 0
            }
            // ArgumentParser reads "-5" as an option; say what is really wrong.
            if let negative = arguments.first(where: isNegativeNumber) {
                printError("\(negative): sizes, offsets and lengths must not be negative")
                return 2
            }
            printError(message.hasPrefix("Error: ") ? String(message.dropFirst("Error: ".count)) : message)
            return 2
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return 0
        } catch let error as FastDFSError {
            printError(describe(error))
            return 1
        } catch let error as UsageError {
            printError(error.message)
            return 2
        } catch let error as ValidationError {
            printError(error.message)
            return 2
        } catch let error as ExitCode {
            return error.rawValue
        } catch {
            let code = Fdfs.exitCode(for: error)
            if code == .success { Fdfs.exit(withError: error) }
            printError(Fdfs.fullMessage(for: error))
            return code == .validationFailure ? 2 : 1
        }
    }

    /// The error's one line, with the errno's name appended when the line doesn't already name
    /// it (connect failures, timeouts, local checks, local I/O): `... failed: connect failed:
    /// Connection refused (ECONNREFUSED)`.
    static func describe(_ error: FastDFSError) -> String {
        let line = error.description
        let numbered = FDFSErrno(code: error.errno)
        guard let name = (error.status ?? numbered)?.name else { return line }
        return line.contains(name) ? line : "\(line) (\(name))"
    }

    static func isNegativeNumber(_ argument: String) -> Bool {
        argument.count > 1 && argument.first == "-" && argument.dropFirst().allSatisfy(\.isNumber)
    }

    static func printError(_ message: String) {
        let line = message.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? message
        FileHandle.standardError.write(Data("fdfs: \(line)\n".utf8))
        // Usage hints (ArgumentParser's extra lines) go after the one error line.
        let rest = message.split(separator: "\n", omittingEmptySubsequences: false).dropFirst()
        if !rest.isEmpty {
            FileHandle.standardError.write(Data((rest.joined(separator: "\n") + "\n").utf8))
        }
    }
}

/// A bad argument value found after parsing (exit status 2).
struct UsageError: Error {
    var message: String
}

struct Fdfs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fdfs",
        abstract: "FastDFS command-line client.",
        discussion: """
            Global options (before or after the command):
              --conf FILE          client.conf (default /etc/fdfs/client.conf)
              --tracker HOST:PORT  tracker to use instead of the conf's (repeatable)
              --json               print the full result as one JSON object

            Exit status: 0 success, 1 operation failed, 2 usage error.
            """,
        version: "fdfs \(FDFSPackageVersion.string)",
        subcommands: [
            Upload.self, UploadSlave.self, Download.self, Delete.self, Append.self, Modify.self, Truncate.self,
            Regenerate.self, Info.self, Meta.self, Groups.self, Servers.self,
        ]
    )
}

struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("client.conf to read (default /etc/fdfs/client.conf).", valueName: "file"))
    var conf: String?

    @Option(name: .long, help: ArgumentHelp("Tracker to use, overriding the conf's tracker_server (repeatable).", valueName: "host:port"))
    var tracker: [String] = []

    @Flag(name: .long, help: "Print the full result as one JSON object.")
    var json = false

    @Flag(name: .long, help: "Log every FastDFS request (command, server, duration) to standard error; twice: connects too.")
    var verbose: Int

    static let defaultConf = "/etc/fdfs/client.conf"

    /// Moves global options found anywhere (e.g. before the command name) to the end of the
    /// argument list (before a `--` terminator), where every subcommand accepts them.
    static func liftGlobalOptions(_ args: [String]) -> [String] {
        var rest: [String] = []
        var globals: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            if a == "--" {
                rest.append(contentsOf: args[i...])
                break
            }
            if a == "--json" || a == "--verbose" || a.hasPrefix("--conf=") || a.hasPrefix("--tracker=") {
                globals.append(a)
            } else if (a == "--conf" || a == "--tracker") && i + 1 < args.count {
                globals.append(a)
                globals.append(args[i + 1])
                i += 1
            } else {
                rest.append(a)
            }
            i += 1
        }
        if let dash = rest.firstIndex(of: "--") {
            rest.insert(contentsOf: globals, at: dash)
            return rest
        }
        return rest + globals
    }

    /// Reads the configuration (conf file, and/or --tracker) and makes a client.
    func makeClient() throws -> FastDFSClient {
        var configuration: FastDFSConfiguration
        if let conf {
            // With --tracker the conf may leave tracker_server out (its other settings still apply).
            configuration = try FastDFSConfiguration.load(path: conf, requireTrackers: tracker.isEmpty)
        } else if tracker.isEmpty {
            do {
                configuration = try FastDFSConfiguration.load(path: Self.defaultConf)
            } catch {
                var e = error
                e.message += " (use --conf FILE or --tracker HOST:PORT)"
                throw e
            }
        } else {
            configuration = FastDFSConfiguration(trackers: [])
        }
        if !tracker.isEmpty {
            configuration.trackers = try tracker.map { spec in
                guard let address = FastDFSConfiguration.parseAddress(spec, defaultPort: 22122) else {
                    throw UsageError(message: "--tracker \"\(spec)\": expected HOST:PORT")
                }
                return address
            }
        }
        configuration.useConnectionPool = true  // one process, several requests: keep connections
        return FastDFSClient(configuration: configuration, logger: logger)
    }

    /// Silent unless --verbose: then the client's debug records (trace with --verbose twice) on stderr.
    var logger: Logger {
        guard verbose > 0 else { return Logger(label: "fdfs", factory: { _ in SwiftLogNoOpLogHandler() }) }
        var logger = Logger(label: "fdfs", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = verbose > 1 ? .trace : .debug
        return logger
    }
}
