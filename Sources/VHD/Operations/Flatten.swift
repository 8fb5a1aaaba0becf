import Foundation

extension DiskChain {
  /// Writes what the chain reads into a new standalone fixed or dynamic disk. Blocks that read as
  /// zeros are not allocated in a dynamic result.
  @discardableResult
  public func flatten(to path: String, type: DiskType = .dynamic, progress: ProgressHandler? = nil) throws
    -> VirtualDisk
  {
    guard type != .differencing else {
      throw VHDError(path: path, field: "diskType", .invalidArgument, "a flattened disk is fixed or dynamic")
    }
    let target = try VirtualDisk.create(
      at: path, size: size, type: type, blockSize: UInt32(blockSize), exactSize: true)
    do {
      let output = DiskChain(layers: [target])
      try copyBlocks(progress: progress) { data, offset in
        try output.write(data, at: offset)
      }
      try target.synchronize()
      return target
    } catch {
      target.close()
      try? FileManager.default.removeItem(atPath: target.path)
      throw error
    }
  }

  /// Calls `write` for every block of the chain that holds data other than zeros, in order.
  ///
  /// With `wholeLayer`, a block that one layer holds entirely goes to it instead, unread (its layer,
  /// offset and length, and a block-sized buffer): a caller can copy it file to file. So does each
  /// run of sectors of a mixed block (runs of zeros are skipped: the caller's target must read as
  /// zeros there already, as a new file does). `blockDone` hears of each block that was not zeros
  /// once it is copied (its offset and length).
  func copyBlocks(
    progress: ProgressHandler?,
    wholeLayer: ((_ layer: Int, _ offset: UInt64, _ count: Int, _ buffer: IOBuffer) throws -> Void)? = nil,
    blockDone: ((_ offset: UInt64, _ count: Int) -> Void)? = nil,
    _ write: (UnsafeRawBufferPointer, UInt64) throws -> Void
  ) throws {
    let buffer = IOBuffer(count: blockSize)
    try progress?(0, size)
    // Reading runs this far ahead of copying (16 MiB of 2 MiB blocks).
    let lookahead = max(1, (16 << 20) / blockSize)
    for block in 0..<min(lookahead, blockCount) { prefetch(block: block) }
    for block in 0..<blockCount {
      prefetch(block: block + lookahead)
      let start = UInt64(block) * UInt64(blockSize)
      let count = Int(min(UInt64(blockSize), size - start))
      let source = try source(ofBlock: block)
      if case .layer(let index) = source, let wholeLayer {
        try wholeLayer(index, start, count, buffer)
      } else if source == .mixed, let wholeLayer, let pieces = try pieces(ofBlock: block) {
        // Each run of sectors comes straight from the layer that holds it; runs of zeros stay holes.
        for piece in pieces {
          guard let layer = piece.layer else { continue }
          try wholeLayer(layer, start + UInt64(piece.range.lowerBound), piece.range.count, buffer)
        }
      } else if source != .zeros {
        let data = buffer.slice(0..<count)
        try read(at: start, into: data)
        if !UnsafeRawBufferPointer(data).isAllZero {
          try write(UnsafeRawBufferPointer(data), start)
        }
      }
      if source != .zeros { blockDone?(start, count) }
      try progress?(start + UInt64(count), size)
    }
  }
}
