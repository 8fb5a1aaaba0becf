import Foundation

/// An agent's hold on one step, as it knows it: when it last renewed (by this machine's monotonic
/// clock, only to know when to give up; the database's `now()` decides the lease itself) and
/// whether it was lost, and why.
final class Lease: @unchecked Sendable {
  private let lock = NSLock()
  private let seconds: Double
  private var renewedAt = DispatchTime.now()
  private var reason: String?

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

  func lose(_ why: String) {
    lock.withLock { if reason == nil { reason = why } }
  }

  var isLost: Bool { lock.withLock { reason != nil } }
  var lostReason: String? { lock.withLock { reason } }
}
