// client.conf parsing: the C client's syntax and defaults, and errors naming file, line and key.

import Testing
@testable import FastDFS

@Suite("client.conf")
struct ConfigurationTests {
    @Test func parsesATypicalClientConf() throws {
        let text = """
            # connect timeout in seconds
            connect_timeout = 5
            network_timeout=60
            base_path = /tmp
            [ignored section]
            tracker_server = 192.168.0.197:22122
            tracker_server = 192.168.0.198
            tracker_server = [::1]:22200
            tracker_server = 10.0.0.1,172.16.0.1:22300
            log_level = info
            use_connection_pool = Yes
            connection_pool_max_idle_time = 120
            http.tracker_server_port = 80
            """
        let config = try FastDFSConfiguration.parse(text, path: "/etc/fdfs/client.conf")
        #expect(
            config.trackers == [
                StorageAddress(host: "192.168.0.197", port: 22122),
                StorageAddress(host: "192.168.0.198", port: 22122),
                StorageAddress(host: "::1", port: 22200),
                StorageAddress(host: "10.0.0.1", port: 22300),
            ])
        #expect(config.connectTimeout == .seconds(5))
        #expect(config.networkTimeout == .seconds(60))
        #expect(config.useConnectionPool)
        #expect(config.connectionPoolMaxIdleTime == .seconds(120))
        #expect(!config.useStorageID)
    }

    @Test func defaultsFollowTheCClient() throws {
        let config = try FastDFSConfiguration.parse("tracker_server=127.0.0.1:22122", path: "c.conf")
        #expect(config.connectTimeout == .seconds(10))
        #expect(config.networkTimeout == .seconds(30))
        #expect(!config.useConnectionPool)  // client.conf default
        #expect(config.connectionPoolMaxIdleTime == .seconds(3600))
        #expect(FastDFSConfiguration(trackers: []).useConnectionPool)  // library default
    }

    @Test(arguments: [("true", true), ("YES", true), ("on", true), ("1", true), ("false", false), ("2", false), ("", false)])
    func booleans(value: String, expected: Bool) throws {
        let config = try FastDFSConfiguration.parse(
            "tracker_server=h:1\nuse_connection_pool = \(value)", path: "c.conf")
        #expect(config.useConnectionPool == expected)
    }

    @Test func includeIsRelativeToTheIncludingFile() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        _ = try dir.write("common/trackers.conf", "tracker_server = 10.1.1.1:22122\nnetwork_timeout = 7\n")
        let main = try dir.write("client.conf", "#include common/trackers.conf\nconnect_timeout = 3\n")
        let config = try FastDFSConfiguration.load(path: main)
        #expect(config.trackers == [StorageAddress(host: "10.1.1.1", port: 22122)])
        #expect(config.networkTimeout == .seconds(7))
        #expect(config.connectTimeout == .seconds(3))
    }

    @Test func storageIDsFileIsRelativeToTheConfDirectory() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        _ = try dir.write("storage_ids.conf", """
            # <id> <group_name> <ip_or_hostname[:port]>
            100001   group1  192.168.0.196
            100002   group1  192.168.0.197:23001
            """)
        let main = try dir.write(
            "client.conf", "tracker_server=127.0.0.1\nuse_storage_id = true\nstorage_ids_filename = storage_ids.conf\n")
        let config = try FastDFSConfiguration.load(path: main)
        #expect(config.useStorageID)
        #expect(config.storageIDs[100001] == StorageAddress(host: "192.168.0.196", port: 23000))
        #expect(config.storageIDs[100002] == StorageAddress(host: "192.168.0.197", port: 23001))
        #expect(config.storageIDGroups[100002] == "group1")
    }

    @Test func badPortNamesFileLineAndKey() {
        let error = #expect(throws: FastDFSError.self) {
            try FastDFSConfiguration.parse("# x\n\ntracker_server = 127.0.0.1:99999\n", path: "/etc/fdfs/client.conf")
        }
        #expect(error?.code == .configuration)
        #expect(error?.message.hasPrefix("/etc/fdfs/client.conf:3: key tracker_server: invalid port") == true)
        #expect(error?.errno == LinuxErrno.EINVAL)
    }

    @Test func badNumberNamesFileLineAndKey() {
        let error = #expect(throws: FastDFSError.self) {
            try FastDFSConfiguration.parse("tracker_server=a:1\nnetwork_timeout = soon\n", path: "c.conf")
        }
        #expect(error?.description == "c.conf:2: key network_timeout: expected a whole number of seconds, got \"soon\"")
    }

    @Test func errorInAnIncludedFileNamesThatFile() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let inc = try dir.write("inc.conf", "\nconnect_timeout = x\n")
        let main = try dir.write("client.conf", "tracker_server=h:1\n#include inc.conf\n")
        let error = #expect(throws: FastDFSError.self) { try FastDFSConfiguration.load(path: main) }
        #expect(error?.message.hasPrefix("\(inc):2: key connect_timeout:") == true)
    }

    @Test func missingIncludeNamesTheIncludingLine() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let main = try dir.write("client.conf", "tracker_server=h:1\n\n#include nope.conf\n")
        let error = #expect(throws: FastDFSError.self) { try FastDFSConfiguration.load(path: main) }
        #expect(error?.message.hasPrefix("\(main):3: cannot read configuration file \(dir.path("nope.conf"))") == true)
        #expect(error?.errno == LinuxErrno.ENOENT)
    }

    @Test func includeLoopIsReported() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let main = try dir.write("client.conf", "tracker_server=h:1\n#include client.conf\n")
        let error = #expect(throws: FastDFSError.self) { try FastDFSConfiguration.load(path: main) }
        #expect(error?.message.contains("nested more than") == true)
    }

    @Test func missingTrackerIsAnError() {
        let error = #expect(throws: FastDFSError.self) {
            try FastDFSConfiguration.parse("connect_timeout=2\n", path: "c.conf")
        }
        #expect(error?.message.contains("key tracker_server: missing") == true)
    }

    @Test func missingTrackerIsAcceptedWhenTheCallerSetsTrackers() throws {
        let config = try FastDFSConfiguration.parse("connect_timeout=2\n", path: "c.conf", requireTrackers: false)
        #expect(config.trackers.isEmpty && config.connectTimeout == .seconds(2))
    }

    @Test func lineWithoutEqualsIsAnError() {
        let error = #expect(throws: FastDFSError.self) {
            try FastDFSConfiguration.parse("tracker_server=h:1\nthis is wrong\n", path: "c.conf")
        }
        #expect(error?.message == "c.conf:2: expected \"key = value\", got \"this is wrong\"")
    }

    @Test func useStorageIDWithoutFilenameIsAnError() {
        let error = #expect(throws: FastDFSError.self) {
            try FastDFSConfiguration.parse("tracker_server=h:1\nuse_storage_id=true\n", path: "c.conf")
        }
        #expect(error?.message == "c.conf:2: key storage_ids_filename: use_storage_id is true but storage_ids_filename is not set")
    }

    @Test func badStorageIDLine() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let ids = try dir.write("ids.conf", "100001 group1 10.0.0.1\nabc group1 10.0.0.2\n")
        let main = try dir.write("client.conf", "tracker_server=h:1\nuse_storage_id=1\nstorage_ids_filename=ids.conf\n")
        let error = #expect(throws: FastDFSError.self) { try FastDFSConfiguration.load(path: main) }
        #expect(error?.message.hasPrefix("\(ids):2: storage id \"abc\"") == true)
    }

    @Test func missingFile() {
        let error = #expect(throws: FastDFSError.self) { try FastDFSConfiguration.load(path: "/nonexistent/client.conf") }
        #expect(error?.errno == LinuxErrno.ENOENT)
        #expect(error?.message == "cannot read configuration file /nonexistent/client.conf: No such file or directory")
    }

    @Test func moreThanSixteenTrackers() {
        let text = (1...17).map { "tracker_server = 10.0.0.\($0):22122" }.joined(separator: "\n")
        let error = #expect(throws: FastDFSError.self) { try FastDFSConfiguration.parse(text, path: "c.conf") }
        #expect(error?.message.hasPrefix("c.conf:17: key tracker_server: more than 16") == true)
    }
}
