/// Builds a message in network byte order.
struct ByteWriter {
  private(set) var bytes: [UInt8] = []

  init(capacity: Int = 32) { bytes.reserveCapacity(capacity) }

  mutating func u16(_ value: UInt16) { append(value) }
  mutating func u32(_ value: UInt32) { append(value) }
  mutating func u64(_ value: UInt64) { append(value) }

  mutating func bytes(_ more: [UInt8]) { bytes.append(contentsOf: more) }
  mutating func string(_ text: String) { bytes.append(contentsOf: Array(text.utf8)) }

  private mutating func append<T: FixedWidthInteger>(_ value: T) {
    withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
  }
}

/// Reads a message received in network byte order; every read checks the remaining length, so a
/// short or lying message is an error, not a crash.
struct ByteReader {
  private let bytes: [UInt8]
  private(set) var position = 0

  init(_ bytes: [UInt8]) { self.bytes = bytes }

  var remaining: Int { bytes.count - position }

  mutating func u16() throws -> UInt16 { try integer() }
  mutating func u32() throws -> UInt32 { try integer() }
  mutating func u64() throws -> UInt64 { try integer() }

  mutating func bytes(_ count: Int) throws -> [UInt8] {
    guard count >= 0, count <= remaining else { throw MalformedMessage() }
    defer { position += count }
    return Array(bytes[position..<(position + count)])
  }

  mutating func string(_ count: Int) throws -> String {
    String(decoding: try bytes(count), as: UTF8.self)
  }

  private mutating func integer<T: FixedWidthInteger>() throws -> T {
    let size = MemoryLayout<T>.size
    guard size <= remaining else { throw MalformedMessage() }
    var value: T = 0
    for byte in bytes[position..<(position + size)] { value = value << 8 | T(byte) }
    position += size
    return value
  }
}

/// An option or request whose fields do not fit its stated length.
struct MalformedMessage: Error {}
