import FuzzSupport
import LabKit

/// The checkpoint file-name parser and the name rules on arbitrary UTF-8 (invalid sequences repaired).
/// A parsed name must print back to a name that parses to the same parts.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNaming(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
  if let name = CheckpointFileName(parsing: text) {
    precondition(CheckpointFileName(parsing: name.fileName) == name, "a parsed name does not parse back")
    _ = CheckpointFileName.date(fromStamp: name.stamp)
  }
  _ = CheckpointFileName.date(fromStamp: text)
  for what in ["VM", "lab"] {
    do {
      try NameRules.validate(text, as: what)
    } catch {}
  }
  do {
    try NameRules.validateCheckpoint(text)
  } catch {}
  return 0
}

@main
enum Main {
  static func main() { runFuzzer(fuzzNaming) }
}
