/// The one's complement of the byte sum, with the 4-byte checksum field counted as zero (spec, footer
/// and dynamic header alike).
enum Checksum {
  static func compute(_ bytes: [UInt8], skipping fieldOffset: Int) -> UInt32 {
    var sum: UInt32 = 0
    for (offset, byte) in bytes.enumerated() where !(fieldOffset..<(fieldOffset + 4)).contains(offset) {
      sum &+= UInt32(byte)
    }
    return ~sum
  }
}
