import Foundation
import PostgresNIO

/// One connection to the cluster's PostgreSQL database, and the only type that runs SQL on it; the
/// named queries are in the other files of this folder. Errors come out as `ClusterError`s that say
/// which database and why.
public final class ClusterDatabase: Sendable {
  public let url: ClusterURL
  let connection: PostgresConnection

  /// PostgresNIO logs through swift-log; the cluster's own messages are what users read, so its
  /// log is kept to what it calls critical.
  static let logger: Logger = {
    var logger = Logger(label: "vmlab.cluster")
    logger.logLevel = .critical
    return logger
  }()

  private init(url: ClusterURL, connection: PostgresConnection) {
    self.url = url
    self.connection = connection
  }

  /// Connects to `url` within `timeout` seconds.
  public static func connect(_ url: ClusterURL, timeout: Double = 10) async throws -> ClusterDatabase {
    var configuration: PostgresConnection.Configuration
    switch url.endpoint {
    case .tcp(let host, let port):
      configuration = .init(
        host: host, port: port, username: url.user, password: url.password, database: url.database, tls: .disable)
    case .socket:
      configuration = .init(
        unixSocketPath: url.endpoint.socketPath!, username: url.user, password: url.password, database: url.database)
    }
    configuration.options.connectTimeout = .milliseconds(Int64(timeout * 1000))
    do {
      let connection = try await PostgresConnection.connect(
        configuration: configuration, id: Int.random(in: 1...Int.max), logger: logger)
      return ClusterDatabase(url: url, connection: connection)
    } catch {
      var why = Self.reason(error)
      if let socket = url.endpoint.socketPath { why = "socket \(socket): \(why)" }
      throw ClusterError(
        .database,
        "cannot reach the cluster database \(url): \(why); check that PostgreSQL runs there and that --cluster names it (Scripts/postgres start runs one to try cluster mode)"
      )
    }
  }

  public func close() async {
    try? await connection.close()
  }

  /// A database dropped without `close()` (a caller that threw on the way) closes its connection;
  /// the closure keeps the connection until it is closed, as PostgresNIO requires.
  deinit {
    let connection = self.connection
    guard !connection.isClosed else { return }
    connection.close().whenComplete { _ in _ = connection }
  }

  public var isClosed: Bool { connection.isClosed }

  /// Runs one statement and returns its rows.
  @discardableResult
  func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
    do {
      return try await connection.query(query, logger: Self.logger).collect()
    } catch {
      throw failure(error)
    }
  }

  /// Runs SQL text as it is, binding nothing (tests that set up a state by hand).
  func execute(_ sql: String) async throws {
    try await rows(PostgresQuery(unsafeSQL: sql))
  }

  /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
  func transaction<T: Sendable>(_ body: (ClusterDatabase) async throws -> T) async throws -> T {
    try await rows("BEGIN")
    do {
      let value = try await body(self)
      try await rows("COMMIT")
      return value
    } catch {
      _ = try? await connection.query("ROLLBACK", logger: Self.logger)
      throw error
    }
  }

  /// A PostgresNIO error as a `ClusterError`: the server's own message where it sent one.
  func failure(_ error: Error) -> Error {
    if error is ClusterError { return error }
    return ClusterError(.database, "the cluster database \(url) failed: \(Self.reason(error))")
  }

  /// Why a connection or statement failed, in the server's or the system's words.
  static func reason(_ error: Error) -> String {
    if let error = error as? PSQLError {
      if let info = error.serverInfo, let message = info[.message] {
        return message + (info[.detail].map { " (\($0))" } ?? "")
      }
      if let underlying = error.underlying { return reason(underlying) }
      switch error.code {
      case .serverClosedConnection: return "the server closed the connection"
      case .clientClosedConnection: return "the connection was closed"
      case .connectionError: return "the connection failed"
      default: return "\(error.code)"
      }
    }
    if let error = error as? IOError { return String(cString: strerror(error.errnoCode)).lowercased() }
    return String(describing: error)
  }
}
