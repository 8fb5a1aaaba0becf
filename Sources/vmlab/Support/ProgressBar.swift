import Foundation

/// A one-line progress bar on standard error, drawn only when standard error is a terminal, so
/// piped output stays clean.
final class ProgressBar {
  private let label: String
  private let enabled: Bool
  private var lastDrawn = Date.distantPast
  private var drewSomething = false

  init(_ label: String, quiet: Bool = false) {
    self.label = label
    enabled = !quiet && isatty(STDERR_FILENO) == 1
  }

  /// A progress handler for the VHD operations.
  func update(done: UInt64, total: UInt64) {
    guard enabled, total > 0 else { return }
    let now = Date()
    guard done == total || now.timeIntervalSince(lastDrawn) > 0.1 else { return }
    lastDrawn = now
    let fraction = Double(done) / Double(total)
    let width = 30
    let filled = Int(fraction * Double(width))
    let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
    let text = "\r\(label) [\(bar)] \(Int(fraction * 100))%"
    FileHandle.standardError.write(Data(text.utf8))
    drewSomething = true
  }

  func finish() {
    if drewSomething { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
  }
}
