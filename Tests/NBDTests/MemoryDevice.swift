import Foundation
import NBD

/// A block device in memory for the server's tests: counts what it is asked, can hold reads until
/// several run at once (to show they run in parallel), and can report ranges as holes.
final class MemoryDevice: BlockDevice, @unchecked Sendable {
  let size: UInt64
  let isReadOnly: Bool
  var canTrim: Bool { true }

  private let condition = NSCondition()
  private var bytes: [UInt8]
  /// Ranges reported as holes (they are zeros in `bytes`).
  private var holes: [Range<UInt64>]
  private(set) var writes = 0
  private(set) var flushes = 0
  private(set) var durableWrites = 0
  private var readsInside = 0
  private(set) var mostReadsAtOnce = 0
  /// While positive, a read waits (at most 5 s) until this many reads are inside at once.
  var readsToWaitFor = 0

  init(size: Int, readOnly: Bool = false, pattern: UInt8? = nil, holes: [Range<UInt64>] = []) {
    self.size = UInt64(size)
    isReadOnly = readOnly
    bytes = (0..<size).map { pattern ?? UInt8(truncatingIfNeeded: $0 * 7 + $0 / 4096) }
    for hole in holes { for index in hole { bytes[Int(index)] = 0 } }
    self.holes = holes
  }

  var contents: [UInt8] { condition.withLock { bytes } }
  var writeCount: Int { condition.withLock { writes } }
  var flushCount: Int { condition.withLock { flushes } }
  var largestConcurrency: Int { condition.withLock { mostReadsAtOnce } }

  func waitForReads(_ count: Int) { condition.withLock { readsToWaitFor = count } }

  func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws -> [Extent] {
    condition.lock()
    readsInside += 1
    mostReadsAtOnce = max(mostReadsAtOnce, readsInside)
    condition.broadcast()
    let deadline = Date().addingTimeInterval(5)
    while readsToWaitFor > 0 && readsInside < readsToWaitFor && Date() < deadline {
      _ = condition.wait(until: min(deadline, Date().addingTimeInterval(0.05)))
    }
    if readsInside >= readsToWaitFor { readsToWaitFor = 0 }
    bytes.withUnsafeBytes {
      buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count]))
    }
    let layout = extents(offset..<(offset + UInt64(buffer.count)))
    readsInside -= 1
    condition.unlock()
    return layout
  }

  func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws {
    condition.withLock {
      bytes.withUnsafeMutableBytes {
        UnsafeMutableRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count]).copyMemory(from: buffer)
      }
      holes = holes.flatMap { subtract(offset..<(offset + UInt64(buffer.count)), from: $0) }
      writes += 1
      if durable { durableWrites += 1 }
    }
  }

  func writeZeroes(at offset: UInt64, count: UInt64, fast: Bool, durable: Bool) throws {
    try condition.withLock {
      if fast { throw BlockDeviceError(.notFast, "zeroing here is a write") }
      for index in offset..<(offset + count) { bytes[Int(index)] = 0 }
      writes += 1
    }
  }

  func trim(at offset: UInt64, count: UInt64, durable: Bool) throws {
    condition.withLock { writes += 1 }
  }

  func flush() throws { condition.withLock { flushes += 1 } }

  func allocation(at offset: UInt64, count: UInt64, limit: Int) throws -> [Extent] {
    condition.withLock { Array(extents(offset..<(offset + count)).prefix(limit)) }
  }

  private func extents(_ range: Range<UInt64>) -> [Extent] {
    var result: [Extent] = []
    var position = range.lowerBound
    for hole in holes.sorted(by: { $0.lowerBound < $1.lowerBound }) where hole.overlaps(range) {
      let start = max(hole.lowerBound, range.lowerBound)
      if start > position { result.append(Extent(length: start - position, isHole: false)) }
      let end = min(hole.upperBound, range.upperBound)
      result.append(Extent(length: end - start, isHole: true))
      position = end
    }
    if position < range.upperBound { result.append(Extent(length: range.upperBound - position, isHole: false)) }
    return result
  }

  private func subtract(_ cut: Range<UInt64>, from hole: Range<UInt64>) -> [Range<UInt64>] {
    guard cut.overlaps(hole) else { return [hole] }
    var parts: [Range<UInt64>] = []
    if hole.lowerBound < cut.lowerBound { parts.append(hole.lowerBound..<cut.lowerBound) }
    if cut.upperBound < hole.upperBound { parts.append(cut.upperBound..<hole.upperBound) }
    return parts
  }
}
