import Foundation

/// The project's Swift sources read as text, for the tests that check where code may live (the
/// catalog's GRDB and SQL, the cluster's PostgreSQL).
public struct SourceTree {
  /// `Sources/`, found from a test file's path (`Tests/TARGET/FILE.swift`).
  public let root: String

  public init(testFile: String = #filePath) {
    root =
      URL(fileURLWithPath: testFile).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("Sources").path
  }

  /// Every Swift file under `Sources/`, by path relative to it, with its text, in path order.
  public func swiftFiles() throws -> [(path: String, text: String)] {
    guard let walker = FileManager.default.enumerator(atPath: root) else {
      throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: root])
    }
    var files: [(String, String)] = []
    while let item = walker.nextObject() as? String {
      guard item.hasSuffix(".swift") else { continue }
      files.append((item, try String(contentsOfFile: root + "/" + item, encoding: .utf8)))
    }
    return files.sorted { $0.0 < $1.0 }
  }

  /// The lines of `text` that import `module` in any form (`import M`, `@testable import M`,
  /// `import struct M.Row`), not a module whose name only starts the same, nor a comment.
  public static func imports(of module: String, in text: String) -> [String] {
    text.split(separator: "\n").map(String.init).filter { line in
      let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
      guard let index = words.firstIndex(of: "import"), words[..<index].allSatisfy({ $0.hasPrefix("@") }) else {
        return false
      }
      return words[(index + 1)...].contains { $0 == module || $0.hasPrefix(module + ".") }
    }
  }
}
