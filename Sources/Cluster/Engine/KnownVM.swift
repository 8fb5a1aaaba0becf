import Foundation

/// A VM as the engine last read it: the host that holds it, that host's state then, and the VM as
/// the host's agent published it (ids made unique across the cluster).
struct KnownVM {
  var host: String
  var hostState: HostStatus.State
  var summary: VMSummary
  var publishedAt: Date?
  /// When this engine read it: it is read again once `ClusterEngine.freshSeconds` have passed.
  var readAt = Date()

  var isFresh: Bool { Date().timeIntervalSince(readAt) < ClusterEngine.freshSeconds }
}
