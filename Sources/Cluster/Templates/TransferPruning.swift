import Foundation

/// The rule that keeps `template_transfer` rows and their chunks from piling up:
///
/// - a transfer that ends (done or failed) drops its chunks at once;
/// - an unfinished transfer (requested, sending, sent) in which no chunk moved for
///   `abandonedAfter` is given up as abandoned (its puller or sender was killed, or its host went
///   away) and its chunks dropped. A live copy never gets near it: the puller takes a chunk at
///   least every 30 s or gives up itself (60 s before the first), the sender within 60 s, and
///   every chunk taken marks the transfer as moving;
/// - ended rows older than `keepEndedFor` are deleted, except the latest transfer of each image
///   to each host, kept as the record of how that host got its copy (and why its last try failed).
///
/// Agents apply it from their template service, at start and every `interval`, so the tables stay
/// small with any host alive; a lone agent is enough.
struct TransferPruning: Sendable, Equatable {
  var abandonedAfter: Double = 3600
  var keepEndedFor: Double = 7 * 86400
  var interval: Double = 600

  static let unfinished = ["requested", "sending", "sent"]
  static let ended = ["done", "failed"]

  /// What one round pruned.
  struct Outcome: Sendable, Equatable {
    var abandoned: [Int64]
    var deletedRows: Int
    var deletedChunks: Int

    var isEmpty: Bool { abandoned.isEmpty && deletedRows == 0 && deletedChunks == 0 }

    /// One line for the agent's log.
    func line(_ rule: TransferPruning) -> String {
      var parts: [String] = []
      if !abandoned.isEmpty {
        parts.append(
          "gave up \(abandoned.count) abandoned (transfer \(abandoned.map(String.init).joined(separator: ", ")): no chunk moved for \(TransferPruning.duration(rule.abandonedAfter)))"
        )
      }
      if deletedRows > 0 {
        parts.append(
          "deleted \(deletedRows) ended older than \(TransferPruning.duration(rule.keepEndedFor)) (each host's latest copy of an image is kept)"
        )
      }
      if deletedChunks > 0 { parts.append("dropped \(deletedChunks) chunks of ended transfers") }
      return "template transfers pruned: " + parts.joined(separator: "; ")
    }
  }

  /// A duration as people say it: 45 s, 10 min, 1 h, 7 days.
  static func duration(_ seconds: Double) -> String {
    func shown(_ value: Double) -> String {
      value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }
    if seconds >= 86400 { return "\(shown(seconds / 86400)) day\(seconds == 86400 ? "" : "s")" }
    if seconds >= 3600 { return "\(shown(seconds / 3600)) h" }
    if seconds >= 60 { return "\(shown(seconds / 60)) min" }
    return "\(shown(seconds)) s"
  }
}
