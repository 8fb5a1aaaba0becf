import Foundation

/// A flag raised once, from any thread: a statement's deadline that passed, a wait that ended.
final class Latch: @unchecked Sendable {
  private let lock = NSLock()
  private var raised = false

  /// Raises the flag; true only for the call that raised it.
  @discardableResult
  func raise() -> Bool {
    lock.withLock {
      defer { raised = true }
      return !raised
    }
  }

  var isRaised: Bool { lock.withLock { raised } }
}
