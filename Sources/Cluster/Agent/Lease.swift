import Foundation

/// An agent's hold on one step, as it knows it: when it last renewed (by this machine's monotonic
/// clock, only to know when to give up; the database's `now()` decides the lease itself) and
/// whether it was lost, and why.
final class Lease: @unchecked Sendable {
  private let lock = NSLock()
  private let seconds: Double
  private var renewedAt = DispatchTime.now()
  private var reason: String?
  private var refused = false

  init(seconds: Double) {
    self.seconds = seconds
  }

  func renewed() {
    lock.withLock { renewedAt = .now() }
  }

  /// True once the lease would have run out since the last renewal.
  var ranOut: Bool {
    lock.withLock { Double(DispatchTime.now().uptimeNanoseconds - renewedAt.uptimeNanoseconds) / 1e9 >= seconds }
  }

  /// Marks the lease lost. `refused`: the database refused the fence, so the step belongs to a
  /// newer claim; otherwise only this agent's clock says it ran out (the database was out of
  /// reach), and the fence may still be current: the result is offered to the database, which
  /// decides.
  func lose(_ why: String, refused: Bool = true) {
    lock.withLock {
      if reason == nil { reason = why }
      if refused { self.refused = true }
    }
  }

  var isLost: Bool { lock.withLock { reason != nil } }
  /// True once the database refused the fence.
  var isRefused: Bool { lock.withLock { refused } }
  /// Whether the step may go on to its next part: not lost, and not run out by this machine's
  /// clock either (a renewal that hangs on a cut link has not failed yet, but the database will
  /// have taken the lease back).
  var mayContinue: Bool { !isLost && !ranOut }
  var lostReason: String? { lock.withLock { reason } }
}
