import Logging
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import FDFSObservability

@Suite("Log lines")
struct LogLineHandlerTests {
    @Test func controlCharactersInAMessageStayOnOneLine() {
        #expect(LogLineHandler.escaped("plain name.jpg") == "plain name.jpg")
        #expect(LogLineHandler.escaped("refused bad\nname\r\t\u{1}x") == "refused bad\\nname\\r\\t\\x01x")
        #expect(LogLineHandler.escaped("a\\b") == "a\\\\b")
        #expect(!LogLineHandler.escaped("x\ny\u{7f}").contains("\n"))
    }

    @Test func aLineIsStampLevelMessageThenSortedMetadata() {
        let line = LogLineHandler.format(level: .warning, label: nil, program: "fdfsfs", pid: 42, seconds: 1_796_256_000,
                                         message: "delete failed, will retry", metadata: ["inode": "12", "file_id": "group1/M00/00/00/a.jpg"])
        #expect(line == "2026-12-03T00:00:00Z fdfsfs[42] warning: delete failed, will retry file_id=group1/M00/00/00/a.jpg inode=12")
    }

    @Test func metadataValuesWithSpacesOrNewlinesAreQuotedAndEscaped() {
        let line = LogLineHandler.format(level: .info, label: "fdfsfs.fuse", program: "fdfsfs", pid: 1, seconds: 0,
                                         message: "m", metadata: ["path": "a b\nc", "n": .array(["1", "2"])])
        #expect(line == "1970-01-01T00:00:00Z fdfsfs[1] info fdfsfs.fuse: m n=[1,2] path=\"a b\\nc\"")
        #expect(!line.contains("\n"))
    }

    @Test func theHandlerWritesOneLinePerRecordAtOrAboveItsLevel() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        var logger = Logger(label: "fdfsfs") { LogLineHandler(label: $0, level: .info, fd: fds[1]) }
        logger[metadataKey: "inode"] = "7"
        logger.debug("not shown")
        logger.info("shown", metadata: ["bytes": "4096"])
        logger.error("two\nlines")
        close(fds[1])
        var buffer = [UInt8](repeating: 0, count: 4096)
        var text = ""
        while true {
            let n = read(fds[0], &buffer, buffer.count)
            if n <= 0 { break }
            text += String(decoding: buffer[..<n], as: UTF8.self)
        }
        let lines = text.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[0].hasSuffix("] info: shown bytes=4096 inode=7"))
        #expect(lines[1].hasSuffix("] error: two\\nlines inode=7"))
    }
}
