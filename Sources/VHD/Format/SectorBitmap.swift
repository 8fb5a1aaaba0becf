/// The bitmap in front of each block: bit set means the sector is in this file (MSB first: byte i,
/// bit 7 is sector 8i). In a differencing disk a clear bit sends the read to the parent.
public struct SectorBitmap: Equatable, Sendable {
  public private(set) var bytes: [UInt8]
  public let sectorCount: Int

  public init(sectorCount: Int, byteCount: Int, allSet: Bool = false) {
    self.sectorCount = sectorCount
    bytes = Array(repeating: allSet ? 0xFF : 0, count: byteCount)
  }

  public init(bytes: [UInt8], sectorCount: Int) {
    precondition(bytes.count * 8 >= sectorCount)
    self.bytes = bytes
    self.sectorCount = sectorCount
  }

  public func contains(_ sector: Int) -> Bool {
    bytes[sector >> 3] & (0x80 >> UInt8(sector & 7)) != 0
  }

  public mutating func insert(_ sectors: Range<Int>) {
    var sector = sectors.lowerBound
    while sector < sectors.upperBound {
      if sector & 7 == 0 && sector + 8 <= sectors.upperBound {
        bytes[sector >> 3] = 0xFF
        sector += 8
      } else {
        bytes[sector >> 3] |= 0x80 >> UInt8(sector & 7)
        sector += 1
      }
    }
  }

  /// Every sector of the block is present.
  public var isFull: Bool {
    let wholeBytes = sectorCount / 8
    for index in 0..<wholeBytes where bytes[index] != 0xFF { return false }
    for sector in (wholeBytes * 8)..<sectorCount where !contains(sector) { return false }
    return true
  }

  public var isEmpty: Bool {
    let usedBytes = (sectorCount + 7) / 8
    for index in 0..<usedBytes where bytes[index] != 0 { return false }
    return true
  }

  public var presentCount: Int {
    (0..<((sectorCount + 7) / 8)).reduce(0) { count, index in
      let remaining = sectorCount - index * 8
      let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
      return count + (bytes[index] & mask).nonzeroBitCount
    }
  }

  /// Maximal runs of sectors in `range` that are all present or all absent.
  public func runs(in range: Range<Int>) -> [(sectors: Range<Int>, present: Bool)] {
    var result: [(sectors: Range<Int>, present: Bool)] = []
    var start = range.lowerBound
    while start < range.upperBound {
      let present = contains(start)
      var end = start + 1
      while end < range.upperBound {
        if end & 7 == 0 && end + 8 <= range.upperBound && bytes[end >> 3] == (present ? 0xFF : 0) {
          end += 8
        } else if contains(end) == present {
          end += 1
        } else {
          break
        }
      }
      result.append((start..<end, present))
      start = end
    }
    return result
  }
}
