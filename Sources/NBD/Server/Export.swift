import Foundation

/// One served device under a name, with the gate that lets its owner pause it between two requests,
/// flush it, put another device in its place (a new leaf after a checkpoint), and resume.
public final class Export: @unchecked Sendable {
  /// The name clients ask for; the empty name (the default export) is always accepted too.
  public let name: String
  public let details: String
  public let size: UInt64
  public let isReadOnly: Bool
  public let canTrim: Bool

  private let condition = NSCondition()
  private var device: BlockDevice
  private var isPaused = false
  private var active = 0

  public init(name: String = "", details: String = "", device: BlockDevice) {
    self.name = name
    self.details = details
    self.device = device
    size = device.size
    isReadOnly = device.isReadOnly
    canTrim = device.canTrim
  }

  func accepts(name requested: String) -> Bool { requested.isEmpty || requested == name }

  /// Runs `body` with the current device; waits while the export is paused.
  func use<T>(_ body: (BlockDevice) throws -> T) rethrows -> T {
    condition.lock()
    while isPaused { condition.wait() }
    active += 1
    let device = self.device
    condition.unlock()
    defer {
      condition.lock()
      active -= 1
      if active == 0 { condition.broadcast() }
      condition.unlock()
    }
    return try body(device)
  }

  /// Lets the requests under way finish and holds back every later one until `resume`.
  public func pause() {
    condition.lock()
    isPaused = true
    while active > 0 { condition.wait() }
    condition.unlock()
  }

  public func resume() {
    condition.lock()
    isPaused = false
    condition.broadcast()
    condition.unlock()
  }

  public var paused: Bool { condition.withLock { isPaused } }

  /// Puts every completed write of the current device on stable storage.
  public func flush() throws {
    let device = condition.withLock { self.device }
    try device.flush()
  }

  /// Serves `replacement` from the next request on. The export must be paused (no request is using
  /// the old device), and the replacement must look the same to clients: same size, same access.
  /// Returns the old device, for its owner to close.
  @discardableResult
  public func replaceDevice(with replacement: BlockDevice) throws -> BlockDevice {
    condition.lock()
    defer { condition.unlock() }
    guard isPaused else {
      throw NBDServerError("the export \(name) must be paused before its device is replaced")
    }
    guard replacement.size == size, replacement.isReadOnly == isReadOnly else {
      throw NBDServerError(
        "the replacement for export \(name) is \(replacement.size) bytes\(replacement.isReadOnly ? ", read-only" : ""); clients were told \(size) bytes\(isReadOnly ? ", read-only" : "")"
      )
    }
    let old = device
    device = replacement
    return old
  }

  /// Pauses every export, flushes each, lets `switching` put new devices in place, then resumes
  /// them all, also when `switching` throws: the exports of one VM move together.
  public static func switchTogether(_ exports: [Export], _ switching: () throws -> Void) throws {
    exports.forEach { $0.pause() }
    defer { exports.forEach { $0.resume() } }
    for export in exports { try export.flush() }
    try switching()
  }
}

/// A server-side problem with a sentence that says what to do.
public struct NBDServerError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}
