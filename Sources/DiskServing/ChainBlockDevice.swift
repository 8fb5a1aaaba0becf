import Foundation
import NBD
import VHD

/// A VHD chain as the block device the NBD server serves.
///
/// Reads map their range under the lock (the chain's block map and bitmap caches are shared state)
/// and then read the mapped extents with positioned reads outside it, so reads run in parallel.
/// Writes, zeroing and the allocation they cause run under the lock, one at a time: the engine
/// appends blocks and updates bitmaps in an order that keeps the file valid at every moment.
public final class ChainBlockDevice: BlockDevice, @unchecked Sendable {
  private let lock = NSLock()
  private let chain: DiskChain
  public let size: UInt64
  public let isReadOnly: Bool
  /// Trim frees the leaf's file space where it holds the range (see `DiskChain.discard`).
  public var canTrim: Bool { !isReadOnly }

  public var leafPath: String { chain.leaf.path }
  public var depth: Int { chain.depth }

  /// The longest range one allocation query maps (a client asking for more gets a shorter answer).
  private static let longestAllocationQuery: UInt64 = 1 << 30

  public init(path: String, readOnly: Bool, options: OpenOptions = OpenOptions()) throws {
    chain = try DiskChain.open(path, writable: !readOnly, options: options)
    size = chain.size
    isReadOnly = readOnly
  }

  public func close() {
    lock.withLock { chain.close() }
  }

  public func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws -> [Extent] {
    try translatingErrors {
      let extents = try lock.withLock { try chain.extents(at: offset, count: UInt64(buffer.count)) }
      var position = 0
      for extent in extents {
        let end = position + Int(extent.length)
        try chain.read(extent, into: UnsafeMutableRawBufferPointer(rebasing: buffer[position..<end]))
        position = end
      }
      return extents.map { Extent(length: $0.length, isHole: $0.source == .zeros) }
    }
  }

  public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws {
    try translatingErrors {
      try lock.withLock { try chain.write(buffer, at: offset) }
      if durable { try chain.synchronize() }
    }
  }

  public func writeZeroes(at offset: UInt64, count: UInt64, fast: Bool, durable: Bool) throws {
    try translatingErrors {
      let written = try lock.withLock { () -> UInt64 in
        if fast, try !chain.isUnallocated(at: offset, count: count) {
          throw BlockDeviceError(
            .notFast, "zeroing this range means writing zeros over data; it is not faster than a write")
        }
        return try chain.writeZeroes(at: offset, count: count)
      }
      if durable && written > 0 { try chain.synchronize() }
    }
  }

  public func trim(at offset: UInt64, count: UInt64, durable: Bool) throws {
    try translatingErrors {
      let freed = try lock.withLock { try chain.discard(at: offset, count: count) }
      if durable && freed > 0 { try chain.synchronize() }
    }
  }

  public func flush() throws {
    try translatingErrors { try chain.synchronize() }
  }

  public func allocation(at offset: UInt64, count: UInt64, limit: Int) throws -> [Extent] {
    try translatingErrors {
      let extents = try lock.withLock {
        try chain.extents(at: offset, count: min(count, Self.longestAllocationQuery), limit: limit)
      }
      return extents.map { Extent(length: $0.length, isHole: $0.source == .zeros) }
    }
  }

  private func translatingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch let error as VHDError {
      switch error.problem {
      case .invalidArgument: throw BlockDeviceError(.invalidArgument, error.description)
      case .readOnly: throw BlockDeviceError(.readOnly, error.description)
      default:
        let noSpace = error.detail.contains("No space") || error.detail.contains("ENOSPC")
        throw BlockDeviceError(noSpace ? .noSpace : .io, error.description)
      }
    }
  }
}
