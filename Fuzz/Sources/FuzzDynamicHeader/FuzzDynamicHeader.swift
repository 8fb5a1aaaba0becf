import FuzzSupport
import VHD

/// The 1024-byte dynamic header from arbitrary bytes, strict and lenient; what decodes must encode and
/// decode again to the same fields, and its locators' fields are read as a disk open would.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDynamicHeader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = FuzzSupport.bytes(data, size)
  _ = try? DynamicHeader(decoding: bytes)
  guard let header = try? DynamicHeader(decoding: bytes, verifyChecksum: false) else { return 0 }
  let again: DynamicHeader
  do {
    again = try DynamicHeader(decoding: header.encoded())
  } catch {
    fatalError("a decoded header does not decode after encoding: \(error)")
  }
  precondition(
    again.tableOffset == header.tableOffset && again.maxTableEntries == header.maxTableEntries
      && again.blockSize == header.blockSize && again.parentLocators == header.parentLocators
      && again.parentUniqueID == header.parentUniqueID,
    "header fields changed through encode and decode")
  _ = header.sectorsPerBlock
  _ = header.bitmapSize
  for locator in header.parentLocators where locator.isUsed {
    _ = locator.platform.description
  }
  return 0
}

@main
enum Main {
  static func main() { runFuzzer(fuzzDynamicHeader) }
}
