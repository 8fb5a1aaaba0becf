import Foundation

/// A disk's 128-bit identity, kept as the 16 raw bytes of the file.
///
/// Windows writes GUIDs in mixed-endian order and qemu in RFC 4122 order; a child names its parent
/// by these bytes, so they are compared raw and only formatted for display.
public struct UniqueID: Hashable, Sendable, CustomStringConvertible, Codable {
  public var bytes: [UInt8]

  public init(bytes: [UInt8]) {
    precondition(bytes.count == 16, "a unique id has 16 bytes")
    self.bytes = bytes
  }

  public static let zero = UniqueID(bytes: Array(repeating: 0, count: 16))

  public static func random() -> UniqueID {
    let uuid = UUID().uuid
    return UniqueID(bytes: withUnsafeBytes(of: uuid) { Array($0) })
  }

  public var isZero: Bool { bytes.allSatisfy { $0 == 0 } }

  /// The raw bytes in order, grouped like a GUID (the way libvhdi prints them).
  public var description: String {
    let hex = bytes.map { byte in
      let digits = String(byte, radix: 16)
      return digits.count == 1 ? "0" + digits : digits
    }
    let groups = [0..<4, 4..<6, 6..<8, 8..<10, 10..<16].map { hex[$0].joined() }
    return groups.joined(separator: "-")
  }

  public init(from decoder: any Decoder) throws {
    let text = try decoder.singleValueContainer().decode(String.self)
    guard let parsed = UniqueID(text) else {
      throw DecodingError.dataCorrupted(
        .init(codingPath: decoder.codingPath, debugDescription: "not a unique id: \(text)"))
    }
    self = parsed
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(description)
  }

  /// Parses the display form back (32 hex digits, dashes optional).
  public init?(_ text: String) {
    let digits = Array(text.filter { $0 != "-" })
    guard digits.count == 32 else { return nil }
    var bytes: [UInt8] = []
    for index in stride(from: 0, to: 32, by: 2) {
      guard let byte = UInt8(String(digits[index...index + 1]), radix: 16) else { return nil }
      bytes.append(byte)
    }
    self.init(bytes: bytes)
  }
}
