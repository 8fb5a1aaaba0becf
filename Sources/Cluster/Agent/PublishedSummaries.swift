import Foundation
import LabKit

/// What this agent has published of each VM, so that a step that changed nothing a summary shows
/// (starting a running VM, describing one) publishes nothing: a claim-bound host ran at half its
/// steps per second while every step rewrote its VM's row.
///
/// Remembering what was committed is enough because an agent publishes one thing at a time (a
/// step's result, or between steps the whole library), each newer than the one before, and no
/// other process writes its host's rows while it holds the host name: a row is what this agent
/// last committed for it. A commit whose answer was lost is simply not remembered, so the next
/// step publishes again; rows deleted behind its back come back with the next describe step or
/// reconciliation (both publish in full).
final class PublishedSummaries: @unchecked Sendable {
  private let lock = NSLock()
  private var published: [String: VMSummary] = [:]

  /// `publication` less the summaries published already as they are; nil when nothing is left.
  /// VMs gone from the library are always published as gone.
  func unpublished(_ publication: VMPublication) -> VMPublication? {
    var left = publication
    lock.withLock {
      left.summaries.removeAll { published[NameRules.key($0.vm.name)] == $0 }
    }
    return left.summaries.isEmpty && left.removed.isEmpty && !left.whole ? nil : left
  }

  /// Records a publication the database accepted.
  func remember(_ publication: VMPublication) {
    lock.withLock {
      if publication.whole { published.removeAll() }
      for summary in publication.summaries { published[NameRules.key(summary.vm.name)] = summary }
      for name in publication.removed { published[NameRules.key(name)] = nil }
    }
  }
}
