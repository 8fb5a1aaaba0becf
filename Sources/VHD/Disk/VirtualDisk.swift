import Foundation

/// One VHD file: its footer, dynamic header and block table, and reads and writes of its own blocks.
///
/// A `VirtualDisk` knows nothing of parents: `DiskChain` combines disks into what a VM sees. Data
/// moves a block (or a run of sectors inside one) at a time with positioned I/O.
public final class VirtualDisk {
  /// The absolute path of the file.
  public let path: String
  public private(set) var footer: Footer
  /// Present for dynamic and differencing disks.
  public internal(set) var header: DynamicHeader?
  public private(set) var table: BlockAllocationTable
  let file: BlockFile
  private var bitmaps: [Int: SectorBitmap] = [:]

  /// Fixed disks have no blocks of their own; they are walked in blocks of this size.
  static let fixedBlockSize = Int(DynamicHeader.defaultBlockSize)

  public var type: DiskType { footer.diskType }
  public var size: UInt64 { footer.currentSize }
  public var uniqueID: UniqueID { footer.uniqueID }
  public var isWritable: Bool { file.isWritable }
  public var fileSize: UInt64 { file.size }
  /// Bytes the file takes on its file system (holes excluded).
  public var spaceOnDisk: UInt64 { file.allocatedBytes }
  public var blockSize: Int { header.map { Int($0.blockSize) } ?? VirtualDisk.fixedBlockSize }
  public var blockCount: Int { Int((size + UInt64(blockSize) - 1) / UInt64(blockSize)) }

  init(file: BlockFile, footer: Footer, header: DynamicHeader?, table: BlockAllocationTable) {
    self.path = file.path
    self.file = file
    self.footer = footer
    self.header = header
    self.table = table
  }

  /// Opens and validates one VHD file (not its parents: see `DiskChain.open`).
  public static func open(_ path: String, writable: Bool = false, options: OpenOptions = OpenOptions()) throws
    -> VirtualDisk
  {
    let absolute = absolutePath(path)
    let file = try BlockFile(openingAt: absolute, writable: writable)
    do {
      let layout = try DiskStructure.read(from: file, verifyChecksums: options.verifyChecksums)
      if let problem = layout.problems.first { throw problem }
      let disk = VirtualDisk(file: file, footer: layout.footer, header: layout.header, table: layout.table)
      if writable && disk.footer.savedState {
        throw VHDError(
          path: absolute, field: "footer.savedState", .readOnly,
          "the disk belongs to a VM in saved state; resume or discard the saved state before writing to it")
      }
      return disk
    } catch let error as VHDError {
      file.close()
      throw error.at(absolute)
    }
  }

  public func close() { file.close() }

  /// Forces everything written so far to stable storage.
  public func synchronize() throws { try file.synchronize() }

  // MARK: Blocks

  public func isAllocated(_ block: Int) -> Bool {
    type == .fixed || table.isAllocated(block)
  }

  /// The sector bitmap of an allocated block (all set for fixed disks), cached after the first read.
  public func bitmap(of block: Int) throws -> SectorBitmap {
    guard let header, table.isAllocated(block) else {
      return SectorBitmap(sectorCount: blockSize / 512, byteCount: blockSize / 4096 + 1, allSet: type != .differencing)
    }
    if let cached = bitmaps[block] { return cached }
    let bytes = try file.read(at: bitmapOffset(block), count: header.bitmapSize, field: "block[\(block)].bitmap")
    let bitmap = SectorBitmap(bytes: bytes, sectorCount: header.sectorsPerBlock)
    bitmaps[block] = bitmap
    return bitmap
  }

  /// The byte ranges, as offsets inside `block`, of the sectors this file holds there (its bitmap's
  /// runs of set bits, clamped to the disk's end).
  public func presentRanges(inBlock block: Int) throws -> [Range<Int>] {
    let length = Int(blockRange(block).count)
    return try bitmap(of: block).runs(in: 0..<((length + 511) / 512)).filter(\.present).map {
      ($0.sectors.lowerBound * 512)..<min($0.sectors.upperBound * 512, length)
    }
  }

  /// The byte range of `block` that lies inside the disk (the last block may reach past the end).
  func blockRange(_ block: Int) -> Range<UInt64> {
    let start = UInt64(block) * UInt64(blockSize)
    return start..<min(start + UInt64(blockSize), size)
  }

  private func bitmapOffset(_ block: Int) -> UInt64 { UInt64(table[block]) * 512 }

  /// Where the byte at `offsetInBlock` of an allocated block lives in the file.
  func fileOffset(block: Int, offsetInBlock: Int) -> UInt64 {
    if let header {
      return bitmapOffset(block) + UInt64(header.bitmapSize) + UInt64(offsetInBlock)
    }
    return UInt64(block) * UInt64(blockSize) + UInt64(offsetInBlock)
  }

  /// Reads bytes of an allocated block from this file alone.
  func readData(block: Int, offsetInBlock: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
    try file.read(at: fileOffset(block: block, offsetInBlock: offsetInBlock), into: buffer)
  }

  /// Writes bytes into a block of this file, allocating the block first when needed. In a
  /// differencing disk the written sectors are marked present; the range must be sector aligned there.
  func writeData(block: Int, offsetInBlock: Int, from buffer: UnsafeRawBufferPointer) throws {
    precondition(isWritable, "write to a disk opened read-only")
    if type == .fixed {
      try file.write(buffer, at: fileOffset(block: block, offsetInBlock: offsetInBlock))
      return
    }
    if !table.isAllocated(block) {
      // A dynamic disk reads zeros where nothing is allocated: writing zeros there changes nothing.
      if type == .dynamic && UnsafeRawBufferPointer(buffer).isAllZero { return }
      try allocate(block)
    }
    try file.write(buffer, at: fileOffset(block: block, offsetInBlock: offsetInBlock))
    if type == .differencing {
      precondition(offsetInBlock % 512 == 0 && buffer.count % 512 == 0, "differencing writes are sector aligned")
      var bitmap = try self.bitmap(of: block)
      let sectors = (offsetInBlock / 512)..<((offsetInBlock + buffer.count) / 512)
      let before = bitmap
      bitmap.insert(sectors)
      if bitmap != before {
        // Data first, then the bits that make it visible: a crash in between leaves the old content.
        try file.write(bitmap.bytes, at: bitmapOffset(block))
        bitmaps[block] = bitmap
      }
    }
  }

  /// Where an allocated block's data can be overwritten in place without touching any metadata: a
  /// fixed disk's block, or a dynamic disk's allocated block (its bitmap is all set). Nil otherwise.
  func inPlaceDataOffset(block: Int) -> UInt64? {
    switch type {
    case .fixed: return fileOffset(block: block, offsetInBlock: 0)
    case .dynamic: return table.isAllocated(block) ? fileOffset(block: block, offsetInBlock: 0) : nil
    case .differencing: return nil
    }
  }

  /// Copies the first `count` data bytes of `source`'s allocated `block` to `fileOffset` of this
  /// file (an offset from `inPlaceDataOffset`).
  func copyData(from source: VirtualDisk, block: Int, count: Int, to fileOffset: UInt64, buffer: IOBuffer) throws {
    try file.copy(
      from: source.file, at: source.fileOffset(block: block, offsetInBlock: 0), to: fileOffset, count: count,
      buffer: buffer)
    file.startWriteback(at: fileOffset, count: count)
  }

  /// Starts writing an allocated block's data back now (see `BlockFile.startWriteback`).
  func startWriteback(block: Int) {
    guard isAllocated(block) else { return }
    file.startWriteback(at: fileOffset(block: block, offsetInBlock: 0), count: Int(blockRange(block).count))
  }

  /// Starts reading an allocated block's data (or the part `range` of it) into the page cache (see
  /// `BlockFile.prefetch`).
  func prefetchData(block: Int, range: Range<Int>? = nil) {
    guard isAllocated(block) else { return }
    let part = range ?? 0..<Int(blockRange(block).count)
    file.prefetch(at: fileOffset(block: block, offsetInBlock: part.lowerBound), count: part.count)
  }

  /// Drops the page cache of a block's data (see `BlockFile.dropCache`).
  func dropCachedData(block: Int, count: Int) {
    file.dropCache(at: fileOffset(block: block, offsetInBlock: 0), count: count)
  }

  /// Appends a block: a new footer at the new end first, so the file always ends in a valid footer;
  /// then the block's bitmap; last the BAT entry that makes the block part of the disk.
  private func allocate(_ block: Int) throws {
    guard let header else { return }
    let footerOffset = file.size - UInt64(Footer.size)
    let bitmapSize = UInt64(header.bitmapSize)
    // Block data starts on a 4 KiB boundary, as Windows writes it.
    let bitmapStart = (footerOffset + bitmapSize + 4095) / 4096 * 4096 - bitmapSize
    let blockEnd = bitmapStart + bitmapSize + UInt64(header.blockSize)
    guard bitmapStart / 512 < UInt64(BlockAllocationTable.unallocated) else {
      throw VHDError(path: path, field: "BAT[\(block)]", .outOfBounds, "the file is too large for another block")
    }
    try file.write(footer.encoded(), at: blockEnd)
    if bitmapStart > footerOffset {
      try file.write([UInt8](repeating: 0, count: Footer.size), at: footerOffset)
    }
    let bitmap = SectorBitmap(
      sectorCount: header.sectorsPerBlock, byteCount: header.bitmapSize, allSet: type == .dynamic)
    try file.write(bitmap.bytes, at: bitmapStart)
    table[block] = UInt32(bitmapStart / 512)
    var entry = [UInt8](repeating: 0, count: 4)
    entry.setBigEndian(table[block], at: 0)
    try file.write(entry, at: header.tableOffset + UInt64(block) * 4)
    bitmaps[block] = bitmap
  }

  // MARK: Accounting

  /// Bytes of disk data this file holds: allocated blocks of a dynamic disk, present sectors of a
  /// differencing disk, everything of a fixed disk.
  public func allocatedBytes() throws -> UInt64 {
    switch type {
    case .fixed:
      return size
    case .dynamic:
      return (0..<blockCount).reduce(0) { total, block in
        total + (table.isAllocated(block) ? UInt64(blockRange(block).count) : 0)
      }
    case .differencing:
      var total: UInt64 = 0
      for block in 0..<blockCount where table.isAllocated(block) {
        total += UInt64(try bitmap(of: block).presentCount) * 512
      }
      return total
    }
  }
}

/// Makes `path` absolute against the current directory and removes `.` and `..` steps.
public func absolutePath(_ path: String) -> String {
  let url =
    path.hasPrefix("/")
    ? URL(fileURLWithPath: path)
    : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(path)
  return url.standardizedFileURL.path
}
