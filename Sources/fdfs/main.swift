// fdfs — command-line client for FastDFS, built on the FastDFS library.
//
//   fdfs [--conf FILE | --tracker HOST:PORT ...] [--json] COMMAND ...
//
// Global options may appear before or after the command name: they are lifted out of the
// argument list here and handed to every subcommand's `GlobalOptions` group. Exit status: 0 on
// success, 1 when an operation fails (one line on stderr: `fdfs: <what failed>`), 2 for usage
// errors.

import ArgumentParser
import FastDFS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

let arguments = GlobalOptions.liftGlobalOptions(Array(CommandLine.arguments.dropFirst()))
let status = await CLI.run(arguments)
exit(status)
