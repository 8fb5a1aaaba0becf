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

  /// `count` consecutive big-endian 32-bit words from the start (a block table). One pass over the
  /// buffer: field by field, an 8 GiB disk's 4,096 entries cost more than the rest of opening it.
  /// The caller checks that the buffer holds them.
  func bigEndianWords(count: Int) -> [UInt32] {
    precondition(count >= 0 && count * 4 <= self.count, "\(count) words need \(count * 4) bytes, have \(self.count)")
    return withUnsafeBytes { raw in
      (0..<count).map { UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) }
    }
  }

  /// Writes 32-bit words big-endian from the start, in one pass.
  mutating func setBigEndianWords(_ words: [UInt32]) {
    precondition(words.count * 4 <= count, "\(words.count) words need \(words.count * 4) bytes, have \(count)")
    withUnsafeMutableBytes { raw in
      for (index, word) in words.enumerated() {
        raw.storeBytes(of: word.bigEndian, toByteOffset: index * 4, as: UInt32.self)
      }
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
