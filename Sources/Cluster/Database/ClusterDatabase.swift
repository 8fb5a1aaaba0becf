import Foundation
import PostgresNIO

/// One connection to the cluster's PostgreSQL database, and the only type that runs SQL on it; the
/// named queries are in the other files of this folder. Errors come out as `ClusterError`s that say
/// which database and why.
public final class ClusterDatabase: Sendable {
  public let url: ClusterURL
  let connection: PostgresConnection
  /// The longest a statement may wait for its answer before the connection is taken as broken and
  /// closed (nil: no limit). A TCP link cut without a word (a partition) would otherwise leave a
  /// statement waiting for as long as the system's retransmissions last.
  let answerTimeout: Double?

  /// PostgresNIO logs through swift-log; the cluster's own messages are what users read, so its
  /// log is kept to what it calls critical.
  static let logger: Logger = {
    var logger = Logger(label: "vmlab.cluster")
    logger.logLevel = .critical
    return logger
  }()

  private init(url: ClusterURL, connection: PostgresConnection, answerTimeout: Double?) {
    self.url = url
    self.connection = connection
    self.answerTimeout = answerTimeout
  }

  /// Connects to `url` within `timeout` seconds; over TCP with TLS as its `sslmode` asks. With an
  /// `answerTimeout`, a statement without an answer for that long closes the connection and fails.
  /// The first connect to the URL of an `EarlyConnection` takes that one (or its failure).
  public static func connect(_ url: ClusterURL, timeout: Double = 10, answerTimeout: Double? = nil) async throws
    -> ClusterDatabase
  {
    let connection =
      if let begun = EarlyConnection.take(url) {
        try await begun.value
      } else {
        try await open(url, timeout: timeout)
      }
    return ClusterDatabase(url: url, connection: connection, answerTimeout: answerTimeout)
  }

  /// A new connection to `url` within `timeout` seconds.
  static func open(_ url: ClusterURL, timeout: Double = 10) async throws -> PostgresConnection {
    do {
      return try await attempt(url, timeout: timeout, firstAttempt: true)
    } catch let error as PSQLError where url.tls == .allow && error.serverInfo != nil {
      // libpq's `allow`: the server refused a plain connection, so try again with TLS.
      return try await attempt(url, timeout: timeout, firstAttempt: false)
    }
  }
  /// Connects, brings the schema forward and runs `body` on the connection, closed afterwards:
  /// one short request (a command, a client call).
  public static func using<T: Sendable>(_ url: ClusterURL, _ body: (ClusterDatabase) async throws -> T) async throws
    -> T
  {
    let db = try await connect(url)
    do {
      try await db.migrate()
      let value = try await body(db)
      await db.close()
      return value
    } catch {
      await db.close()
      throw error
    }
  }

  private static func attempt(_ url: ClusterURL, timeout: Double, firstAttempt: Bool) async throws
    -> PostgresConnection
  {
    var configuration: PostgresConnection.Configuration
    switch url.endpoint {
    case .tcp(let host, let port):
      configuration = .init(
        host: host, port: port, username: url.user, password: url.password, database: url.database,
        tls: try url.tlsSetting(firstAttempt: firstAttempt))
    case .socket:
      // libpq never uses TLS on a UNIX socket, and neither does the server: sslmode is ignored.
      configuration = .init(
        unixSocketPath: url.endpoint.socketPath!, username: url.user, password: url.password, database: url.database)
    }
    configuration.options.connectTimeout = .milliseconds(Int64(timeout * 1000))
    do {
      return try await PostgresConnection.connect(
        configuration: configuration, id: Int.random(in: 1...Int.max), logger: logger)
    } catch let error as PSQLError where url.tls == .allow && firstAttempt && error.serverInfo != nil {
      throw error
    } catch {
      var why = connectionReason(error, url: url)
      if let socket = url.endpoint.socketPath { why = "socket \(socket): \(why)" }
      // A TLS or login refusal already says what to do; the server does run.
      let hint =
        tlsExplanation(error, url: url) != nil
        ? ""
        : "; check that PostgreSQL runs there and that --cluster names it (Scripts/postgres start runs one to try cluster mode)"
      throw ClusterError(.database, "cannot reach the cluster database \(url): \(why)\(hint)")
    }
  }

  /// Why a connection failed: a TLS problem in words a user can act on (looked for down the chain
  /// of underlying errors), else the server's or the system's reason.
  static func connectionReason(_ error: Error, url: ClusterURL) -> String {
    if let tls = tlsExplanation(error, url: url) { return tls }
    var why = reason(error)
    // The server's words for a pg_hba.conf that takes only TLS ("hostssl") lines from this host.
    if url.tls == .disable, case .tcp = url.endpoint, why.contains("no encryption") {
      why +=
        "; the server takes this connection only over TLS, and the URL says sslmode=disable: use sslmode=verify-full with sslrootcert=FILE (or sslmode=require)"
    }
    return why
  }

  /// A TLS or login problem found down the chain of underlying errors, in words a user can act on.
  static func tlsExplanation(_ error: Error, url: ClusterURL) -> String? {
    var next: Error? = error
    while let current = next {
      if let tls = tlsReason(current, url: url) { return tls }
      next = (current as? PSQLError)?.underlying
    }
    return nil
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
      return try await answer(query)
    } catch {
      throw failure(error)
    }
  }

  /// Runs one statement and returns its rows, or throws PostgresNIO's error as it is (for callers
  /// that tell one server error from others by its SQLSTATE).
  func answer(_ query: PostgresQuery) async throws -> [PostgresRow] {
    try await withinDeadline { connection in try await connection.query(query, logger: Self.logger).collect() }
  }

  /// Runs a prepared statement (parsed and planned once per connection: an agent's claims and
  /// results, which every step runs) and returns its rows.
  func rows<Statement: PostgresPreparedStatement>(_ statement: Statement) async throws -> [Statement.Row] {
    do {
      return try await withinDeadline { connection in
        var found: [Statement.Row] = []
        for try await row in try await connection.execute(statement, logger: Self.logger) { found.append(row) }
        return found
      }
    } catch {
      throw failure(error)
    }
  }

  /// Runs `body` on the connection within the answer timeout, if there is one.
  private func withinDeadline<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
    guard let limit = answerTimeout else { return try await body(connection) }
    // The deadline is a timer on the connection's own event loop, which answers the statement
    // anyway, rather than a task racing it: an agent's claims and results are on a lab
    // operation's critical path, and two more tasks per statement cost thread wake-ups there. A
    // caller's cancellation is not the deadline: the statement is still waited for (its effect is
    // in the database either way), so a cancelled renewal never closes the connection that other
    // callers share.
    let connection = self.connection
    let expired = Latch()
    let timer = connection.eventLoop.scheduleTask(in: .nanoseconds(Int64(limit * 1e9))) {
      // Closing the connection ends the statement still waiting on it.
      expired.raise()
      connection.close().whenComplete { _ in }
    }
    defer { timer.cancel() }
    do {
      return try await body(connection)
    } catch {
      guard !expired.isRaised else {
        throw ClusterError(
          .database,
          "the cluster database \(url) did not answer within \(limit) s (the network or the server is down); the connection was closed"
        )
      }
      throw error
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
