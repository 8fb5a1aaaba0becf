import Foundation

/// A connection to the cluster database that is made again after it failed (the database
/// restarted, the network broke): the next caller connects anew. With an `answerTimeout`, a
/// statement that gets no answer for that long closes the connection, so a link cut without a word
/// is found out as a refused one is.
actor Session {
  let url: ClusterURL
  let answerTimeout: Double?
  private var current: ClusterDatabase?

  init(url: ClusterURL, answerTimeout: Double? = nil) {
    self.url = url
    self.answerTimeout = answerTimeout
  }

  func database() async throws -> ClusterDatabase {
    if let current, !current.isClosed { return current }
    let fresh = try await ClusterDatabase.connect(url, answerTimeout: answerTimeout)
    current = fresh
    return fresh
  }

  /// Drops the connection after a failure; given the connection that `failed`, only if it is still
  /// the current one (another caller of the session may have made a new one since).
  func reset(failed: ClusterDatabase? = nil) async {
    if let failed, let current, current !== failed { return }
    let old = current
    current = nil
    await old?.close()
  }

  func close() async {
    await reset()
  }
}
