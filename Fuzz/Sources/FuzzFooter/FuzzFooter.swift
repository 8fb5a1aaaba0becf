import FuzzSupport
import VHD

/// The 512-byte footer from arbitrary bytes, strict and lenient. A footer that decodes must encode to
/// bytes that decode again, strictly, to the same fields.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFooter(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = FuzzSupport.bytes(data, size)
  _ = try? Footer(decoding: bytes)
  guard let footer = try? Footer(decoding: bytes, verifyChecksum: false) else { return 0 }
  let again: Footer
  do {
    again = try Footer(decoding: footer.encoded())
  } catch {
    fatalError("a decoded footer does not decode after encoding: \(error)")
  }
  precondition(
    again.currentSize == footer.currentSize && again.diskType == footer.diskType
      && again.dataOffset == footer.dataOffset && again.uniqueID == footer.uniqueID
      && again.geometry == footer.geometry,
    "footer fields changed through encode and decode")
  _ = footer.geometry.capacity
  _ = footer.geometry.description
  _ = footer.uniqueID.description
  return 0
}

@main
enum Main {
  static func main() { runFuzzer(fuzzFooter) }
}
