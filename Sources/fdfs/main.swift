// fdfs — command-line client for FastDFS, built on the FastDFS library.
//
//   fdfs [--conf FILE | --tracker HOST:PORT ...] [--json] COMMAND ...
//
// Global options may appear before or after the command name: they are lifted out of the
// argument list here and handed to every subcommand's `GlobalOptions` group. Exit status: 0 on
// success, 1 when an operation fails (one line on stderr: `fdfs: <what failed> (ERRNO)`), 2 for
// usage errors.
//
// Design: one swift-argument-parser command per subcommand, thin over the `FastDFS` library —
//   CLI.swift               command tree, global options, client set-up, error → exit status
//   TransferCommands.swift  upload, upload-slave, download, append, modify (content moves)
//   FileCommands.swift      delete, truncate, regenerate, info, meta get/set
//   ClusterCommands.swift   groups, servers
//   Support.swift           argument checks, JSON/table output, progress bar, local files
// Content is streamed, never held whole: uploads from a path use the library's streaming
// file variants (or a chunk sequence read on NIO's thread pool when a progress bar is drawn);
// `-` (stdin) is spooled to a temporary file first because the protocol needs the size up
// front; downloads are written chunk by chunk with NonBlockingFileIO. Nothing blocks the
// cooperative thread pool.

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
