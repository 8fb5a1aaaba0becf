import Foundation

/// Threads kept a moment after their work, for the next burst: an operation runs several short
/// bursts of parallel work (stop the VMs, make the new files, sync them, delete the old ones, write
/// the manifests), and starting and ending a thread for each item of each burst cost more processor
/// time than the work of many items. A thread idle for `keepSeconds` ends.
final class IdleThreads: @unchecked Sendable {
  static let shared = IdleThreads(keepSeconds: 1)

  private let condition = NSCondition()
  /// Threads waiting for work, and the work handed to them but not taken yet.
  private var idle = 0
  private var handed: [@Sendable () -> Void] = []
  private var threadsStarted = 0
  let keepSeconds: Double

  /// How many threads it started, all told, and how many wait for work now.
  var started: Int { condition.withLock { threadsStarted } }
  var waiting: Int { condition.withLock { idle - handed.count } }

  init(keepSeconds: Double) {
    self.keepSeconds = keepSeconds
  }

  /// Runs `work` on an idle thread, or on a new one (named `name`) when none is free.
  func run(name: String, _ work: @escaping @Sendable () -> Void) {
    condition.lock()
    if handed.count < idle {
      handed.append(work)
      condition.signal()
      condition.unlock()
      return
    }
    threadsStarted += 1
    condition.unlock()
    let thread = Thread { [self] in loop(first: work) }
    thread.name = name
    thread.start()
  }

  private func loop(first: @escaping @Sendable () -> Void) {
    var work = first
    while true {
      work()
      condition.lock()
      idle += 1
      let deadline = Date(timeIntervalSinceNow: keepSeconds)
      while handed.isEmpty && condition.wait(until: deadline) {}
      idle -= 1
      guard !handed.isEmpty else {
        condition.unlock()
        return
      }
      work = handed.removeFirst()
      condition.unlock()
    }
  }
}
