/// The 512-byte hard disk footer: at the end of every VHD file, and copied at offset 0 of dynamic and
/// differencing files (VHD-FORMAT.md §3).
public struct Footer: Equatable, Sendable {
  public static let size = 512
  static let cookie = "conectix"
  static let checksumOffset = 64
  /// The largest disk the format allows: 0xFF000000 sectors (2040 GiB).
  public static let maximumDiskSize: UInt64 = 0xFF00_0000 * 512
  /// vmlab's creator application code.
  public static let vmlabCreator = "vmlb"

  public var features: UInt32 = 0x0000_0002
  public var formatVersion: UInt32 = 0x0001_0000
  /// The dynamic header's offset; unused (all ones) for fixed disks.
  public var dataOffset: UInt64
  public var timestamp: UInt32
  public var creatorApplication: String = Footer.vmlabCreator
  public var creatorVersion: UInt32 = 0x0001_0000
  public var creatorHostOS: String = "Wi2k"
  public var originalSize: UInt64
  public var currentSize: UInt64
  public var geometry: DiskGeometry
  public var diskType: DiskType
  /// The checksum as stored in the file (decoding) or as computed (encoding).
  public var checksum: UInt32 = 0
  public var uniqueID: UniqueID
  public var savedState: Bool = false

  public init(
    diskType: DiskType, size: UInt64, uniqueID: UniqueID = .random(), timestamp: UInt32,
    dataOffset: UInt64 = UInt64.max
  ) {
    self.diskType = diskType
    self.currentSize = size
    self.originalSize = size
    self.geometry = DiskGeometry.recorded(forSize: size)
    self.uniqueID = uniqueID
    self.timestamp = timestamp
    self.dataOffset = dataOffset
  }

  /// Decodes and validates a footer; `verifyChecksum: false` is the lenient mode that files with
  /// patched fields (such as the dfvfs fixtures) need.
  public init(decoding bytes: [UInt8], verifyChecksum: Bool = true) throws {
    guard bytes.count >= Footer.size else {
      throw VHDError(field: "footer", .truncated, "the footer needs 512 bytes, found \(bytes.count)")
    }
    let bytes = Array(bytes.prefix(Footer.size))
    guard bytes.ascii(at: 0, count: 8) == Footer.cookie else {
      throw VHDError(field: "footer.cookie", .notAVHD, "no 'conectix' cookie: this is not a VHD file")
    }
    let stored = bytes.bigEndian(UInt32.self, at: Footer.checksumOffset)
    let computed = Checksum.compute(bytes, skipping: Footer.checksumOffset)
    if verifyChecksum && stored != computed {
      throw VHDError(
        field: "footer.checksum", .checksumMismatch,
        "stored checksum \(hex(stored)) but the footer sums to \(hex(computed)); the file was changed or damaged")
    }
    formatVersion = bytes.bigEndian(UInt32.self, at: 12)
    guard formatVersion >> 16 == 1 else {
      throw VHDError(
        field: "footer.fileFormatVersion", .unsupported,
        "format version \(hex(formatVersion)) is not 1.x; vmlab reads VHD version 1.0")
    }
    let rawType = bytes.bigEndian(UInt32.self, at: 60)
    guard let type = DiskType(rawValue: rawType) else {
      throw VHDError(
        field: "footer.diskType", .unsupported,
        "disk type \(rawType) is not fixed (2), dynamic (3) or differencing (4)")
    }
    diskType = type
    features = bytes.bigEndian(UInt32.self, at: 8)
    dataOffset = bytes.bigEndian(UInt64.self, at: 16)
    timestamp = bytes.bigEndian(UInt32.self, at: 24)
    creatorApplication = bytes.ascii(at: 28, count: 4)
    creatorVersion = bytes.bigEndian(UInt32.self, at: 32)
    creatorHostOS = bytes.ascii(at: 36, count: 4)
    originalSize = bytes.bigEndian(UInt64.self, at: 40)
    currentSize = bytes.bigEndian(UInt64.self, at: 48)
    geometry = DiskGeometry(
      cylinders: bytes.bigEndian(UInt16.self, at: 56), heads: bytes[58], sectorsPerTrack: bytes[59])
    checksum = stored
    uniqueID = UniqueID(bytes: Array(bytes[68..<84]))
    savedState = bytes[84] == 1
    guard currentSize > 0, currentSize % 512 == 0, currentSize <= Footer.maximumDiskSize else {
      throw VHDError(
        field: "footer.currentSize", .invalidField,
        "current size \(currentSize) must be a positive multiple of 512 up to 2040 GiB")
    }
  }

  /// The 512 bytes of this footer with a freshly computed checksum.
  public func encoded() -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: Footer.size)
    bytes.setASCII(Footer.cookie, at: 0, count: 8)
    bytes.setBigEndian(features, at: 8)
    bytes.setBigEndian(formatVersion, at: 12)
    bytes.setBigEndian(dataOffset, at: 16)
    bytes.setBigEndian(timestamp, at: 24)
    bytes.setASCII(creatorApplication, at: 28, count: 4)
    bytes.setBigEndian(creatorVersion, at: 32)
    bytes.setASCII(creatorHostOS, at: 36, count: 4)
    bytes.setBigEndian(originalSize, at: 40)
    bytes.setBigEndian(currentSize, at: 48)
    bytes.setBigEndian(geometry.cylinders, at: 56)
    bytes[58] = geometry.heads
    bytes[59] = geometry.sectorsPerTrack
    bytes.setBigEndian(diskType.rawValue, at: 60)
    bytes.replaceSubrange(68..<84, with: uniqueID.bytes)
    bytes[84] = savedState ? 1 : 0
    bytes.setBigEndian(Checksum.compute(bytes, skipping: Footer.checksumOffset), at: Footer.checksumOffset)
    return bytes
  }
}

func hex<T: FixedWidthInteger>(_ value: T) -> String {
  "0x" + String(value, radix: 16)
}
