import Foundation
import TestSupport
import XCTest

/// PostgreSQL stays in `Sources/Cluster/Database/`: the agent, the command line and the engine
/// speak to it through that folder's named queries, and LabKit never sees it. Reads the source tree.
final class ClusterBoundaryTests: XCTestCase {
  let tree = SourceTree()
  var sources: String { tree.root }
  let databaseFolder = "Cluster/Database/"

  func swiftFiles() throws -> [(path: String, text: String)] { try tree.swiftFiles() }

  func importsPostgres(_ text: String) -> Bool { !SourceTree.imports(of: "PostgresNIO", in: text).isEmpty }

  func testOnlyTheDatabaseFolderImportsPostgresNIO() throws {
    let files = try swiftFiles()
    XCTAssertGreaterThan(files.count, 50, "found only \(files.count) Swift files under \(sources)")
    XCTAssertTrue(
      files.contains { $0.path.hasPrefix(databaseFolder) && importsPostgres($0.text) },
      "no file in \(databaseFolder) imports PostgresNIO: is the check looking at the right tree?")
    let outside = files.filter { !$0.path.hasPrefix(databaseFolder) && importsPostgres($0.text) }.map(\.path)
    XCTAssertEqual(outside, [], "PostgresNIO belongs in Sources/\(databaseFolder); add a named query there")
  }

  func testNoSQLOutsideTheDatabaseFolder() throws {
    let sqlMarks = ["SELECT ", "UPDATE ", "INSERT INTO", "DELETE FROM", "FOR UPDATE", "pg_notify", "PostgresQuery"]
    // LabKit's own catalog (SQLite) has its SQL in LabKit/Catalog/, which CatalogBoundaryTests guards.
    let offenders = try swiftFiles().filter { !$0.path.hasPrefix(databaseFolder) }
      .filter { $0.path.hasPrefix("Cluster/") || $0.path.hasPrefix("vmlab/") || $0.path.hasPrefix("LabKit/") }
      .filter { !$0.path.hasPrefix("LabKit/Catalog/") }
      .flatMap { file in sqlMarks.filter { file.text.contains($0) }.map { "\(file.path): \($0)" } }
    XCTAssertEqual(offenders, [], "PostgreSQL's SQL belongs in Sources/\(databaseFolder)")
  }
}
