import Foundation
import XCTest

/// The engine speaks to the catalog only through `Sources/LabKit/Catalog/` (its records and named
/// queries), so another catalog backend would change that folder alone. Reads the source tree.
final class CatalogBoundaryTests: XCTestCase {
  /// `Sources/`, found from this file (`Tests/LabKitTests/…`).
  let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Sources").path
  let catalogFolder = "LabKit/Catalog/"

  /// Every Swift file under `Sources/`, by path relative to it, with its text.
  func swiftFiles() throws -> [(path: String, text: String)] {
    let walker = try XCTUnwrap(FileManager.default.enumerator(atPath: sources), "no folder \(sources)")
    var files: [(String, String)] = []
    while let item = walker.nextObject() as? String {
      guard item.hasSuffix(".swift") else { continue }
      files.append((item, try String(contentsOfFile: sources + "/" + item, encoding: .utf8)))
    }
    return files.sorted { $0.0 < $1.0 }
  }

  /// Lines of `text` that import GRDB in any form (`import GRDB`, `@testable import GRDB`,
  /// `import struct GRDB.Row`).
  func grdbImports(_ text: String) -> [String] {
    text.split(separator: "\n").map(String.init).filter { line in
      let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
      guard let index = words.firstIndex(of: "import"), words[..<index].allSatisfy({ $0.hasPrefix("@") }) else {
        return false
      }
      return words[(index + 1)...].contains { $0 == "GRDB" || $0.hasPrefix("GRDB.") }
    }
  }

  func testOnlyTheCatalogFolderImportsGRDB() throws {
    let files = try swiftFiles()
    // The walk must have seen the tree, or an empty result would prove nothing.
    XCTAssertGreaterThan(files.count, 50, "found only \(files.count) Swift files under \(sources)")
    XCTAssertTrue(
      files.contains { $0.path.hasPrefix(catalogFolder) && !grdbImports($0.text).isEmpty },
      "no file in \(catalogFolder) imports GRDB: is the check looking at the right tree?")
    let outside = files.filter { !$0.path.hasPrefix(catalogFolder) && !grdbImports($0.text).isEmpty }.map(\.path)
    XCTAssertEqual(
      outside, [], "these files import GRDB outside Sources/\(catalogFolder); give them a named query there instead")
  }

  func testNoSQLOutsideTheCatalogFolder() throws {
    let sqlMarks = ["sql:", "COLLATE", "PRAGMA ", "cachedStatement", "Column(\""]
    let offenders = try swiftFiles().filter { !$0.path.hasPrefix(catalogFolder) && $0.path.hasPrefix("LabKit/") }
      .flatMap { file in sqlMarks.filter { file.text.contains($0) }.map { "\(file.path): \($0)" } }
    XCTAssertEqual(offenders, [], "SQL belongs in Sources/\(catalogFolder)")
  }

  func testTheCheckSeesAnImport() {
    XCTAssertEqual(grdbImports("import Foundation\nimport GRDB\n").count, 1)
    XCTAssertEqual(grdbImports("@testable import GRDB").count, 1)
    XCTAssertEqual(grdbImports("import struct GRDB.Row").count, 1)
    XCTAssertEqual(grdbImports("import GRDBQuery\n// import GRDB is said here in a comment").count, 0)
  }
}
