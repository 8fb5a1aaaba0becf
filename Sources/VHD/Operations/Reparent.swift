import Foundation

extension VirtualDisk {
  /// Points this differencing disk at another parent: its parent unique id, name, time stamp and
  /// both locators are rewritten. The caller guarantees that the new parent reads, where this disk
  /// has no sectors, exactly what the old one did (after a merge or an absorb), so reads do not change.
  ///
  /// The locator data is written before the header that names the new id: a crash in between
  /// leaves a header that still names the old parent, which its bare name still finds.
  public func setParent(_ parentPath: String, options: OpenOptions = OpenOptions()) throws {
    guard type == .differencing, var header else {
      throw VHDError(path: path, field: "footer.diskType", .invalidArgument, "only a differencing disk has a parent")
    }
    precondition(isWritable, "setParent on a disk opened read-only")
    let parent = try VirtualDisk.open(parentPath, options: options)
    defer { parent.close() }
    guard parent.size == size else {
      throw VHDError(
        path: path, field: "footer.currentSize", .parentMismatch,
        "is \(size) bytes but the new parent \(parent.path) is \(parent.size) bytes")
    }
    let relative = relativeWindowsPath(from: (path as NSString).deletingLastPathComponent, to: parent.path)
    let paths: [ParentLocator.Platform: [UInt8]] = [
      .absoluteWindows: ParentLocator.encodePath(parent.path),
      .relativeWindows: ParentLocator.encodePath(relative),
    ]
    for (index, locator) in header.parentLocators.enumerated() {
      guard let data = paths[locator.platform] else {
        if locator.isUsed { header.parentLocators[index].platform = .none }
        continue
      }
      // The space is taken in bytes, the smaller reading of the field, so nothing past it is touched.
      guard data.count <= Int(locator.dataSpace) else {
        throw VHDError(
          path: path, field: "header.parentLocator[\(index)]", .outOfBounds,
          "the path \(parent.path) does not fit in the \(locator.dataSpace) bytes reserved for it")
      }
      try file.write(data, at: locator.dataOffset)
      header.parentLocators[index].dataLength = UInt32(data.count)
    }
    header.parentUniqueID = parent.uniqueID
    header.parentUnicodeName = (parent.path as NSString).lastPathComponent
    header.parentTimestamp = VHDTimestamp.from(Date(timeIntervalSince1970: parent.file.modificationTime))
    try file.write(header.encoded(), at: footer.dataOffset)
    try file.synchronize()
    self.header = header
  }
}

extension DiskChain {
  /// Copies into the leaf (a differencing disk) every sector its parent holds that the leaf does not,
  /// then points the leaf at its grandparent; the parent is no longer needed by this disk. Used to
  /// remove a checkpoint in the middle of a tree: the parent's changes move up into its single child.
  ///
  /// Reads do not change at any point: copied sectors hold what the chain read there already, so an
  /// interrupted absorb can run again. The parent file is left for the caller to delete.
  public func absorbParent(progress: ProgressHandler? = nil) throws {
    guard leaf.isWritable, leaf.type == .differencing, layers.count >= 3, layers[1].type == .differencing else {
      throw VHDError(
        path: leaf.path, field: "chain", .invalidArgument,
        "absorbing a parent needs a writable differencing disk whose parent is differencing too")
    }
    let parent = layers[1]
    guard parent.blockSize == leaf.blockSize else {
      throw VHDError(
        path: leaf.path, field: "header.blockSize", .unsupported,
        "has \(leaf.blockSize)-byte blocks but its parent \(parent.blockSize)-byte blocks")
    }
    let blocks = (0..<parent.blockCount).filter { parent.isAllocated($0) }
    let buffer = IOBuffer(count: parent.blockSize)
    for (done, block) in blocks.enumerated() {
      let blockRange = parent.blockRange(block)
      let sectorsInDisk = Int(blockRange.count + 511) / 512
      let parentBitmap = try parent.bitmap(of: block)
      let leafBitmap = try leaf.bitmap(of: block)
      // Sectors the parent holds and the leaf does not: read through the chain (which shows the
      // parent's data there) and write them into the leaf.
      var wanted = SectorBitmap(sectorCount: parentBitmap.sectorCount, byteCount: parentBitmap.bytes.count)
      for sector in 0..<sectorsInDisk where parentBitmap.contains(sector) && !leafBitmap.contains(sector) {
        wanted.insert(sector..<(sector + 1))
      }
      for run in wanted.runs(in: 0..<sectorsInDisk) where run.present {
        let start = blockRange.lowerBound + UInt64(run.sectors.lowerBound) * 512
        let count = min(run.sectors.count * 512, Int(blockRange.upperBound - start))
        let part = buffer.slice(0..<count)
        try read(at: start, into: part)
        try write(UnsafeRawBufferPointer(part), at: start)
      }
      try progress?(UInt64(done + 1), UInt64(blocks.count))
    }
    try synchronize()
    try leaf.setParent(layers[2].path)
  }
}
