import Foundation

/// Wakes the agent's work loop early: a notification that a step was queued for its host, or a
/// stop. A wake that comes while nobody waits is kept for the next wait, so none is lost.
final class WakeSignal: @unchecked Sendable {
  private let lock = NSLock()
  private var pending = false
  private var waiter: CheckedContinuation<Void, Never>?

  func fire() {
    let resumed: CheckedContinuation<Void, Never>? = lock.withLock {
      if let waiter {
        self.waiter = nil
        return waiter
      }
      pending = true
      return nil
    }
    resumed?.resume()
  }

  /// Returns at the next wake, or after `seconds` (polling is the fallback when a notification is
  /// lost, as when the listening connection broke).
  func wait(seconds: Double) async {
    await withTaskGroup(of: Void.self) { group in
      group.addTask {
        do {
          try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
          self.fire()
        } catch {}
      }
      group.addTask { await self.nextWake() }
      await group.next()
      group.cancelAll()
      await group.waitForAll()
    }
  }

  private func nextWake() async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
      let now: Bool = lock.withLock {
        if pending {
          pending = false
          return true
        }
        waiter = continuation
        return false
      }
      if now { continuation.resume() }
    }
  }
}
