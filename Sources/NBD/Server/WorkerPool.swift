import Foundation

/// Threads that execute one connection's requests, started as needed up to `limit`, in the order the
/// work was submitted. Dispatch's shared pool does not start threads promptly for work that blocks
/// in I/O (16 blocked reads got 11 threads after 13 s here), so a connection keeps its own.
final class WorkerPool: @unchecked Sendable {
  private let limit: Int
  private let name: String
  private let condition = NSCondition()
  private var work: [@Sendable () -> Void] = []
  private var threads = 0
  private var idle = 0
  private var isFinished = false

  init(limit: Int, name: String) {
    self.limit = limit
    self.name = name
  }

  func submit(_ job: @escaping @Sendable () -> Void) {
    condition.lock()
    work.append(job)
    let startThread = idle < work.count && threads < limit
    if startThread { threads += 1 }
    if idle > 0 { condition.signal() }
    condition.unlock()
    if startThread {
      let thread = Thread { [self] in run() }
      thread.name = name
      thread.start()
    }
  }

  /// Lets the threads end once the submitted work is done.
  func finish() {
    condition.lock()
    isFinished = true
    condition.broadcast()
    condition.unlock()
  }

  private func run() {
    condition.lock()
    while true {
      if !work.isEmpty {
        let job = work.removeFirst()
        condition.unlock()
        job()
        condition.lock()
      } else if isFinished {
        threads -= 1
        condition.unlock()
        return
      } else {
        idle += 1
        condition.wait()
        idle -= 1
      }
    }
  }
}
