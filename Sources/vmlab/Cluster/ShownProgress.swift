import Foundation

/// The last progress line a command printed, so each is printed once.
final class ShownProgress: @unchecked Sendable {
  private let lock = NSLock()
  private var last = ""

  func isNew(_ line: String) -> Bool {
    lock.withLock {
      defer { last = line }
      return line != last
    }
  }
}
