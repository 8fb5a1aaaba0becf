/// Finding zeros in a buffer, so that they can stay holes instead of being written.
extension UnsafeRawBufferPointer {
  /// True when every byte is zero; reads eight bytes at a time.
  var isAllZero: Bool {
    guard let base = baseAddress else { return true }
    let words = count / 8
    var index = 0
    while index < words {
      if base.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self) != 0 { return false }
      index += 1
    }
    for offset in (words * 8)..<count where base.load(fromByteOffset: offset, as: UInt8.self) != 0 {
      return false
    }
    return true
  }

  /// The byte ranges that hold something other than zeros, in pieces of `granularity` bytes (the
  /// last piece may be shorter): adjacent pieces with data form one range, pieces of zeros none.
  func nonZeroRanges(granularity: Int) -> [Range<Int>] {
    precondition(granularity > 0)
    var ranges: [Range<Int>] = []
    var start = 0
    while start < count {
      let end = Swift.min(start + granularity, count)
      if !UnsafeRawBufferPointer(rebasing: self[start..<end]).isAllZero {
        if let last = ranges.last, last.upperBound == start {
          ranges[ranges.count - 1] = last.lowerBound..<end
        } else {
          ranges.append(start..<end)
        }
      }
      start = end
    }
    return ranges
  }
}
