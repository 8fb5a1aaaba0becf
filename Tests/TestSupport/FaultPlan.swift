import Foundation

/// Counts calls of named fault steps (a library's `faultInjection` hook) and fails one of them: the
/// `occurrence`th call of `step` throws `error`.
public final class FaultPlan: @unchecked Sendable {
  private let lock = NSLock()
  private var calls: [String] = []
  private var remaining: Int
  public let step: String
  public let error: Error

  public init(step: String, occurrence: Int = 1, error: Error) {
    self.step = step
    remaining = occurrence
    self.error = error
  }

  /// The steps called so far, in order.
  public var seen: [String] { lock.withLock { calls } }

  public func hit(_ name: String) throws {
    let fire = lock.withLock { () -> Bool in
      calls.append(name)
      guard name == step else { return false }
      remaining -= 1
      return remaining == 0
    }
    if fire { throw error }
  }
}
