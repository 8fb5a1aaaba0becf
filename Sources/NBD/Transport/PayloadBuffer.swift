/// Page-aligned memory for one request's data, taken from and given back to a `BufferPool`.
final class PayloadBuffer: @unchecked Sendable {
  let bytes: UnsafeMutableRawBufferPointer

  init(capacity: Int) {
    bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(capacity, 1), alignment: 4096)
  }

  deinit { bytes.deallocate() }

  var capacity: Int { bytes.count }

  func prefix(_ count: Int) -> UnsafeMutableRawBufferPointer {
    UnsafeMutableRawBufferPointer(rebasing: bytes[0..<count])
  }
}
