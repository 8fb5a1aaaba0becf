import Foundation

@testable import QEMUHost

/// A socket that greets each client with one line and says nothing more: something that is not
/// the server a client expects.
final class FakeLineServer: @unchecked Sendable {
  let path: String
  private let listener: UnixSocketListener
  private let done = DispatchSemaphore(value: 0)
  private var running = true
  private let lock = NSLock()

  init(path: String, greeting: String) throws {
    self.path = path
    listener = try UnixSocketListener(path: path)
    let listener = self.listener
    Thread.detachNewThread { [self] in
      while lock.withLock({ running }) {
        guard let client = listener.accept(timeout: 0.1) else { continue }
        try? client.send(bytes: Array((greeting + "\n").utf8))
      }
      done.signal()
    }
  }

  func stop() {
    lock.withLock { running = false }
    _ = done.wait(timeout: .now() + 5)
    listener.close()
  }
}
