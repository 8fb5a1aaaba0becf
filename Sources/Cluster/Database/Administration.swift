import Foundation
import PostgresNIO

extension ClusterDatabase {
  /// Creates the database `name` on this server (the tests and the benchmark make one per run).
  /// Only plain names are taken: identifiers cannot be bound as parameters.
  public func createDatabase(named name: String) async throws {
    try Self.checkIdentifier(name)
    try await rows(PostgresQuery(unsafeSQL: "CREATE DATABASE \"\(name)\""))
  }

  /// Drops the database `name`, ending the connections still open to it.
  public func dropDatabase(named name: String) async throws {
    try Self.checkIdentifier(name)
    try await rows(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \"\(name)\" WITH (FORCE)"))
  }

  private static func checkIdentifier(_ name: String) throws {
    guard !name.isEmpty, name.count <= 63,
      name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" })
    else {
      throw ClusterError(.usage, "database name '\(name)' must be 1 to 63 lowercase letters, digits or '_'")
    }
  }
}

extension ClusterDatabase {
  /// Whether this connection runs over TLS, by the server's account of it (`pg_stat_ssl`).
  public func usesTLS() async throws -> Bool {
    let found = try await rows("SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)")
    return try found[0].decode(Bool.self)
  }
}

extension ClusterDatabase {
  /// When the server last started (`pg_postmaster_start_time()`), by its clock.
  public func serverStarted() async throws -> Date {
    let found = try await rows("SELECT extract(epoch FROM pg_postmaster_start_time())::float8")
    return Date(timeIntervalSince1970: try found[0].decode(Double.self))
  }
}
