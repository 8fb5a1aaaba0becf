import Foundation
import PostgresNIO

/// A connection to the cluster database begun while the command line is still being parsed: the
/// server starts a process for every connection, and that, with the login, takes as long as parsing
/// a command (both some milliseconds), so the two overlap on a machine's two cores instead of
/// following each other. The first `ClusterDatabase.connect` to the same URL takes it; its failure
/// is that connect's failure, said the same way.
public enum EarlyConnection {
  private static let lock = NSLock()
  nonisolated(unsafe) private static var begun: (url: ClusterURL, attempt: Task<PostgresConnection, Error>)?

  /// Starts connecting to `text` (a `--cluster` URL) in the background; a URL that does not parse
  /// starts nothing (the command says what is wrong with it).
  public static func begin(_ text: String) {
    guard let url = try? ClusterURL(text) else { return }
    let attempt = Task { try await ClusterDatabase.open(url) }
    lock.withLock { begun = (url, attempt) }
  }

  /// The connection begun for `url`, once: nil when none was begun for it (or it was taken).
  static func take(_ url: ClusterURL) -> Task<PostgresConnection, Error>? {
    lock.withLock {
      guard let found = begun, found.url == url else { return nil }
      begun = nil
      return found.attempt
    }
  }
}
