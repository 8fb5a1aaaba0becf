import Foundation

/// Wakes a lab operation's coordinator when one of its steps ends: it LISTENs on
/// `labStepsChannel` on the coordinator's connection (again after the connection was made anew)
/// and fires for the notifications that name a job of this operation. Polling stays the fallback
/// for what no step announces (a host that stopped heartbeating, a deadline) and for a
/// notification lost with a connection.
final class LabStepWatch: @unchecked Sendable {
  let wake = WakeSignal()
  private let lock = NSLock()
  private var jobs: Set<Int64> = []
  /// Jobs whose last open step said it ended (or failed) since the coordinator last asked.
  private var settled: Set<Int64> = []
  private var listening = false
  private var stopped = false
  private var task: Task<Void, Never>?

  /// Starts listening on `session`'s connection; returns once the LISTEN is in place or, when the
  /// database does not answer it within `seconds`, without it (the waits poll more often then).
  func start(on session: Session, within seconds: Double = 1) async {
    task = Task { await self.listen(on: session) }
    let deadline = Date().addingTimeInterval(seconds)
    while !isListening && Date() < deadline {
      await wake.wait(seconds: 0.01)
    }
  }

  /// Stops listening and closes `session`, whose close ends the LISTEN: no UNLISTEN round trip on
  /// the way out, and no new connection made for the LISTEN once the old one is closed.
  func stop(closing session: Session) async {
    lock.withLock { stopped = true }
    await session.close()
    task?.cancel()
    task = nil
  }

  /// Wakes for the ends of `job`'s steps from now on (call before looking at them, so that no end
  /// falls between the look and the wait).
  func watch(job: Int64?) {
    guard let job else { return }
    lock.withLock { _ = jobs.insert(job) }
  }

  /// True once after a step of `job` said the job has nothing more to wait for (`LabStepEnd`).
  func takeSettled(job: Int64) -> Bool {
    lock.withLock { settled.remove(job) != nil }
  }

  /// True while the LISTEN is in place on a live connection.
  var isListening: Bool { lock.withLock { listening } }

  private func setListening(_ value: Bool) {
    lock.withLock { listening = value }
    if value { wake.fire() }
  }

  private func listen(on session: Session) async {
    while !Task.isCancelled && !lock.withLock({ stopped }) {
      do {
        let db = try await session.database()
        try await db.listen(on: labStepsChannel, started: { self.setListening(true) }) { payload in
          guard let end = LabStepEnd(payload: payload) else { return }
          let watched = self.lock.withLock {
            guard self.jobs.contains(end.job) else { return false }
            if end.settled { self.settled.insert(end.job) }
            return true
          }
          if watched { self.wake.fire() }
        }
      } catch {}
      setListening(false)
      // The connection failed (the coordinator's own calls make it again) or was cancelled.
      try? await Task.sleep(nanoseconds: 100_000_000)
    }
  }
}
