/// The three kinds of VHD files (footer field "disk type"); 0, 1, 5 and 6 are not valid images.
public enum DiskType: UInt32, Sendable, CustomStringConvertible, Codable {
  case fixed = 2
  case dynamic = 3
  case differencing = 4

  public var description: String {
    switch self {
    case .fixed: "fixed"
    case .dynamic: "dynamic"
    case .differencing: "differencing"
    }
  }

  /// Dynamic and differencing disks share a layout: header, BAT and blocks.
  public var isSparse: Bool { self != .fixed }

  public init?(name: String) {
    switch name.lowercased() {
    case "fixed": self = .fixed
    case "dynamic": self = .dynamic
    case "differencing": self = .differencing
    default: return nil
    }
  }

  /// Encoded by name (`"dynamic"`), as people read it in JSON.
  public init(from decoder: any Decoder) throws {
    let name = try decoder.singleValueContainer().decode(String.self)
    guard let type = DiskType(name: name) else {
      throw DecodingError.dataCorrupted(
        .init(codingPath: decoder.codingPath, debugDescription: "unknown disk type \(name)"))
    }
    self = type
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(description)
  }
}
