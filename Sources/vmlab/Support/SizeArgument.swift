import ArgumentParser
import VHD

/// A size option such as `--size 4G`.
struct SizeArgument: ExpressibleByArgument {
  var bytes: UInt64

  init(bytes: UInt64) { self.bytes = bytes }

  init?(argument: String) {
    guard let bytes = try? ByteCount.parse(argument) else { return nil }
    self.bytes = bytes
  }

  static var defaultCompletionKind: CompletionKind { .default }

  /// How help shows a default: as a user would type it (`0`, `1M`), not the struct.
  var defaultValueDescription: String {
    for (suffix, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] where bytes != 0 && bytes % (1 << shift) == 0 {
      return "\(bytes >> shift)\(suffix)"
    }
    return String(bytes)
  }
}

extension DiskType: ExpressibleByArgument {
  public init?(argument: String) {
    guard let type = DiskType(name: argument), type != .differencing else { return nil }
    self = type
  }

  public static var allValueStrings: [String] { ["dynamic", "fixed"] }

  /// Its name, not the footer's number for it (help said `default: 3`).
  public var defaultValueDescription: String { description }
}
