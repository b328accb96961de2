// The private PostgreSQL of the test process: it starts, accepts password connections over TCP
// as `fdfs` (and refuses a wrong password), gives each test a database of its own, and comes
// back on the same port after a restart.

import Foundation
import PostgresTestSupport
import Testing

@Suite(.serialized) struct PrivatePostgresTests {
    @Test func startsAndAcceptsPasswordConnections() throws {
        let pg = try PrivatePostgres.shared()
        #expect(pg.host == "127.0.0.1")
        #expect(pg.url == "postgres://fdfs@127.0.0.1:\(pg.port)/fdfs?sslmode=disable")
        #expect(try pg.psql("select 1", connection: pg.connection) == "1")
        #expect(try pg.psql("select current_user || ' ' || current_database()", connection: pg.connection) == "fdfs fdfs")
        // The password file holds the password, readable by its owner only.
        let text = try String(contentsOfFile: pg.passwordFile, encoding: .utf8)
        #expect(text.trimmingCharacters(in: .whitespacesAndNewlines) == pg.password)
        let mode = try FileManager.default.attributesOfItem(atPath: pg.passwordFile)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func refusesAWrongPassword() throws {
        let pg = try PrivatePostgres.shared()
        var wrong = pg.connection
        wrong.password = "not-" + pg.password
        #expect(throws: PrivatePostgresError.self) { try pg.psql("select 1", connection: wrong) }
    }

    @Test func givesEachTestItsOwnDatabase() throws {
        let pg = try PrivatePostgres.shared()
        let a = try pg.makeDatabase(), b = try pg.makeDatabase()
        #expect(a.database != b.database)
        try pg.psql("create table t (x int); insert into t values (7)", connection: a)
        #expect(try pg.psql("select x from t", connection: a) == "7")
        #expect(throws: PrivatePostgresError.self) { try pg.psql("select x from t", connection: b) }
        #expect(try pg.psql("select pg_catalog.pg_get_userbyid(datdba) from pg_database where datname = '\(a.database)'") == "fdfs")
        try pg.dropDatabase(a.database)
        try pg.dropDatabase(b.database)
        #expect(PrivatePostgres.uniqueName() != PrivatePostgres.uniqueName())
    }

    @Test func restartsOnTheSamePort() throws {
        // A server of its own: the shared one serves other suites running at the same time.
        let pg = try PrivatePostgres.launchPrivate()
        defer { pg.shutDownAndRemove() }
        try pg.stop()
        #expect(!pg.isReady())
        #expect(throws: PrivatePostgresError.self) { try pg.psql("select 1", connection: pg.connection) }
        try pg.start()
        #expect(pg.isReady())
        #expect(try pg.psql("select 2", connection: pg.connection) == "2")
    }
}
