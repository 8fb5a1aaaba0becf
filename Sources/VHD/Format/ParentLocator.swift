import Foundation

/// One of the eight 24-byte parent locator entries of a differencing disk's header: where in the file
/// a path to the parent is stored, and in which form (VHD-FORMAT.md §6).
public struct ParentLocator: Equatable, Sendable {
  /// The platform code, a four-character code.
  public struct Platform: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let none = Platform(rawValue: 0)
    /// Windows absolute path, UTF-16.
    public static let absoluteWindows = Platform(rawValue: 0x5732_6B75)  // W2ku
    /// Windows path relative to the child's folder, UTF-16.
    public static let relativeWindows = Platform(rawValue: 0x5732_7275)  // W2ru
    /// A file URL in UTF-8.
    public static let macOSURL = Platform(rawValue: 0x4D61_6358)  // MacX

    public var description: String {
      let bytes = (0..<4).map { UInt8(truncatingIfNeeded: rawValue >> (24 - $0 * 8)) }
      return String(decoding: bytes, as: UTF8.self)
    }
  }

  /// The most bytes of locator data vmlab reads; Windows reserves 64 KiB.
  public static let maximumDataLength: UInt32 = 65536
  static let entrySize = 24

  public var platform: Platform
  /// The space reserved, in sectors per the spec or in bytes as Windows writes it.
  public var dataSpace: UInt32
  public var dataLength: UInt32
  public var dataOffset: UInt64

  public init(platform: Platform, dataSpace: UInt32, dataLength: UInt32, dataOffset: UInt64) {
    self.platform = platform
    self.dataSpace = dataSpace
    self.dataLength = dataLength
    self.dataOffset = dataOffset
  }

  init(decoding bytes: [UInt8], at offset: Int) {
    platform = Platform(rawValue: bytes.bigEndian(UInt32.self, at: offset))
    dataSpace = bytes.bigEndian(UInt32.self, at: offset + 4)
    dataLength = bytes.bigEndian(UInt32.self, at: offset + 8)
    dataOffset = bytes.bigEndian(UInt64.self, at: offset + 16)
  }

  func encode(into bytes: inout [UInt8], at offset: Int) {
    bytes.setBigEndian(platform.rawValue, at: offset)
    bytes.setBigEndian(dataSpace, at: offset + 4)
    bytes.setBigEndian(dataLength, at: offset + 8)
    bytes.setBigEndian(UInt32(0), at: offset + 12)
    bytes.setBigEndian(dataOffset, at: offset + 16)
  }

  public var isUsed: Bool { platform != .none }

  /// Decodes a locator's data into a path. Windows writes W2ku/W2ru in UTF-16 little-endian although
  /// the header's parent name is big-endian, so the byte order is read from the data itself.
  public static func decodePath(_ data: [UInt8], platform: Platform) -> String? {
    switch platform {
    case .absoluteWindows, .relativeWindows:
      guard data.count >= 2 else { return nil }
      return UTF16Text.decode(data, bigEndian: UTF16Text.looksBigEndian(data))
    case .macOSURL:
      let text = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
      return URL(string: text)?.path
    default:
      return nil
    }
  }

  /// The locator data for a path, in the form Windows writes (UTF-16 LE, no terminator).
  public static func encodePath(_ path: String) -> [UInt8] {
    UTF16Text.encode(path, bigEndian: false)
  }
}

/// UTF-16 text as VHD stores it: NUL-padded, in either byte order, decoded leniently.
enum UTF16Text {
  static func decode(_ bytes: [UInt8], bigEndian: Bool) -> String {
    var units: [UInt16] = []
    var index = 0
    while index + 1 < bytes.count {
      let unit =
        bigEndian
        ? UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])
        : UInt16(bytes[index + 1]) << 8 | UInt16(bytes[index])
      if unit == 0 { break }
      units.append(unit)
      index += 2
    }
    return String(decoding: units, as: UTF16.self)
  }

  static func encode(_ text: String, bigEndian: Bool) -> [UInt8] {
    text.utf16.flatMap { unit in
      bigEndian
        ? [UInt8(unit >> 8), UInt8(unit & 0xFF)]
        : [UInt8(unit & 0xFF), UInt8(unit >> 8)]
    }
  }

  /// ASCII-range text in big-endian order has its zero byte first.
  static func looksBigEndian(_ bytes: [UInt8]) -> Bool {
    bytes.count >= 2 && bytes[0] == 0 && bytes[1] != 0
  }
}
