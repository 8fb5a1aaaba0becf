/// The chain as a list of extents: which bytes no layer holds, and where the others lie. A server
/// maps a range once (touching the cached block map and bitmaps), then reads the extents with
/// positioned reads that share nothing, so several reads can run at once.
extension DiskChain {
  /// The extents of `count` bytes at `offset`, in order, adjacent runs of one source merged. Stops
  /// after `limit` extents (the last one returned still ends on a run boundary).
  public func extents(at offset: UInt64, count: UInt64, limit: Int = .max) throws -> [ChainExtent] {
    try checkRange(offset: offset, count: count)
    var result: [ChainExtent] = []
    let blockSize = UInt64(self.blockSize)
    var position = offset
    let end = offset + count
    while position < end && result.count <= limit {
      let block = Int(position / blockSize)
      let pieceEnd = min((UInt64(block) + 1) * blockSize, end)
      switch try source(ofBlock: block) {
      case .zeros:
        append(ChainExtent(offset: position, length: pieceEnd - position, source: .zeros), to: &result)
      case .layer(let index):
        append(
          ChainExtent(offset: position, length: pieceEnd - position, source: dataSource(layer: index, at: position)),
          to: &result)
      case .mixed:
        try mapThrough(layer: 0, from: position, to: pieceEnd, into: &result)
      }
      position = pieceEnd
    }
    if result.count > limit { result.removeLast(result.count - limit) }
    return result
  }

  /// Fills `buffer` with an extent's bytes (`buffer.count` may be shorter than the extent). Safe from
  /// several threads at once, and beside writes to other ranges: it only issues positioned reads.
  public func read(_ extent: ChainExtent, into buffer: UnsafeMutableRawBufferPointer) throws {
    precondition(UInt64(buffer.count) <= extent.length, "buffer longer than the extent")
    switch extent.source {
    case .zeros:
      buffer.initializeMemory(as: UInt8.self, repeating: 0)
    case .data(let layer, let fileOffset):
      try layers[layer].file.readConcurrently(at: fileOffset, into: buffer)
    }
  }

  /// Makes `count` bytes at `offset` read as zeros, writing only where some layer holds data there
  /// (a dynamic leaf skips zeros in unallocated blocks by itself). Returns the bytes it had to write.
  @discardableResult
  public func writeZeroes(at offset: UInt64, count: UInt64) throws -> UInt64 {
    let chunk = 1 << 20
    let zeros = [UInt8](repeating: 0, count: chunk)
    var written: UInt64 = 0
    try zeros.withUnsafeBytes { zeros in
      var position = offset
      let end = offset + count
      while position < end {
        // Map a bounded piece at a time, so a huge request needs no huge extent list.
        let pieceEnd = min(end, position + UInt64(blockSize) * 16)
        for extent in try extents(at: position, count: pieceEnd - position) {
          guard case .data = extent.source else { continue }
          var at = extent.offset
          while at < extent.end {
            let length = Int(min(UInt64(chunk), extent.end - at))
            try write(UnsafeRawBufferPointer(rebasing: zeros[0..<length]), at: at)
            written += UInt64(length)
            at += UInt64(length)
          }
        }
        position = pieceEnd
      }
    }
    return written
  }

  /// Gives back the file space of the leaf's own data in the range (its 4 KiB-aligned parts), which
  /// then reads as zeros: what an NBD TRIM allows, since the range's contents are undefined after it.
  /// No metadata changes (blocks stay allocated, bitmaps stay set), so the file stays valid at every
  /// moment; parents are never touched. Returns the bytes freed.
  @discardableResult
  public func discard(at offset: UInt64, count: UInt64) throws -> UInt64 {
    guard leaf.isWritable else {
      throw VHDError(path: leaf.path, field: "file", .readOnly, "the disk was opened read-only")
    }
    try checkRange(offset: offset, count: count)
    var freed: UInt64 = 0
    var position = offset
    let end = offset + count
    while position < end {
      let pieceEnd = min(end, position + UInt64(blockSize) * 16)
      for extent in try extents(at: position, count: pieceEnd - position) {
        guard case .data(layer: 0, let fileOffset) = extent.source else { continue }
        let start = (fileOffset + 4095) / 4096 * 4096
        let stop = (fileOffset + extent.length) / 4096 * 4096
        if stop > start && leaf.file.punchHole(at: start, count: stop - start) { freed += stop - start }
      }
      position = pieceEnd
    }
    return freed
  }

  /// Whether every byte of the range already reads as zeros because no layer holds it.
  public func isUnallocated(at offset: UInt64, count: UInt64) throws -> Bool {
    var position = offset
    let end = offset + count
    while position < end {
      let pieceEnd = min(end, position + UInt64(blockSize) * 16)
      for extent in try extents(at: position, count: pieceEnd - position) where extent.source != .zeros {
        return false
      }
      position = pieceEnd
    }
    return true
  }

  private func dataSource(layer index: Int, at offset: UInt64) -> ChainExtent.Source {
    let disk = layers[index]
    let block = Int(offset / UInt64(disk.blockSize))
    let inBlock = Int(offset - UInt64(block) * UInt64(disk.blockSize))
    return .data(layer: index, fileOffset: disk.fileOffset(block: block, offsetInBlock: inBlock))
  }

  private func append(_ extent: ChainExtent, to result: inout [ChainExtent]) {
    guard extent.length > 0 else { return }
    if let last = result.last, last.isContinued(by: extent) {
      result[result.count - 1].length += extent.length
    } else {
      result.append(extent)
    }
  }

  /// The sector-run walk of `readThrough`, recording sources instead of reading.
  private func mapThrough(layer index: Int, from start: UInt64, to end: UInt64, into result: inout [ChainExtent])
    throws
  {
    guard index < layers.count else {
      append(ChainExtent(offset: start, length: end - start, source: .zeros), to: &result)
      return
    }
    let disk = layers[index]
    let blockSize = UInt64(disk.blockSize)
    var position = start
    while position < end {
      let block = Int(position / blockSize)
      let blockStart = UInt64(block) * blockSize
      let pieceEnd = min(blockStart + blockSize, end)
      if disk.type == .fixed || (disk.type == .dynamic && disk.isAllocated(block)) {
        append(
          ChainExtent(offset: position, length: pieceEnd - position, source: dataSource(layer: index, at: position)),
          to: &result)
      } else if !disk.isAllocated(block) {
        if disk.type == .dynamic {
          append(ChainExtent(offset: position, length: pieceEnd - position, source: .zeros), to: &result)
        } else {
          try mapThrough(layer: index + 1, from: position, to: pieceEnd, into: &result)
        }
      } else {
        let bitmap = try disk.bitmap(of: block)
        let firstSector = Int(position - blockStart) / 512
        let lastSector = Int(pieceEnd - blockStart + 511) / 512
        for run in bitmap.runs(in: firstSector..<lastSector) {
          let runStart = max(blockStart + UInt64(run.sectors.lowerBound) * 512, position)
          let runEnd = min(blockStart + UInt64(run.sectors.upperBound) * 512, pieceEnd)
          if run.present {
            append(
              ChainExtent(offset: runStart, length: runEnd - runStart, source: dataSource(layer: index, at: runStart)),
              to: &result)
          } else {
            try mapThrough(layer: index + 1, from: runStart, to: runEnd, into: &result)
          }
        }
      }
      position = pieceEnd
    }
  }
}
