import Dispatch
import Foundation

/// Wakes the agent's work loop early: a notification that a step was queued for its host, or a
/// stop. A wake that comes while nobody waits is kept for the next wait, so none is lost.
///
/// A wait is one continuation, resumed by `fire()` or by a timer, rather than a task group racing
/// a sleeping task: a notification wakes the waiter in one hop, which matters on a lab operation's
/// critical path, where every host waits like this between its two steps.
final class WakeSignal: @unchecked Sendable {
  private let lock = NSLock()
  private var pending = false
  private var waiter: CheckedContinuation<Void, Never>?
  /// Counts waits, so that the timer of an earlier wait never ends a later one.
  private var waits: UInt64 = 0

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

  /// Returns at the next wake, after `seconds` (polling is the fallback when a notification is
  /// lost, as when the listening connection broke), or when the task is cancelled.
  func wait(seconds: Double) async {
    await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let wait: UInt64? = lock.withLock {
          if pending {
            pending = false
            return nil
          }
          waits &+= 1
          waiter = continuation
          return waits
        }
        guard let wait else { return continuation.resume() }
        DispatchQueue.global().asyncAfter(deadline: .now() + max(0, seconds)) { [self] in
          let expired: CheckedContinuation<Void, Never>? = lock.withLock {
            guard waits == wait, let waiter else { return nil }
            self.waiter = nil
            return waiter
          }
          expired?.resume()
        }
      }
    } onCancel: {
      fire()
    }
  }
}
