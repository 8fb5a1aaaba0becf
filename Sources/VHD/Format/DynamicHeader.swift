/// The 1024-byte dynamic disk header of dynamic and differencing disks (VHD-FORMAT.md §4).
public struct DynamicHeader: Equatable, Sendable {
  public static let size = 1024
  static let cookie = "cxsparse"
  static let checksumOffset = 36
  static let locatorsOffset = 576
  public static let locatorCount = 8
  public static let defaultBlockSize: UInt32 = 2 * 1024 * 1024
  /// Larger blocks would make one block's bitmap and buffers unreasonably large.
  public static let maximumBlockSize: UInt32 = 256 * 1024 * 1024

  public var dataOffset: UInt64 = UInt64.max
  public var tableOffset: UInt64
  public var headerVersion: UInt32 = 0x0001_0000
  public var maxTableEntries: UInt32
  public var blockSize: UInt32
  public var checksum: UInt32 = 0
  public var parentUniqueID: UniqueID = .zero
  public var parentTimestamp: UInt32 = 0
  /// The parent's file name, UTF-16 big-endian in the file.
  public var parentUnicodeName: String = ""
  /// Always eight entries; unused ones have platform `.none`.
  public var parentLocators: [ParentLocator] = Array(
    repeating: ParentLocator(platform: .none, dataSpace: 0, dataLength: 0, dataOffset: 0),
    count: DynamicHeader.locatorCount)

  public init(tableOffset: UInt64, maxTableEntries: UInt32, blockSize: UInt32) {
    self.tableOffset = tableOffset
    self.maxTableEntries = maxTableEntries
    self.blockSize = blockSize
  }

  public init(decoding bytes: [UInt8], verifyChecksum: Bool = true) throws {
    guard bytes.count >= DynamicHeader.size else {
      throw VHDError(field: "header", .truncated, "the dynamic header needs 1024 bytes, found \(bytes.count)")
    }
    let bytes = Array(bytes.prefix(DynamicHeader.size))
    guard bytes.ascii(at: 0, count: 8) == DynamicHeader.cookie else {
      throw VHDError(field: "header.cookie", .invalidField, "no 'cxsparse' cookie where the dynamic header should be")
    }
    let stored = bytes.bigEndian(UInt32.self, at: DynamicHeader.checksumOffset)
    let computed = Checksum.compute(bytes, skipping: DynamicHeader.checksumOffset)
    if verifyChecksum && stored != computed {
      throw VHDError(
        field: "header.checksum", .checksumMismatch,
        "stored checksum \(hex(stored)) but the header sums to \(hex(computed)); the file was changed or damaged")
    }
    headerVersion = bytes.bigEndian(UInt32.self, at: 24)
    guard headerVersion >> 16 == 1 else {
      throw VHDError(field: "header.headerVersion", .unsupported, "header version \(hex(headerVersion)) is not 1.x")
    }
    dataOffset = bytes.bigEndian(UInt64.self, at: 8)
    tableOffset = bytes.bigEndian(UInt64.self, at: 16)
    maxTableEntries = bytes.bigEndian(UInt32.self, at: 28)
    blockSize = bytes.bigEndian(UInt32.self, at: 32)
    checksum = stored
    parentUniqueID = UniqueID(bytes: Array(bytes[40..<56]))
    parentTimestamp = bytes.bigEndian(UInt32.self, at: 56)
    parentUnicodeName = UTF16Text.decode(Array(bytes[64..<576]), bigEndian: true)
    parentLocators = (0..<DynamicHeader.locatorCount).map {
      ParentLocator(decoding: bytes, at: DynamicHeader.locatorsOffset + $0 * ParentLocator.entrySize)
    }
    guard blockSize >= 512, blockSize.nonzeroBitCount == 1, blockSize <= DynamicHeader.maximumBlockSize else {
      throw VHDError(
        field: "header.blockSize", .invalidField,
        "block size \(blockSize) must be a power of two from 512 bytes to 256 MiB")
    }
  }

  public func encoded() -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: DynamicHeader.size)
    bytes.setASCII(DynamicHeader.cookie, at: 0, count: 8)
    bytes.setBigEndian(dataOffset, at: 8)
    bytes.setBigEndian(tableOffset, at: 16)
    bytes.setBigEndian(headerVersion, at: 24)
    bytes.setBigEndian(maxTableEntries, at: 28)
    bytes.setBigEndian(blockSize, at: 32)
    bytes.replaceSubrange(40..<56, with: parentUniqueID.bytes)
    bytes.setBigEndian(parentTimestamp, at: 56)
    let name = UTF16Text.encode(parentUnicodeName, bigEndian: true).prefix(512)
    bytes.replaceSubrange(64..<(64 + name.count), with: name)
    for (index, locator) in parentLocators.prefix(DynamicHeader.locatorCount).enumerated() {
      locator.encode(into: &bytes, at: DynamicHeader.locatorsOffset + index * ParentLocator.entrySize)
    }
    bytes.setBigEndian(
      Checksum.compute(bytes, skipping: DynamicHeader.checksumOffset), at: DynamicHeader.checksumOffset)
    return bytes
  }

  /// Sectors per block.
  public var sectorsPerBlock: Int { Int(blockSize) / 512 }

  /// Bytes of the sector bitmap in front of each block, rounded up to whole sectors.
  public var bitmapSize: Int { ((sectorsPerBlock + 7) / 8 + 511) / 512 * 512 }
}
