import Foundation

/// A small pool of dedicated threads (kept a moment between bursts, see `IdleThreads`). Work items with the same key run one at a time, in the order
/// they were submitted; items with different keys run in parallel, up to `width` at once.
///
/// Dedicated threads rather than `OperationQueue`/GCD: on Linux the global dispatch pool runs about
/// one thread per core and starts more only after a delay, so blocking work (disk I/O, a guest
/// shutting down) ran two at a time on two cores whatever `maxConcurrentOperationCount` said. And an
/// operation queue gives no order between items that contend for one VM's lock.
final class WorkQueue: @unchecked Sendable {
  private struct Item {
    var key: String?
    var work: () -> Void
  }

  private let condition = NSCondition()
  private var pending: [Item] = []
  private var busyKeys: Set<String> = []
  private var workers = 0
  private var waiting = 0
  let width: Int
  let name: String

  init(name: String, width: Int) {
    self.name = name
    self.width = max(1, width)
  }

  /// The default width: I/O-bound work, so a few more threads than cores.
  static var defaultWidth: Int { max(4, ProcessInfo.processInfo.activeProcessorCount * 2) }

  /// The width for many small file-system operations, which wait on the disk rather than a core.
  static let fileSystemWidth = 16

  func submit(key: String?, _ work: @escaping () -> Void) {
    condition.lock()
    pending.append(Item(key: key, work: work))
    if workers < width && pending.count > waiting {
      workers += 1
      IdleThreads.shared.run(name: name) { [self] in run() }
    }
    condition.broadcast()
    condition.unlock()
  }

  private func run() {
    condition.lock()
    while true {
      if let index = pending.firstIndex(where: { item in item.key.map { !busyKeys.contains($0) } ?? true }) {
        let item = pending.remove(at: index)
        if let key = item.key { busyKeys.insert(key) }
        condition.unlock()
        item.work()
        condition.lock()
        if let key = item.key { busyKeys.remove(key) }
        condition.broadcast()
      } else if pending.isEmpty {
        workers -= 1
        condition.unlock()
        return
      } else {
        // Everything pending waits for a key another worker holds.
        waiting += 1
        condition.wait()
        waiting -= 1
      }
    }
  }
}
