/// Reads a VHD file's metadata and checks every offset, size and count against the file and the spec
/// before anything uses it (DESIGN.md rule 3; VHD-FORMAT.md §11).
///
/// Problems that leave the structure unusable throw; the rest are collected in `problems`, so that
/// `open` can refuse the file and `check` can list them all.
struct DiskStructure {
  var footer: Footer
  var header: DynamicHeader?
  var table: BlockAllocationTable
  var problems: [VHDError] = []
  /// Informational findings that do not make the file unsound.
  var warnings: [String] = []

  static func read(from file: BlockFile, verifyChecksums: Bool) throws -> DiskStructure {
    let fileSize = file.size
    guard fileSize >= UInt64(Footer.size) else {
      throw VHDError(
        field: "footer", .truncated,
        "the file has \(fileSize) bytes, fewer than the 512-byte footer every VHD ends with")
    }
    let footerBytes = try file.read(at: fileSize - 512, count: 512, field: "footer")
    var problems: [VHDError] = []
    var warnings: [String] = []
    let footer: Footer
    do {
      footer = try Footer(decoding: footerBytes, verifyChecksum: verifyChecksums)
    } catch let error as VHDError where error.problem == .notAVHD {
      // A dynamic disk cut short still has its footer copy at offset 0.
      let copy = try file.read(at: 0, count: 512, field: "footer")
      if (try? Footer(decoding: copy, verifyChecksum: false)) != nil {
        throw VHDError(
          field: "footer", .truncated,
          "no footer at the end of the file, but a copy at offset 0: the file was truncated or not fully written")
      }
      throw error
    }

    guard footer.diskType.isSparse else {
      if fileSize - 512 < footer.currentSize {
        problems.append(
          VHDError(
            field: "footer.currentSize", .outOfBounds,
            "a fixed disk of \(footer.currentSize) bytes needs \(footer.currentSize + 512) bytes of file, found \(fileSize) (truncated?)"
          ))
      }
      if footer.dataOffset != UInt64.max && footer.dataOffset != 0xFFFF_FFFF {
        warnings.append("footer.dataOffset is \(hex(footer.dataOffset)); fixed disks normally store all ones")
      }
      return DiskStructure(
        footer: footer, header: nil, table: BlockAllocationTable(count: 0), problems: problems, warnings: warnings)
    }

    // Everything of a sparse disk lies between the footer copy and the final footer.
    let end = fileSize - 512
    let headerOffset = footer.dataOffset
    guard headerOffset >= 512, headerOffset % 512 == 0, headerOffset <= end, end - headerOffset >= 1024 else {
      throw VHDError(
        field: "footer.dataOffset", .outOfBounds,
        "the dynamic header offset \(headerOffset) is not a sector inside the file (\(fileSize) bytes)")
    }
    let copyBytes = try file.read(at: 0, count: 512, field: "footer copy")
    if copyBytes != footerBytes {
      warnings.append("the footer copy at offset 0 differs from the footer at the end; the end one is used")
    }
    let header = try DynamicHeader(
      decoding: try file.read(at: headerOffset, count: 1024, field: "header"), verifyChecksum: verifyChecksums)

    let blockSize = UInt64(header.blockSize)
    let neededEntries = (footer.currentSize + blockSize - 1) / blockSize
    guard UInt64(header.maxTableEntries) >= neededEntries else {
      throw VHDError(
        field: "header.maxTableEntries", .invalidField,
        "\(header.maxTableEntries) table entries of \(blockSize) bytes cannot cover a disk of \(footer.currentSize) bytes"
      )
    }
    let tableBytes = UInt64(header.maxTableEntries) * 4
    guard header.tableOffset >= 512, header.tableOffset <= end, tableBytes <= end - header.tableOffset else {
      throw VHDError(
        field: "header.maxTableEntries", .outOfBounds,
        "a table of \(header.maxTableEntries) entries at offset \(header.tableOffset) does not fit in a file of \(fileSize) bytes"
      )
    }
    let tableRange = header.tableOffset..<(header.tableOffset + tableBytes)
    let headerRange = headerOffset..<(headerOffset + 1024)
    if tableRange.overlaps(headerRange) || tableRange.overlaps(0..<512) {
      throw VHDError(
        field: "header.tableOffset", .invalidField, "the block table overlaps the footer copy or the header")
    }
    // Only the entries that cover the disk are read; the rest of a larger table is never used.
    let tableData = try file.read(at: header.tableOffset, count: Int(neededEntries) * 4, field: "BAT")
    let table = try BlockAllocationTable(decoding: tableData, count: Int(neededEntries))

    var metadata: [(range: Range<UInt64>, name: String)] = [
      (0..<512, "the footer copy"), (headerRange, "the dynamic header"), (tableRange, "the block table"),
    ]
    if footer.diskType == .differencing {
      for (index, locator) in header.parentLocators.enumerated() where locator.isUsed {
        let field = "header.parentLocator[\(index)]"
        guard locator.dataLength <= ParentLocator.maximumDataLength else {
          problems.append(
            VHDError(field: field, .invalidField, "data length \(locator.dataLength) is larger than 64 KiB"))
          continue
        }
        guard locator.dataOffset <= end, UInt64(locator.dataLength) <= end - locator.dataOffset else {
          problems.append(
            VHDError(
              field: field, .outOfBounds,
              "\(locator.platform) data at \(locator.dataOffset) (\(locator.dataLength) bytes) lies outside the file"))
          continue
        }
        metadata.append((locator.dataOffset..<(locator.dataOffset + UInt64(locator.dataLength)), "a parent locator"))
      }
      if header.parentUniqueID.isZero && header.parentUnicodeName.isEmpty
        && !header.parentLocators.contains(where: \.isUsed)
      {
        problems.append(
          VHDError(
            field: "header.parentUniqueID", .missingParent,
            "a differencing disk with no parent id, name or locator: its parent cannot be found"))
      }
    }

    // Every block must lie inside the file, clear of the metadata and of every other block.
    let bitmapSize = UInt64(header.bitmapSize)
    var blocks: [(start: UInt64, end: UInt64, index: Int)] = []
    for index in 0..<table.entries.count where table.isAllocated(index) {
      let start = UInt64(table[index]) * 512
      let dataBytes = min(blockSize, footer.currentSize - UInt64(index) * blockSize)
      let blockEnd = start + bitmapSize + dataBytes
      guard blockEnd <= end else {
        problems.append(
          VHDError(
            field: "BAT[\(index)]", .outOfBounds,
            "block \(index) at byte \(start) runs past the end of the data (file of \(fileSize) bytes; truncated?)"))
        continue
      }
      if let clash = metadata.first(where: { $0.range.overlaps(start..<blockEnd) }) {
        problems.append(
          VHDError(field: "BAT[\(index)]", .invalidField, "block \(index) at byte \(start) overlaps \(clash.name)"))
        continue
      }
      blocks.append((start, blockEnd, index))
    }
    blocks.sort { $0.start < $1.start }
    for (previous, next) in zip(blocks, blocks.dropFirst()) where next.start < previous.end {
      problems.append(
        VHDError(
          field: "BAT[\(next.index)]", .invalidField,
          "block \(next.index) at byte \(next.start) overlaps block \(previous.index)"))
    }
    return DiskStructure(footer: footer, header: header, table: table, problems: problems, warnings: warnings)
  }
}
