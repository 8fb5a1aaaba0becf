import PostgresNIO

extension ClusterDatabase {
  /// LISTENs on `channel` and hands each notification's payload to `received` until the
  /// connection ends or the task is cancelled.
  func listen(on channel: String, received: @Sendable (String) -> Void) async throws {
    do {
      try await connection.listen(on: channel) { notifications in
        for try await notification in notifications {
          received(notification.payload)
        }
      }
    } catch {
      throw failure(error)
    }
  }
}
