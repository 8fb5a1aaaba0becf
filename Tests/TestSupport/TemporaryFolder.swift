import Foundation

/// A folder under the system's temporary directory, removed when the test that made it ends.
public final class TemporaryFolder {
  public let path: String

  public init(prefix: String = "vmlab-tests-") {
    path = NSTemporaryDirectory() + prefix + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }

  public func file(_ name: String) -> String { path + "/" + name }
}
