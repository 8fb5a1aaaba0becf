/// An error from the VHD library: which file, which on-disk field, what is wrong and what to do.
///
/// Every size, offset and count read from a file is checked before use (DESIGN.md rule 3); a
/// malformed file surfaces here, never as a crash.
public struct VHDError: Error, Equatable, CustomStringConvertible, Sendable {
  /// What kind of problem it is, for callers that react differently to each.
  public enum Problem: String, Equatable, Sendable {
    case notAVHD
    case truncated
    case checksumMismatch
    case invalidField
    case outOfBounds
    case unsupported
    case missingParent
    case parentMismatch
    case parentLoop
    case chainTooDeep
    case readOnly
    case invalidArgument
    case io
  }

  /// The file the problem is in; empty while a structure is decoded on its own.
  public var path: String
  /// The on-disk field or structure, such as `footer.checksum` or `BAT[12]`.
  public var field: String
  public var problem: Problem
  /// A sentence that says what is wrong and, where it helps, what to do.
  public var detail: String

  public init(path: String = "", field: String, _ problem: Problem, _ detail: String) {
    self.path = path
    self.field = field
    self.problem = problem
    self.detail = detail
  }

  public var description: String {
    let location = path.isEmpty ? field : "\(path): \(field)"
    return "\(location): \(detail)"
  }

  /// The same error, attributed to a file.
  func at(_ path: String) -> VHDError {
    var copy = self
    if copy.path.isEmpty { copy.path = path }
    return copy
  }
}

/// Runs `body`, attributing any VHD error it throws to `path`.
func attributing<T>(to path: String, _ body: () throws -> T) throws -> T {
  do {
    return try body()
  } catch let error as VHDError {
    throw error.at(path)
  }
}
