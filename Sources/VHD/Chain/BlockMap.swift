/// The merged block map of a chain: for each block, whether its bytes are all zeros, all in one layer,
/// or mixed across layers. Computed on first use and kept, so a deep chain reads like a shallow one.
public struct BlockMap {
  public enum Source: Equatable, Sendable {
    case zeros
    /// Every byte of the block comes from this layer (0 is the leaf).
    case layer(Int)
    /// Sectors come from several layers; reads go sector run by sector run.
    case mixed
  }

  private let layers: [VirtualDisk]
  /// The block size the map is kept in: the leaf's.
  let blockSize: Int
  /// The map answers `.mixed` whenever sparse layers disagree on block size.
  let uniformBlocks: Bool
  private var sources: [Source?]

  init(layers: [VirtualDisk]) {
    self.layers = layers
    blockSize = layers[0].blockSize
    uniformBlocks = layers.allSatisfy { !$0.type.isSparse || $0.blockSize == layers[0].blockSize }
    let blocks = Int((layers[0].size + UInt64(blockSize) - 1) / UInt64(blockSize))
    sources = Array(repeating: nil, count: blocks)
  }

  mutating func source(of block: Int) throws -> Source {
    if let known = sources[block] { return known }
    let source = try compute(block)
    sources[block] = source
    return source
  }

  private func compute(_ block: Int) throws -> Source {
    guard uniformBlocks else { return .mixed }
    for (index, disk) in layers.enumerated() {
      switch disk.type {
      case .fixed:
        return .layer(index)
      case .dynamic:
        return disk.isAllocated(block) ? .layer(index) : .zeros
      case .differencing:
        guard disk.isAllocated(block) else { continue }
        let bitmap = try disk.bitmap(of: block)
        if bitmap.isFull { return .layer(index) }
        if !bitmap.isEmpty { return .mixed }
      }
    }
    return .zeros
  }

  /// Forgets what a write to the leaf may have changed.
  mutating func invalidate(leafBlock: Int, leafBlockSize: Int) {
    if leafBlockSize == blockSize {
      sources[leafBlock] = nil
    } else {
      sources = Array(repeating: nil, count: sources.count)
    }
  }
}
