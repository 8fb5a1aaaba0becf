import PostgresNIO

extension ClusterDatabase {
  /// LISTENs on `channel` and hands each notification's payload to `received` until the
  /// connection ends or the task is cancelled; `started` is called once the LISTEN is in place.
  func listen(
    on channel: String, started: @Sendable () -> Void = {}, received: @Sendable (String) -> Void
  ) async throws {
    do {
      try await connection.listen(on: channel) { notifications in
        started()
        for try await notification in notifications {
          received(notification.payload)
        }
      }
    } catch {
      throw failure(error)
    }
  }
}
