import Foundation
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

  /// Hands each notification on `channels` to `received` (its channel and payload) on the
  /// connection's own event loop as it arrives, until the connection ends or the task is
  /// cancelled. No task stands between the database and `received`, so a wake-up costs one thread
  /// hop: an agent claims a lab operation's step right after it.
  func relay(_ channels: [String], to received: @escaping @Sendable (_ channel: String, _ payload: String) -> Void)
    async
  {
    let connection = self.connection
    // Completed once, by whichever comes first: the connection's end or a cancellation.
    let ended = connection.eventLoop.makePromise(of: Void.self)
    let ending = Latch()
    let end: @Sendable () -> Void = { if ending.raise() { ended.succeed() } }
    let contexts = channels.map { channel in
      connection.addListener(channel: channel) { _, notification in
        received(notification.channel, notification.payload)
      }
    }
    connection.closeFuture.whenComplete { _ in end() }
    await withTaskCancellationHandler {
      try? await ended.futureResult.get()
    } onCancel: {
      end()
    }
    for context in contexts { context.stop() }
  }
}
