extension DiskChain {
  /// Copies the sectors that each of `files` holds itself into this chain's leaf, in order (so a
  /// later file's sectors win). `files` are the differencing disks above the leaf, nearest first:
  /// afterwards the leaf reads what the topmost of them read. Used to merge several checkpoints at
  /// once: reads through those files do not change while they are copied (they still mask the
  /// leaf), so an interrupted fold can run again.
  public func fold(_ files: [String], options: OpenOptions = OpenOptions(), progress: ProgressHandler? = nil) throws
    -> UInt64
  {
    var disks: [VirtualDisk] = []
    defer { disks.forEach { $0.close() } }
    for path in files { disks.append(try VirtualDisk.open(path, options: options)) }
    let total = try disks.reduce(UInt64(0)) { $0 + (try $1.allocatedBytes()) }
    var copied: UInt64 = 0
    let buffer = IOBuffer(count: disks.map(\.blockSize).max() ?? blockSize)
    try progress?(0, total)
    for disk in disks {
      guard disk.type == .differencing, disk.size == size else {
        throw VHDError(
          path: disk.path, field: "footer.diskType", .invalidArgument,
          "only differencing disks of the same size (\(size) bytes) can be folded into \(leaf.path)")
      }
      for block in 0..<disk.blockCount where disk.isAllocated(block) {
        copied += try copyPresentSectors(of: disk, block: block, buffer: buffer)
        try progress?(copied, total)
      }
    }
    try synchronize()
    return copied
  }

  /// Writes the sectors `disk` itself holds in `block` into this chain at the same offsets; returns
  /// the bytes copied.
  func copyPresentSectors(of disk: VirtualDisk, block: Int, buffer: IOBuffer) throws -> UInt64 {
    let blockStart = disk.blockRange(block).lowerBound
    var copied: UInt64 = 0
    for range in try disk.presentRanges(inBlock: block) {
      let part = buffer.slice(0..<range.count)
      try disk.readData(block: block, offsetInBlock: range.lowerBound, into: part)
      try write(UnsafeRawBufferPointer(part), at: blockStart + UInt64(range.lowerBound))
      copied += UInt64(range.count)
    }
    return copied
  }

  /// The sector ranges (as byte offset and length, merged and in order) that the given layers hold
  /// themselves: what changed above a point in the chain.
  public static func changedRanges(of files: [String], options: OpenOptions = OpenOptions()) throws -> [Range<UInt64>] {
    var sectors: [Range<UInt64>] = []
    for path in files {
      let disk = try VirtualDisk.open(path, options: options)
      defer { disk.close() }
      guard disk.type != .fixed else {
        sectors.append(0..<disk.size)
        continue
      }
      for block in 0..<disk.blockCount where disk.isAllocated(block) {
        let range = disk.blockRange(block)
        if disk.type == .dynamic {
          sectors.append(range)
          continue
        }
        for present in try disk.presentRanges(inBlock: block) {
          sectors.append(
            (range.lowerBound + UInt64(present.lowerBound))..<(range.lowerBound + UInt64(present.upperBound)))
        }
      }
    }
    sectors.sort { $0.lowerBound < $1.lowerBound }
    var merged: [Range<UInt64>] = []
    for range in sectors {
      if let last = merged.last, last.upperBound >= range.lowerBound {
        merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
      } else {
        merged.append(range)
      }
    }
    return merged
  }
}
