import Foundation

/// A disk and its parents, read as the one disk a VM sees: a sector comes from the nearest disk that
/// holds it, else zeros. Writes go to the leaf only.
///
/// Which layer holds each whole block is cached (the merged block map), so a read through a deep
/// chain costs about as much as a read of a single disk.
public final class DiskChain {
  /// The disks from the leaf (index 0) down to the base.
  public let layers: [VirtualDisk]
  private var blockMap: BlockMap

  public var leaf: VirtualDisk { layers[0] }
  public var base: VirtualDisk { layers[layers.count - 1] }
  public var size: UInt64 { leaf.size }
  public var depth: Int { layers.count }
  /// Absolute paths from the leaf down to the base.
  public var paths: [String] { layers.map(\.path) }

  init(layers: [VirtualDisk]) {
    self.layers = layers
    blockMap = BlockMap(layers: layers)
  }

  /// Opens `path` and every parent it names, checking each parent's identity and size, and refusing
  /// loops and absurd depth. Only the leaf is opened writable.
  public static func open(_ path: String, writable: Bool = false, options: OpenOptions = OpenOptions()) throws
    -> DiskChain
  {
    var layers = [try VirtualDisk.open(path, writable: writable, options: options)]
    var seenIDs: Set<UniqueID> = [layers[0].uniqueID]
    var seenPaths: Set<String> = [canonicalPath(layers[0].path)]
    let resolver = ParentResolver(options: options)
    do {
      while let child = layers.last, child.type == .differencing {
        guard layers.count < options.maximumDepth else {
          throw VHDError(
            path: layers[0].path, field: "chain", .chainTooDeep,
            "the chain is deeper than \(options.maximumDepth) disks; merge some of it first")
        }
        if let header = child.header, seenIDs.contains(header.parentUniqueID) {
          throw VHDError(
            path: child.path, field: "header.parentUniqueID", .parentLoop,
            "names parent id \(header.parentUniqueID), which is already in this chain (a parent loop)")
        }
        let parent = try resolver.openParent(of: child)
        layers.append(parent)
        guard seenPaths.insert(canonicalPath(parent.path)).inserted, seenIDs.insert(parent.uniqueID).inserted else {
          throw VHDError(
            path: child.path, field: "header.parentLocator", .parentLoop,
            "the parent \(parent.path) is already in this chain (a parent loop)")
        }
        guard parent.size == child.size else {
          throw VHDError(
            path: child.path, field: "footer.currentSize", .parentMismatch,
            "is \(child.size) bytes but its parent \(parent.path) is \(parent.size) bytes")
        }
      }
    } catch {
      layers.forEach { $0.close() }
      throw error
    }
    return DiskChain(layers: layers)
  }

  public func close() {
    layers.forEach { $0.close() }
  }

  /// Forces the leaf's writes to stable storage.
  public func synchronize() throws {
    try leaf.synchronize()
  }

  // MARK: Reading

  public func read(at offset: UInt64, count: Int) throws -> [UInt8] {
    // Before allocating: a count past the end must be an error, not a terabyte of memory.
    try checkRange(offset: offset, count: count)
    var bytes = [UInt8](repeating: 0, count: count)
    try bytes.withUnsafeMutableBytes { try read(at: offset, into: $0) }
    return bytes
  }

  /// Fills `buffer` with the disk's bytes at `offset`, a block at a time.
  public func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
    try checkRange(offset: offset, count: buffer.count)
    let blockSize = UInt64(blockMap.blockSize)
    var position = offset
    let end = offset + UInt64(buffer.count)
    while position < end {
      let block = Int(position / blockSize)
      let pieceEnd = min((UInt64(block) + 1) * blockSize, end)
      let piece = UnsafeMutableRawBufferPointer(
        rebasing: buffer[Int(position - offset)..<Int(pieceEnd - offset)])
      switch try blockMap.source(of: block) {
      case .zeros:
        piece.initializeMemory(as: UInt8.self, repeating: 0)
      case .layer(let index):
        try readWhole(layer: index, at: position, into: piece)
      case .mixed:
        try readThrough(layer: 0, at: position, into: piece)
      }
      position = pieceEnd
    }
  }

  /// Where a chain block's bytes come from, computed once per block.
  public func source(ofBlock block: Int) throws -> BlockMap.Source {
    try blockMap.source(of: block)
  }

  /// The size of the blocks `source(ofBlock:)` speaks of.
  public var blockSize: Int { blockMap.blockSize }
  public var blockCount: Int { Int((size + UInt64(blockSize) - 1) / UInt64(blockSize)) }

  /// Starts reading a chain block's data, from the layers that hold it, into the page cache. A copy
  /// that asks for a few blocks ahead keeps the storage busy while it copies, and reads the layers
  /// of a deep chain side by side rather than one small readahead at a time. Advice only.
  func prefetch(block: Int) {
    guard block < blockCount, let source = try? blockMap.source(of: block) else { return }
    switch source {
    case .zeros:
      return
    case .layer(let index):
      if layers[index].blockSize == blockSize { layers[index].prefetchData(block: block) }
    case .mixed:
      // Only the runs each layer gives (its bitmap is read now, and kept for the copy).
      guard let pieces = try? pieces(ofBlock: block) else { return }
      for piece in pieces {
        guard let index = piece.layer else { continue }
        layers[index].prefetchData(block: block, range: piece.range)
      }
    }
  }

  /// Which layer each byte range of a chain block comes from (nil: zeros), in order, covering the
  /// part of the block inside the disk. Resolved leaf first: a differencing layer takes the sector
  /// runs its bitmap holds among those still open, a dynamic or fixed layer takes all the rest.
  /// Nil when the layers' block sizes differ (then only `read` knows).
  func pieces(ofBlock block: Int) throws -> [(range: Range<Int>, layer: Int?)]? {
    guard blockMap.uniformBlocks else { return nil }
    let length = Int(min(UInt64(blockSize), size - UInt64(block) * UInt64(blockSize)))
    var open: [Range<Int>] = [0..<length]
    var pieces: [(range: Range<Int>, layer: Int?)] = []
    for (index, disk) in layers.enumerated() where !open.isEmpty {
      switch disk.type {
      case .fixed, .dynamic:
        let holds = disk.type == .fixed || disk.isAllocated(block)
        pieces += open.map { ($0, holds ? index : nil) }
        open = []
      case .differencing:
        guard disk.isAllocated(block) else { continue }
        let present = try disk.presentRanges(inBlock: block)
        var stillOpen: [Range<Int>] = []
        for range in open {
          var position = range.lowerBound
          for run in present where run.upperBound > range.lowerBound && run.lowerBound < range.upperBound {
            let start = max(run.lowerBound, range.lowerBound)
            let end = min(run.upperBound, range.upperBound)
            if start > position { stillOpen.append(position..<start) }
            pieces.append((start..<end, index))
            position = end
          }
          if position < range.upperBound { stillOpen.append(position..<range.upperBound) }
        }
        open = stillOpen
      }
    }
    pieces += open.map { ($0, nil) }
    return pieces.sorted { $0.range.lowerBound < $1.range.lowerBound }
  }

  /// Reads bytes that one layer holds entirely.
  private func readWhole(layer index: Int, at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
    let disk = layers[index]
    let block = Int(offset / UInt64(disk.blockSize))
    let inBlock = Int(offset - UInt64(block) * UInt64(disk.blockSize))
    try disk.readData(block: block, offsetInBlock: inBlock, into: buffer)
  }

  /// Copies `count` bytes at `offset`, which one layer holds entirely (`source` said `.layer`), into
  /// `file` at the same offset, file to file inside the kernel.
  func copyWhole(layer index: Int, at offset: UInt64, count: Int, into file: BlockFile, buffer: IOBuffer) throws {
    let disk = layers[index]
    let block = Int(offset / UInt64(disk.blockSize))
    let inBlock = Int(offset - UInt64(block) * UInt64(disk.blockSize))
    try file.copy(
      from: disk.file, at: disk.fileOffset(block: block, offsetInBlock: inBlock), to: offset, count: count,
      buffer: buffer)
  }

  /// Reads sector by sector run through the layers from `layer` down: the general path for blocks
  /// whose sectors come from several disks.
  private func readThrough(layer index: Int, at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
    guard index < layers.count else {
      buffer.initializeMemory(as: UInt8.self, repeating: 0)
      return
    }
    let disk = layers[index]
    let blockSize = UInt64(disk.blockSize)
    var position = offset
    let end = offset + UInt64(buffer.count)
    while position < end {
      let block = Int(position / blockSize)
      let blockStart = UInt64(block) * blockSize
      let pieceEnd = min(blockStart + blockSize, end)
      let piece = UnsafeMutableRawBufferPointer(
        rebasing: buffer[Int(position - offset)..<Int(pieceEnd - offset)])
      if disk.type == .fixed || (disk.type == .dynamic && disk.isAllocated(block)) {
        try disk.readData(block: block, offsetInBlock: Int(position - blockStart), into: piece)
      } else if !disk.isAllocated(block) {
        if disk.type == .dynamic {
          piece.initializeMemory(as: UInt8.self, repeating: 0)
        } else {
          try readThrough(layer: index + 1, at: position, into: piece)
        }
      } else {
        let bitmap = try disk.bitmap(of: block)
        let firstSector = Int(position - blockStart) / 512
        let lastSector = Int(pieceEnd - blockStart + 511) / 512
        for run in bitmap.runs(in: firstSector..<lastSector) {
          let runStart = max(blockStart + UInt64(run.sectors.lowerBound) * 512, position)
          let runEnd = min(blockStart + UInt64(run.sectors.upperBound) * 512, pieceEnd)
          let part = UnsafeMutableRawBufferPointer(
            rebasing: buffer[Int(runStart - offset)..<Int(runEnd - offset)])
          if run.present {
            try disk.readData(block: block, offsetInBlock: Int(runStart - blockStart), into: part)
          } else {
            try readThrough(layer: index + 1, at: runStart, into: part)
          }
        }
      }
      position = pieceEnd
    }
  }

  // MARK: Writing

  public func write(_ bytes: [UInt8], at offset: UInt64) throws {
    try bytes.withUnsafeBytes { try write($0, at: offset) }
  }

  /// Writes to the leaf. A differencing leaf stores whole sectors, so a write that starts or ends
  /// inside a sector first reads that sector through the chain.
  public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
    guard leaf.isWritable else {
      throw VHDError(path: leaf.path, field: "file", .readOnly, "the disk was opened read-only")
    }
    try checkRange(offset: offset, count: buffer.count)
    guard buffer.count > 0 else { return }
    let end = offset + UInt64(buffer.count)
    if leaf.type == .differencing && (offset % 512 != 0 || end % 512 != 0) {
      let alignedStart = offset / 512 * 512
      let alignedEnd = (end + 511) / 512 * 512
      var aligned = [UInt8](repeating: 0, count: Int(alignedEnd - alignedStart))
      try aligned.withUnsafeMutableBytes { whole in
        try read(at: alignedStart, into: UnsafeMutableRawBufferPointer(rebasing: whole[0..<512]))
        if alignedEnd - alignedStart > 512 {
          try read(at: alignedEnd - 512, into: UnsafeMutableRawBufferPointer(rebasing: whole[(whole.count - 512)...]))
        }
        UnsafeMutableRawBufferPointer(rebasing: whole[Int(offset - alignedStart)...]).copyMemory(from: buffer)
      }
      try aligned.withUnsafeBytes { try writeAligned($0, at: alignedStart) }
    } else {
      try writeAligned(buffer, at: offset)
    }
  }

  private func writeAligned(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
    let blockSize = UInt64(leaf.blockSize)
    var position = offset
    let end = offset + UInt64(buffer.count)
    while position < end {
      let block = Int(position / blockSize)
      let blockStart = UInt64(block) * blockSize
      let pieceEnd = min(blockStart + blockSize, end)
      let piece = UnsafeRawBufferPointer(rebasing: buffer[Int(position - offset)..<Int(pieceEnd - offset)])
      try leaf.writeData(block: block, offsetInBlock: Int(position - blockStart), from: piece)
      blockMap.invalidate(leafBlock: block, leafBlockSize: leaf.blockSize)
      position = pieceEnd
    }
  }

  func checkRange(offset: UInt64, count: Int) throws {
    try checkRange(offset: offset, count: UInt64(count))
  }

  func checkRange(offset: UInt64, count: UInt64) throws {
    guard offset <= size, count <= size - offset else {
      throw VHDError(
        path: leaf.path, field: "offset", .invalidArgument,
        "\(count) bytes at offset \(offset) lie outside the disk (\(size) bytes)")
    }
  }
}

func canonicalPath(_ path: String) -> String {
  URL(fileURLWithPath: path).resolvingSymlinksInPath().path
}
