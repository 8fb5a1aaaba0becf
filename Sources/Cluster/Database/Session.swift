import Foundation

/// A connection to the cluster database that is made again after it failed (the database
/// restarted, the network broke): the next caller connects anew.
actor Session {
  let url: ClusterURL
  private var current: ClusterDatabase?

  init(url: ClusterURL) {
    self.url = url
  }

  func database() async throws -> ClusterDatabase {
    if let current, !current.isClosed { return current }
    let fresh = try await ClusterDatabase.connect(url)
    current = fresh
    return fresh
  }

  /// Drops the connection after a failure.
  func reset() async {
    let old = current
    current = nil
    await old?.close()
  }

  func close() async {
    await reset()
  }
}
