import Foundation
import FuseTypes
#if canImport(Glibc)
import Glibc
#endif

/// Where the named tree lives (`-o meta=URL`): `sqlite:PATH` (the default, one mount) or
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=disable|require&namespace=NAME]`
/// (a tree shared by several mounts). The password may also come from `-o meta_password_file=`
/// or `PGPASSWORD`; `redacted` is what logs and error messages show (never the password).
public enum MetaURL: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(PostgresTarget)

    public struct PostgresTarget: Sendable, Equatable {
        public var user: String
        public var password: String?
        public var host: String
        public var port: Int
        public var database: String
        public var requireTLS: Bool
        public var namespace: String

        public init(user: String, password: String?, host: String, port: Int, database: String, requireTLS: Bool, namespace: String) {
            self.user = user; self.password = password; self.host = host; self.port = port
            self.database = database; self.requireTLS = requireTLS; self.namespace = namespace
        }

        /// The SQL schema of the namespace.
        public var schema: String { "fdfs_" + namespace }
        public var redacted: String {
            "postgres://\(user)@\(host):\(port)/\(database)" + (namespace == "default" ? "" : "?namespace=\(namespace)")
        }
    }

    public var redacted: String {
        switch self {
        case .sqlite(let path): return "sqlite:" + path
        case .postgres(let t): return t.redacted
        }
    }

    /// Parses `url`; `passwordFile` and `environment` (PGPASSWORD) supply a password the URL lacks.
    public static func parse(_ url: String, passwordFile: String? = nil,
                             environment: [String: String] = ProcessInfo.processInfo.environment) throws(FSError) -> MetaURL {
        if url.hasPrefix("sqlite:") {
            let path = String(url.dropFirst("sqlite:".count))
            guard !path.isEmpty else { throw FSError(EINVAL, "meta=sqlite: needs a path (meta=sqlite:/var/lib/fdfsfs/names.sqlite)") }
            return .sqlite(path: path)
        }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw FSError(EINVAL, "meta= takes sqlite:PATH or postgres://USER@HOST[:PORT]/DB (got \(Self.scrub(url)))")
        }
        guard let c = URLComponents(string: url), let host = c.host, !host.isEmpty else {
            throw FSError(EINVAL, "meta=\(Self.scrub(url)): not a postgres://USER@HOST[:PORT]/DB URL")
        }
        guard let user = c.user, !user.isEmpty else {
            throw FSError(EINVAL, "meta=\(Self.scrub(url)): name the database user (postgres://USER@HOST/DB)")
        }
        let db = String(c.path.drop(while: { $0 == "/" }))
        guard !db.isEmpty, !db.contains("/") else {
            throw FSError(EINVAL, "meta=\(Self.scrub(url)): name the database (postgres://USER@HOST/DB)")
        }
        var requireTLS = false
        var namespace = "default"
        for item in c.queryItems ?? [] {
            switch (item.name, item.value ?? "") {
            case ("sslmode", "disable"): requireTLS = false
            case ("sslmode", "require"): requireTLS = true
            case ("sslmode", let v): throw FSError(EINVAL, "meta=: sslmode=\(v) is not supported (use disable or require)")
            case ("namespace", let v):
                guard (1...40).contains(v.count), v.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }) else {
                    throw FSError(EINVAL, "meta=: namespace=\(v): use 1 to 40 of a-z, 0-9 and _")
                }
                namespace = v
            case (let k, _): throw FSError(EINVAL, "meta=: unknown parameter \(k) (known: sslmode, namespace)")
            }
        }
        var password = c.password.flatMap { $0.removingPercentEncoding ?? $0 }
        if password == nil, let passwordFile {
            guard let data = FileManager.default.contents(atPath: passwordFile) else {
                throw FSError(EACCES, "cannot read the password file \(passwordFile) (meta_password_file=)")
            }
            password = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
        }
        if password == nil { password = environment["PGPASSWORD"] }
        return .postgres(PostgresTarget(user: user.removingPercentEncoding ?? user, password: password, host: host,
                                        port: c.port ?? 5432, database: db, requireTLS: requireTLS, namespace: namespace))
    }

    /// `url` with any password replaced, for messages.
    public static func scrub(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@"), let scheme = url.range(of: "://"), scheme.upperBound < at else { return url }
        let userinfo = url[scheme.upperBound..<at]
        guard let colon = userinfo.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }
}
