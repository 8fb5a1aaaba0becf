/// Big-endian field access on a byte buffer: every VHD integer is big-endian (spec §1).
extension Array where Element == UInt8 {
  func bigEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
    var value: T = 0
    for index in offset..<(offset + MemoryLayout<T>.size) {
      value = value << 8 | T(self[index])
    }
    return value
  }

  mutating func setBigEndian<T: FixedWidthInteger>(_ value: T, at offset: Int) {
    let size = MemoryLayout<T>.size
    for index in 0..<size {
      self[offset + index] = UInt8(truncatingIfNeeded: value >> ((size - 1 - index) * 8))
    }
  }

  /// Four ASCII bytes, such as a cookie or a creator application.
  func ascii(at offset: Int, count: Int) -> String {
    String(decoding: self[offset..<(offset + count)].map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
  }

  mutating func setASCII(_ text: String, at offset: Int, count: Int) {
    let bytes = Array(text.utf8.prefix(count))
    for index in 0..<count {
      self[offset + index] = index < bytes.count ? bytes[index] : 0x20
    }
  }
}
