import Foundation
import GRDB
import TestSupport
import XCTest

@testable import LabKit

/// `library repair` against catalogs that are damaged in the ways disks and people damage them, and
/// against VM files that went missing: every VM, checkpoint name and byte comes back, or the report
/// says what did not.
final class CatalogDamageTests: LabKitTestCase {
  let small: UInt64 = 4 * MiB

  struct Moment {
    var vms: [String]
    var checkpoints: [String]
    var labs: [String]
    var data: [String: [[UInt8]]]
  }

  /// Two VMs (one running) with checkpoints and data, in a lab; what a user would check afterwards.
  func makeLibrary() throws -> Moment {
    try library.createVM(name: "web", diskSizes: [small, small], additions: true)
    try library.write("web", disk: 1, at: 0, pattern(1, 3000))
    try library.checkpoint(vm: "web", name: "installed", description: "after setup")
    try library.write("web", disk: 2, at: MiB, pattern(2, 3000))
    try library.checkpoint(vm: "web", name: "configured")
    try library.write("web", disk: 1, at: 2 * MiB, pattern(3, 3000))
    try library.createVM(name: "db", diskSizes: [small])
    try library.write("db", disk: 1, at: 0, pattern(4, 3000))
    try library.checkpoint(vm: "db", name: "clean")
    try library.turnOff(vm: "db")
    try library.createLab(name: "course", vms: ["web", "db"])
    return try moment()
  }

  func moment() throws -> Moment {
    Moment(
      vms: try library.vms().map { "\($0.name) \($0.state) \($0.additions) \($0.disks.count)" },
      checkpoints: try library.checkpoints().map { "\($0.vm) \($0.name) \($0.description) \($0.isCurrent)" },
      labs: try library.labs().map { "\($0.name) \($0.vms)" },
      data: [
        "web": try (1...2).map { try library.contents("web", disk: $0, size: small) },
        "db": [try library.contents("db", disk: 1, size: small)],
      ])
  }

  func assertSame(_ a: Moment, _ b: Moment, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.vms, b.vms, file: file, line: line)
    XCTAssertEqual(a.checkpoints, b.checkpoints, file: file, line: line)
    XCTAssertEqual(a.labs, b.labs, file: file, line: line)
    XCTAssertTrue(
      same(a.data["web"], b.data["web"]) && same(a.data["db"], b.data["db"]), "data", file: file, line: line)
  }

  var catalogPath: String { root + "/catalog.sqlite" }

  /// Closes the library and changes the catalog file with `damage`.
  func damageCatalog(_ damage: (FileHandle) throws -> Void) throws {
    try library.close()
    library = nil
    XCTAssertFalse(FileManager.default.fileExists(atPath: catalogPath + "-wal"), "closing folds the log in")
    let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: catalogPath))
    try damage(handle)
    try handle.close()
  }

  /// Repairs and reopens; asserts the library is as it was and `check` finds nothing.
  func assertRepairRestores(
    _ before: Moment, keptAs label: String, file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let report = try Library.repair(at: root, host: host)
    XCTAssertEqual(report.problems, [], file: file, line: line)
    XCTAssertEqual(report.vms, ["db", "web"], file: file, line: line)
    XCTAssertEqual(report.checkpoints, 3, file: file, line: line)
    let kept = try XCTUnwrap(report.previousCatalog, file: file, line: line)
    XCTAssertTrue(kept.hasPrefix(catalogPath + ".\(label)-"), kept, file: file, line: line)
    XCTAssertTrue(FileManager.default.fileExists(atPath: kept), "the old catalog is kept", file: file, line: line)
    XCTAssertFalse(FileManager.default.fileExists(atPath: catalogPath + ".rebuilding"), file: file, line: line)
    library = try Library(at: root, host: host)
    try assertConsistent(file: file, line: line)
    assertSame(try moment(), before, file: file, line: line)
    // And work goes on: restore the first checkpoint of web.
    try library.restore(checkpoint: try library.checkpoint(vm: "web", named: "installed").id)
    try assertConsistent(file: file, line: line)
  }

  func openingFails(containing text: String, file: StaticString = #filePath, line: UInt = #line) {
    do {
      let opened = try Library(at: root, host: host)
      // Some damage only shows when a page is read.
      _ = try opened.vms()
      _ = try opened.checkpoints()
      try opened.close()
      XCTFail("the damaged catalog was used without an error", file: file, line: line)
    } catch {
      XCTAssertTrue("\(error)".contains(text), "\(error)", file: file, line: line)
      XCTAssertTrue("\(error)".contains("vmlab library repair"), "\(error)", file: file, line: line)
    }
  }

  func testGarbageAtTheStartOfTheCatalog() throws {
    let before = try makeLibrary()
    try damageCatalog { handle in handle.write(Data(pattern(7, 4096))) }
    openingFails(containing: "catalog")
    try assertRepairRestores(before, keptAs: "corrupt")
  }

  func testTruncatedCatalog() throws {
    let before = try makeLibrary()
    try damageCatalog { handle in
      let size = try handle.seekToEnd()
      try handle.truncate(atOffset: size / 3)
    }
    openingFails(containing: "catalog")
    try assertRepairRestores(before, keptAs: "corrupt")
  }

  func testPagesOverwrittenInTheMiddleOfTheCatalog() throws {
    let before = try makeLibrary()
    try damageCatalog { handle in
      let size = try handle.seekToEnd()
      XCTAssertGreaterThan(size, 8 * 4096)
      try handle.seek(toOffset: 4 * 4096)
      handle.write(Data(pattern(9, 3 * 4096)))
    }
    // Depending on which pages were hit, opening fails or check finds it; never "sound".
    do {
      let opened = try Library(at: root, host: host)
      XCTAssertTrue(
        try opened.check().contains { $0.contains("catalog") }, "check runs SQLite's integrity check")
      try opened.close()
    } catch {
      XCTAssertTrue("\(error)".contains("vmlab library repair"), "\(error)")
    }
    try assertRepairRestores(before, keptAs: "corrupt")
  }

  func testMissingCatalog() throws {
    let before = try makeLibrary()
    try library.close()
    library = nil
    try FileManager.default.removeItem(atPath: catalogPath)
    let report = try Library.repair(at: root, host: host)
    XCTAssertNil(report.previousCatalog)
    XCTAssertEqual(report.problems, [])
    library = try Library(at: root, host: host)
    try assertConsistent()
    assertSame(try moment(), before)
  }

  func testCatalogOfANewerVmlab() throws {
    let before = try makeLibrary()
    try library.close()
    library = nil
    let newer = try Catalog(path: catalogPath)
    try newer.database.write { db in try db.execute(sql: "INSERT INTO grdb_migrations VALUES ('v99-from-the-future')") }
    try newer.close()
    openingFails(containing: "newer vmlab")
    try assertRepairRestores(before, keptAs: "corrupt")
  }

  func testRepairOfASoundCatalogKeepsTheOldOneAside() throws {
    let before = try makeLibrary()
    try library.close()
    library = nil
    try assertRepairRestores(before, keptAs: "replaced")
  }

  /// A missing base makes a merge fail half way; that unfinished merge must not take the library
  /// down: the other VMs work, check names the damage, and repair brings the VM back once the file
  /// is back (or says it is missing).
  func testAMergeThatCannotFinishBlocksOnlyItsVM() throws {
    _ = try makeLibrary()
    let base = root + "/vms/web/web-disk1.vhd"
    let saved = root + "/web-disk1.vhd.saved"
    try FileManager.default.moveItem(atPath: base, toPath: saved)
    XCTAssertThrowsError(try library.merge(checkpoint: try library.checkpoint(vm: "web", named: "configured").id))
    try reopen()
    XCTAssertEqual(try library.vms().map(\.name), ["db", "web"])
    try library.restore(checkpoint: try library.checkpoint(vm: "db", named: "clean").id)  // another VM works
    let problems = try library.check()
    XCTAssertTrue(problems.contains { $0.contains("VM 'web' has an unfinished merge") }, "\(problems)")
    let refusal = expectError(.inconsistent) {
      try library.restore(checkpoint: try library.checkpoint(vm: "web", named: "installed").id)
    }
    XCTAssertTrue(refusal?.message.contains("library repair") ?? false, refusal?.message ?? "")
    // With the file still missing, repair keeps the VM and says what is missing.
    try library.close()
    library = nil
    let report = try Library.repair(at: root, host: host)
    XCTAssertEqual(report.vms, ["db", "web"])
    XCTAssertTrue(report.problems.contains { $0.contains(base) && $0.contains("missing") }, "\(report.problems)")
    XCTAssertFalse(report.problems.contains { $0.contains("loop") }, "\(report.problems)")
    // Put back, the VM is whole again.
    try FileManager.default.moveItem(atPath: saved, toPath: base)
    library = try Library(at: root, host: host)
    try assertConsistent()
    XCTAssertEqual(try library.checkpoints(vm: "web").map(\.name), ["installed", "configured"])
    try library.restore(checkpoint: try library.checkpoint(vm: "web", named: "installed").id)
    try assertConsistent()
  }

  /// A truncated leaf: repair keeps the VM (and its lab membership and power state), reports the
  /// file, and a restore replaces the damaged leaf.
  func testRepairKeepsAVMWhoseLeafIsTruncated() throws {
    let before = try makeLibrary()
    let leaf = try XCTUnwrap(try library.vm(named: "web").disks[0].chain.first)
    try library.close()
    library = nil
    let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: leaf))
    try handle.truncate(atOffset: 1000)
    try handle.close()
    let report = try Library.repair(at: root, host: host)
    XCTAssertEqual(report.vms, ["db", "web"])
    XCTAssertEqual(report.labs, ["course"])
    XCTAssertTrue(report.problems.contains { $0.contains(leaf) && $0.contains("cannot be read") }, "\(report.problems)")
    library = try Library(at: root, host: host)
    XCTAssertEqual(try library.lab(named: "course").vms, ["web", "db"])
    XCTAssertEqual(try library.vm(named: "web").state, .running, "repair does not mark a running VM stopped")
    XCTAssertEqual(
      try library.checkpoints().map { "\($0.vm) \($0.name) \($0.description) \($0.isCurrent)" }, before.checkpoints)
    XCTAssertTrue(try library.check().contains { $0.contains(leaf) })
    try library.restore(checkpoint: try library.checkpoint(vm: "web", named: "configured").id)
    try assertConsistent()
  }

  /// A row another row refers to is gone (a hand-edited or half-restored catalog): the what-if plan
  /// of a merge said so with a crash (SIGILL) before; now it is an error naming the row and the way out.
  func testAMissingCatalogRowIsAnErrorNotACrash() throws {
    _ = try makeLibrary()
    let configured = try library.checkpoint(vm: "web", named: "configured")
    try library.catalog.database.write { db in
      try db.execute(sql: "DELETE FROM checkpointDisk WHERE checkpointID = ?", arguments: [configured.id])
    }
    let error = expectError(.inconsistent) { try library.merge(checkpoint: configured.id, whatIf: true) }
    XCTAssertTrue(error?.message.contains("checkpointDisk") ?? false, error?.message ?? "")
    XCTAssertTrue(error?.message.contains("vmlab library repair") ?? false, error?.message ?? "")
  }
}
