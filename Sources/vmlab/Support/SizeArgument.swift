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
}

extension DiskType: ExpressibleByArgument {
  public init?(argument: String) {
    guard let type = DiskType(name: argument), type != .differencing else { return nil }
    self = type
  }

  public static var allValueStrings: [String] { ["dynamic", "fixed"] }
}
