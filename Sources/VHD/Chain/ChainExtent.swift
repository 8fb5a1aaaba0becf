/// A run of a chain's bytes and where they live: nowhere (they read as zeros because no layer holds
/// them), or in one layer's file at a file offset.
public struct ChainExtent: Equatable, Sendable {
  public enum Source: Equatable, Sendable {
    /// No layer holds these bytes: they read as zeros.
    case zeros
    /// The bytes lie in layer `layer` (0 is the leaf) at `fileOffset` of its file, contiguously.
    case data(layer: Int, fileOffset: UInt64)
  }

  /// Where the run starts in the disk.
  public var offset: UInt64
  public var length: UInt64
  public var source: Source

  public init(offset: UInt64, length: UInt64, source: Source) {
    self.offset = offset
    self.length = length
    self.source = source
  }

  public var end: UInt64 { offset + length }

  /// Whether `next`, which starts where this one ends, continues it (same layer, contiguous bytes).
  func isContinued(by next: ChainExtent) -> Bool {
    switch (source, next.source) {
    case (.zeros, .zeros): return true
    case (.data(let layer, let fileOffset), .data(let nextLayer, let nextOffset)):
      return layer == nextLayer && fileOffset + length == nextOffset
    default: return false
    }
  }
}
