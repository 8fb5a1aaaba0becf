import Foundation

extension VirtualDisk {
  /// Creates a fixed or dynamic disk of at least `size` bytes. The file must not exist yet.
  ///
  /// The size is rounded up to a whole CHS geometry (`DiskGeometry.rounding(size:)`, at most
  /// 8,160 bytes for disks up to 127 GiB), so that every reader sees the same size; the new disk's
  /// `size` says what it became. `exactSize` keeps the size as given (a flattened chain keeps the
  /// size its VM saw).
  ///
  /// Layout of a dynamic disk: footer copy (0), header (512), block table (1536), then blocks whose
  /// data starts on 4 KiB boundaries, and the footer at the end. A fixed disk is a sparse file of
  /// `size` bytes followed by the footer, so creating it is instant.
  @discardableResult
  public static func create(
    at path: String, size requestedSize: UInt64, type: DiskType = .dynamic,
    blockSize: UInt32 = DynamicHeader.defaultBlockSize, exactSize: Bool = false
  ) throws -> VirtualDisk {
    let absolute = absolutePath(path)
    try validate(size: requestedSize, path: absolute)
    // Rounding never passes the format's limit: sizes past the largest geometry stay as they are.
    let size = exactSize ? requestedSize : DiskGeometry.rounding(size: requestedSize).size
    guard type != .differencing else {
      throw VHDError(
        path: absolute, field: "diskType", .invalidArgument, "a differencing disk is created over a parent")
    }
    try validate(blockSize: blockSize, path: absolute)
    let file = try BlockFile(creatingAt: absolute)
    do {
      let now = VHDTimestamp.from(Date())
      if type == .fixed {
        let footer = Footer(diskType: .fixed, size: size, timestamp: now)
        try file.resize(to: size)
        try file.write(footer.encoded(), at: size)
        return VirtualDisk(file: file, footer: footer, header: nil, table: BlockAllocationTable(count: 0))
      }
      let entries = Int((size + UInt64(blockSize) - 1) / UInt64(blockSize))
      let header = DynamicHeader(tableOffset: 1536, maxTableEntries: UInt32(entries), blockSize: blockSize)
      return try writeSparse(file: file, size: size, type: .dynamic, header: header, locatorData: [], timestamp: now)
    } catch {
      file.close()
      try? FileManager.default.removeItem(atPath: absolute)
      throw error
    }
  }

  /// Creates a differencing disk over `parentPath` (which must open as a sound chain). Its header
  /// names the parent by unique id and file name, with both an absolute (`W2ku`) and a relative
  /// (`W2ru`) locator, so the pair still opens after their folder is moved.
  @discardableResult
  public static func createDifferencing(
    at path: String, parent parentPath: String, options: OpenOptions = OpenOptions()
  ) throws -> VirtualDisk {
    let absolute = absolutePath(path)
    let parentChain = try DiskChain.open(parentPath, options: options)
    defer { parentChain.close() }
    let parent = parentChain.leaf
    guard parent.path != absolute else {
      throw VHDError(path: absolute, field: "parent", .parentLoop, "a disk cannot be its own parent")
    }
    let blockSize = parent.header?.blockSize ?? DynamicHeader.defaultBlockSize
    let entries = Int((parent.size + UInt64(blockSize) - 1) / UInt64(blockSize))
    var header = DynamicHeader(tableOffset: 1536, maxTableEntries: UInt32(entries), blockSize: blockSize)
    header.parentUniqueID = parent.uniqueID
    header.parentTimestamp = VHDTimestamp.from(Date(timeIntervalSince1970: parent.file.modificationTime))
    header.parentUnicodeName = (parent.path as NSString).lastPathComponent
    let relative = relativeWindowsPath(from: (absolute as NSString).deletingLastPathComponent, to: parent.path)
    let locatorData = [
      (ParentLocator.Platform.absoluteWindows, ParentLocator.encodePath(parent.path)),
      (ParentLocator.Platform.relativeWindows, ParentLocator.encodePath(relative)),
    ]
    let file = try BlockFile(creatingAt: absolute)
    do {
      return try writeSparse(
        file: file, size: parent.size, type: .differencing, header: header, locatorData: locatorData,
        timestamp: VHDTimestamp.from(Date()))
    } catch {
      file.close()
      try? FileManager.default.removeItem(atPath: absolute)
      throw error
    }
  }

  private static func writeSparse(
    file: BlockFile, size: UInt64, type: DiskType, header: DynamicHeader,
    locatorData: [(ParentLocator.Platform, [UInt8])], timestamp: UInt32
  ) throws -> VirtualDisk {
    var header = header
    let table = BlockAllocationTable(count: Int(header.maxTableEntries))
    var offset = header.tableOffset + UInt64(BlockAllocationTable.byteSize(entries: table.entries.count))
    for (index, (platform, data)) in locatorData.enumerated() {
      // Space is given in bytes, as Windows writes it; readers accept either unit. It leaves room
      // for a longer path when the disk is moved onto another parent; unwritten, it stays a hole.
      let space = UInt32(max(VirtualDisk.locatorSpace, (data.count + 511) / 512 * 512))
      header.parentLocators[index] = ParentLocator(
        platform: platform, dataSpace: space, dataLength: UInt32(data.count), dataOffset: offset)
      try file.write(data, at: offset)
      offset += UInt64(space)
    }
    let footer = Footer(diskType: type, size: size, timestamp: timestamp, dataOffset: 512)
    let footerBytes = footer.encoded()
    try file.write(footerBytes, at: 0)
    try file.write(header.encoded(), at: 512)
    try file.write(table.encoded(), at: header.tableOffset)
    try file.write(footerBytes, at: offset)
    return VirtualDisk(file: file, footer: footer, header: header, table: table)
  }

  /// Bytes reserved for each parent locator's path.
  static let locatorSpace = 4096

  static func validate(size: UInt64, path: String) throws {
    guard size > 0, size % 512 == 0, size <= Footer.maximumDiskSize else {
      throw VHDError(
        path: path, field: "size", .invalidArgument,
        "a disk size must be a positive multiple of 512 bytes up to 2040 GiB, not \(size)")
    }
  }

  static func validate(blockSize: UInt32, path: String) throws {
    guard blockSize >= 512, blockSize.nonzeroBitCount == 1, blockSize <= DynamicHeader.maximumBlockSize else {
      throw VHDError(
        path: path, field: "blockSize", .invalidArgument,
        "a block size must be a power of two from 512 bytes to 256 MiB, not \(blockSize)")
    }
  }
}

/// The path of `target` relative to `folder`, in the Windows form a `W2ru` locator holds
/// (`.\parent.vhd`, `..\base\parent.vhd`).
func relativeWindowsPath(from folder: String, to target: String) -> String {
  let from = URL(fileURLWithPath: folder).standardizedFileURL.pathComponents
  let to = URL(fileURLWithPath: target).standardizedFileURL.pathComponents
  var common = 0
  while common < from.count, common < to.count - 1, from[common] == to[common] { common += 1 }
  let ups = Array(repeating: "..", count: from.count - common)
  let steps = ups.isEmpty ? ["."] + to[common...] : ups + to[common...]
  return steps.joined(separator: "\\")
}
