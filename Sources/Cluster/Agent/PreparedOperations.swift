import Foundation
import LabKit

/// The operations this agent prepared, kept from a lab's prepare step to its decide step: phase two
/// then runs on what phase one read (`Library.decide(_:commit:)`) instead of reading the journal
/// entry, decoding its commit and reading every VM from the catalog again. A decide step that finds
/// nothing here (the agent restarted, or another one prepared) decides from the journal as before.
final class PreparedOperations: @unchecked Sendable {
  enum Prepared {
    case restore(PreparedRestore)
    case checkpoint(PreparedCheckpoint)
  }

  /// Enough for the operations that can wait at once; an older one left here (its decision taken
  /// by a later agent) is forgotten rather than kept for good.
  private static let limit = 16
  private let lock = NSLock()
  private var kept: [(id: Int64, prepared: Prepared)] = []

  func keep(_ prepared: Prepared, id: Int64) {
    lock.withLock {
      kept.removeAll { $0.id == id }
      kept.append((id, prepared))
      if kept.count > Self.limit { kept.removeFirst(kept.count - Self.limit) }
    }
  }

  /// The operation `id`, no longer kept.
  func take(_ id: Int64) -> Prepared? {
    lock.withLock {
      guard let index = kept.firstIndex(where: { $0.id == id }) else { return nil }
      return kept.remove(at: index).prepared
    }
  }
}
