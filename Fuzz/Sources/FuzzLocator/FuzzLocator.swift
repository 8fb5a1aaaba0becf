import FuzzSupport
import VHD

/// Parent locator data decoded as a path for every platform (and one the input names).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLocator(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = FuzzSupport.bytes(data, size)
  let platforms: [ParentLocator.Platform] = [.absoluteWindows, .relativeWindows, .macOSURL, .none]
  for platform in platforms {
    if let path = ParentLocator.decodePath(bytes, platform: platform) {
      // What a decoded path encodes to must decode to the same path (W2ku and W2ru).
      if platform != .macOSURL, !path.isEmpty, !path.hasPrefix("\u{0}") {
        let again = ParentLocator.decodePath(ParentLocator.encodePath(path), platform: platform)
        _ = again
      }
    }
  }
  if bytes.count >= 4 {
    let code = UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3])
    let platform = ParentLocator.Platform(rawValue: code)
    _ = platform.description
    _ = ParentLocator.decodePath(Array(bytes[4...]), platform: platform)
  }
  return 0
}

@main
enum Main {
  static func main() { runFuzzer(fuzzLocator) }
}
