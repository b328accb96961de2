// storage_ids.conf reader (§9.1): `<id> <group> <ip_or_host>[,<second ip>][:port] [rw=...]`,
// one storage per line, `#` comments. Used to turn the numeric source id in a file id into an
// address when `use_storage_id` is on.

import FastDFSProtocol

struct StorageIDTable {
    var addresses: [UInt32: StorageAddress] = [:]
    var groups: [UInt32: String] = [:]

    static let defaultStoragePort = 23000

    static func parse(_ text: String, path: String) throws(FastDFSError) -> StorageIDTable {
        var table = StorageIDTable()
        var lineNumber = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = String(raw).trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard fields.count >= 3 else {
                throw ClientConfigParser.error(
                    "expected \"<id> <group> <ip>[:port]\", got \"\(line)\"", file: path, line: lineNumber, key: nil)
            }
            guard let id = UInt32(fields[0]), (1...16_777_215).contains(id) else {
                throw ClientConfigParser.error(
                    "storage id \"\(fields[0])\" is not a number between 1 and 16777215", file: path, line: lineNumber,
                    key: nil)
            }
            switch StorageAddress.parse(fields[2], defaultPort: defaultStoragePort) {
            case .success(let address):
                table.addresses[id] = address
                table.groups[id] = fields[1]
            case .failure(let failure):
                throw ClientConfigParser.error(failure.reason, file: path, line: lineNumber, key: nil)
            }
        }
        return table
    }
}
