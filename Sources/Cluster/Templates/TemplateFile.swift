import Crypto
import Foundation

/// One file of an image template as the cluster registers it: its name inside the template
/// folder, its size and its SHA-256 (lowercase hex).
public struct TemplateFile: Sendable, Codable, Equatable {
  public var name: String
  public var size: Int64
  public var sha256: String

  public init(name: String, size: Int64, sha256: String) {
    self.name = name
    self.size = size
    self.sha256 = sha256
  }

  /// The regular files of the template folder `folder`, by name, each with its SHA-256.
  static func list(folder: String) throws -> [TemplateFile] {
    let names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
    var files: [TemplateFile] = []
    for name in names where !name.hasPrefix(".") {
      let path = "\(folder)/\(name)"
      var status = stat()
      guard lstat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { continue }
      files.append(TemplateFile(name: name, size: Int64(status.st_size), sha256: try sha256(of: path)))
    }
    return files
  }

  /// The SHA-256 of the file at `path`, read 1 MiB at a time.
  static func sha256(of path: String) throws -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw ClusterError(.failed, "cannot read template file \(path)")
    }
    defer { try? handle.close() }
    var hash = SHA256()
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
      hash.update(data: chunk)
    }
    return hash.finalize().map { String(format: "%02x", $0) }.joined()
  }

  /// A file name from the database is only a plain name inside the template folder.
  func checkedName() throws -> String {
    guard !name.isEmpty, name != ".", name != "..", !name.hasPrefix("."), !name.contains("/"),
      !name.contains("\0"), name.utf8.count <= 255
    else {
      throw ClusterError(.database, "the cluster database names a template file '\(name)', which is no plain file name")
    }
    return name
  }
}
