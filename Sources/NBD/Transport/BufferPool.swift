import Foundation

/// Reuses request buffers: large allocations are fresh mappings whose first touch faults every page,
/// which a stream of 256 KiB reads would pay again and again. Keeps a few buffers of bounded size.
final class BufferPool: @unchecked Sendable {
  private let lock = NSLock()
  private var free: [PayloadBuffer] = []
  private let keep: Int
  private let largestKept: Int

  init(keep: Int = 16, largestKept: Int = 4 << 20) {
    self.keep = keep
    self.largestKept = largestKept
  }

  func take(_ count: Int) -> PayloadBuffer {
    lock.lock()
    if let index = free.firstIndex(where: { $0.capacity >= count && $0.capacity <= max(count * 2, 64 << 10) }) {
      let buffer = free.remove(at: index)
      lock.unlock()
      return buffer
    }
    lock.unlock()
    return PayloadBuffer(capacity: count)
  }

  func give(_ buffer: PayloadBuffer) {
    guard buffer.capacity <= largestKept else { return }
    lock.lock()
    defer { lock.unlock() }
    if free.count < keep {
      free.append(buffer)
    } else if let smallest = free.indices.min(by: { free[$0].capacity < free[$1].capacity }),
      free[smallest].capacity < buffer.capacity
    {
      free[smallest] = buffer
    }
  }
}
