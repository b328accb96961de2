import FDFSFileSystem
import FDFSNamingPostgres
import FuseTypes
import PostgresTestSupport
import Testing

/// The naming engines the shared suite runs against.
enum EngineKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }
}

/// A fresh namespace name per engine, so tests are independent in one database.
func freshNamespace() -> String { "t\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)" }

func postgresTarget(namespace: String) throws -> MetaURL.PostgresTarget {
    let pg = try PrivatePostgres.shared().connection
    return MetaURL.PostgresTarget(user: pg.user, password: pg.password, host: pg.host, port: pg.port,
                                  database: pg.database, requireTLS: false, namespace: namespace)
}

/// A PostgreSQL engine as a mount would have it (schema, session, change feed).
/// A generous call deadline: the suite shares two cores with every other test (an outage test
/// sets its own short one).
func makePostgresEngine(namespace: String, sessionTTL: Int = 60, timeout: Double = 60,
                        onRemoteChange: @escaping @Sendable (RemoteChange) -> Void = { _ in }) async throws -> PostgresNamingStore {
    let e = try PostgresNamingStore(target: try postgresTarget(namespace: namespace), stagedPath: nil, timeout: timeout, sessionTTL: sessionTTL)
    try await e.start(onRemoteChange: onRemoteChange)
    return e
}

func makeEngine(_ kind: EngineKind) async throws -> any NamingEngine {
    switch kind {
    case .sqlite: return try NamingStore(path: nil)
    case .postgres: return try await makePostgresEngine(namespace: freshNamespace())
    }
}

func shutdownLater(_ e: any NamingEngine) {
    Task { await e.shutdown() }
}
