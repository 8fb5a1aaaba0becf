/// The Block Allocation Table: for each block, the sector offset of its bitmap, or unallocated.
public struct BlockAllocationTable: Equatable, Sendable {
  public static let unallocated: UInt32 = 0xFFFF_FFFF

  public var entries: [UInt32]

  public init(count: Int) {
    entries = Array(repeating: BlockAllocationTable.unallocated, count: count)
  }

  /// Decodes `count` entries; `bytes` must hold them all (a short table is refused, never read past).
  public init(decoding bytes: [UInt8], count: Int) throws {
    guard count >= 0, count <= bytes.count / 4 else {
      throw VHDError(
        field: "BAT", .truncated, "a table of \(count) entries needs \(max(count, 0) * 4) bytes, found \(bytes.count)")
    }
    entries = bytes.bigEndianWords(count: count)
  }

  /// The table padded with unallocated entries to a whole number of sectors.
  public func encoded() -> [UInt8] {
    var bytes = [UInt8](repeating: 0xFF, count: BlockAllocationTable.byteSize(entries: entries.count))
    bytes.setBigEndianWords(entries)
    return bytes
  }

  /// The bytes a table of `entries` occupies in a file, padded to a sector.
  public static func byteSize(entries: Int) -> Int {
    (entries * 4 + 511) / 512 * 512
  }

  public subscript(block: Int) -> UInt32 {
    get { entries[block] }
    set { entries[block] = newValue }
  }

  public func isAllocated(_ block: Int) -> Bool {
    entries[block] != BlockAllocationTable.unallocated
  }

  public var allocatedCount: Int {
    entries.reduce(0) { $0 + ($1 == BlockAllocationTable.unallocated ? 0 : 1) }
  }
}
