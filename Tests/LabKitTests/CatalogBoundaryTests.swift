import Foundation
import TestSupport
import XCTest

/// The engine speaks to the catalog only through `Sources/LabKit/Catalog/` (its records and named
/// queries), so another catalog backend would change that folder alone. Reads the source tree.
final class CatalogBoundaryTests: XCTestCase {
  let tree = SourceTree()
  var sources: String { tree.root }
  let catalogFolder = "LabKit/Catalog/"

  func swiftFiles() throws -> [(path: String, text: String)] { try tree.swiftFiles() }

  func grdbImports(_ text: String) -> [String] { SourceTree.imports(of: "GRDB", in: text) }

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
