@testable import Cluster

extension ClusterDatabase {
  /// Ends `step` as an agent that publishes nothing does, under the claim's fence or, for a test
  /// that forges a stale or newer one, under `fence`.
  func finish(
    _ step: ClaimedStep, fence: Int64? = nil, succeeded: Bool = true, message: String, prepared: Int64? = nil
  ) async throws -> Bool {
    var step = step
    if let fence { step.fence = fence }
    return try await finishStep(
      step: step, succeeded: succeeded, message: message, prepared: prepared, host: "", agent: "") != nil
  }
}
