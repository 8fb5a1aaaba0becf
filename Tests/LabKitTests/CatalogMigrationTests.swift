import Foundation
import GRDB
import TestSupport
import XCTest

@testable import LabKit

/// A library whose catalog the previous vmlab wrote (names compared with `COLLATE NOCASE`, a
/// journal entry's VMs as one comma-joined name) opens with the new schema: name keys filled in,
/// journal entries' VMs in their own table, indexes on the disk tree, and everything still found.
final class CatalogMigrationTests: LabKitTestCase {
  /// The last migration of the previous schema.
  let previousSchema = "host-and-hardware"
  var catalogPath: String { root + "/catalog.sqlite" }

  /// Each table's columns and each index, as SQLite describes them.
  func schema(_ db: Database) throws -> [String] {
    let tables = try String.fetchAll(
      db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    var lines: [String] = []
    for table in tables {
      let columns = try Row.fetchAll(db, sql: "PRAGMA table_info(\(table))").map {
        "\($0["name"] as String) \($0["type"] as String) notnull=\($0["notnull"] as Int)"
      }
      lines.append("\(table): \(columns.joined(separator: ", "))")
    }
    lines += try String.fetchAll(
      db, sql: "SELECT 'index ' || name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
    return lines
  }

  /// Turns the catalog the current code wrote back into the previous schema, as the old code left
  /// it, and proves that it is exactly that schema.
  func downgradeCatalog(_ queue: DatabaseQueue) throws {
    try undoPlainWords(queue)
    try queue.writeWithoutTransaction { db in
      try db.execute(sql: "DROP TABLE journalVM")
      for index in [
        "vm_nameKey", "lab_nameKey", "disk_parentID", "disk_vmID", "checkpointDisk_stateID", "checkpoint_vmID",
      ] {
        try db.execute(sql: "DROP INDEX \(index)")
      }
      try db.execute(sql: "ALTER TABLE vm DROP COLUMN nameKey")
      try db.execute(sql: "ALTER TABLE lab DROP COLUMN nameKey")
      try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'catalog-keys'")
    }
    let previous = try DatabaseQueue()
    try Catalog.migrator.migrate(previous, upTo: previousSchema)
    XCTAssertEqual(try queue.read(schema), try previous.read(schema), "the downgraded catalog is the previous schema")
  }

  /// Undoes the "plain-words" migration as the old code would have left the catalog: memory files
  /// as "states", frozen disks as "stateID", layers named for the operation that made them.
  func undoPlainWords(_ queue: DatabaseQueue) throws {
    try queue.writeWithoutTransaction { db in
      // The migration after it first.
      try db.execute(sql: "ALTER TABLE journal DROP COLUMN prepared")
      try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'prepared-operations'")
      try db.execute(sql: "ALTER TABLE vm RENAME COLUMN savedMemoryPath TO savedStatePath")
      try db.execute(sql: "ALTER TABLE checkpoint RENAME COLUMN memoryPath TO runningStatePath")
      try db.execute(sql: "DROP INDEX checkpointDisk_frozenDiskID")
      try db.execute(sql: "ALTER TABLE checkpointDisk RENAME COLUMN frozenDiskID TO stateID")
      try db.execute(sql: "CREATE INDEX checkpointDisk_stateID ON checkpointDisk(stateID)")
      try db.execute(sql: "UPDATE disk SET role = 'checkpoint' WHERE role = 'layer' AND checkpointID IS NOT NULL")
      try db.execute(sql: "UPDATE disk SET role = 'working' WHERE role = 'layer'")
      try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'plain-words'")
    }
    let previous = try DatabaseQueue()
    try Catalog.migrator.migrate(previous, upTo: "catalog-keys")
    XCTAssertEqual(try queue.read(schema), try previous.read(schema), "the downgraded catalog is that schema")
  }

  func testACatalogInTheEarlierWordsOpensWithMemoryFilesFrozenDisksAndLayers() throws {
    try library.createVM(name: "web", diskSizes: [4 * MiB])
    try library.write("web", disk: 1, at: 0, pattern(1, 3000))
    let first = try library.contents("web", disk: 1, size: 4 * MiB)
    let a = try library.checkpoint(vm: "web", name: "a").checkpoint
    try library.write("web", disk: 1, at: MiB, pattern(2, 3000))
    try library.restore(checkpoint: a.id)
    try library.createVM(name: "hv", diskSizes: [4 * MiB], hostKind: .hypervisor)
    try library.start(vm: "hv")
    host.setMemory("hv", "hv memory")
    try library.checkpoint(vm: "hv", name: "live")
    try library.save(vm: "hv")
    try library.close()
    library = nil
    let queue = try DatabaseQueue(path: catalogPath)
    try undoPlainWords(queue)
    XCTAssertEqual(
      try queue.read { db in try String.fetchAll(db, sql: "SELECT DISTINCT role FROM disk ORDER BY role") },
      ["base", "checkpoint", "working"])
    try queue.close()

    library = try Library(at: root, host: host)
    let catalog = try DatabaseQueue(path: catalogPath)
    defer { try? catalog.close() }
    try catalog.read { db in
      XCTAssertEqual(try String.fetchAll(db, sql: "SELECT DISTINCT role FROM disk ORDER BY role"), ["base", "layer"])
      XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM vm WHERE savedMemoryPath IS NOT NULL"), 1)
      XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM checkpoint WHERE memoryPath IS NOT NULL"), 1)
      XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM checkpointDisk WHERE frozenDiskID > 0"), 2)
    }
    XCTAssertEqual(try library.check(), [])
    XCTAssertEqual(try library.vm(named: "hv").state, .saved)
    try library.restore(checkpoint: try library.checkpoint(vm: "web", named: "a").id)
    XCTAssertEqual(try library.contents("web", disk: 1, size: 4 * MiB), first)
    host.setMemory("hv", "other")
    try library.restore(checkpoint: try library.checkpoint(vm: "hv", named: "live").id)
    XCTAssertEqual(host.memory("hv"), "hv memory")
    try library.merge(checkpoint: try library.checkpoint(vm: "web", named: "a").id)
    XCTAssertEqual(try library.contents("web", disk: 1, size: 4 * MiB), first)
    XCTAssertEqual(try library.check(), [])
  }

  func testALibraryOfThePreviousSchemaOpensAndFindsNamesAndJournalEntries() throws {
    try library.createVM(name: "Web01", diskSizes: [4 * MiB])
    try library.createVM(name: "db02", diskSizes: [4 * MiB])
    try library.checkpoint(vm: "Web01", name: "clean")
    _ = try library.createLab(name: "Class", vms: ["Web01", "db02"])
    try library.close()
    library = nil

    // Two operations a crash left in the journal, as the previous vmlab wrote them: a checkpoint of
    // Web01 that made one file (rolled back on opening), and a bulk merge of db02 and another VM
    // whose plan cannot be read (so it stays, and blocks db02 only).
    let stray = "vms/Web01/Web01-disk1_20261130-120000-000_01.vhd"
    try Data("half made".utf8).write(to: URL(fileURLWithPath: root + "/" + stray))
    let queue = try DatabaseQueue(path: catalogPath)
    try downgradeCatalog(queue)
    try queue.write { db in
      try db.execute(
        sql:
          "INSERT INTO journal(operation, vmName, created, creates, deletes, committed, redo) VALUES (?, ?, ?, ?, ?, 0, ?)",
        arguments: ["checkpoint", "Web01", Date(), "[\"\(stray)\"]", "[]", nil])
      try db.execute(
        sql:
          "INSERT INTO journal(operation, vmName, created, creates, deletes, committed, redo) VALUES (?, ?, ?, ?, ?, 0, ?)",
        arguments: ["merge", "db02,Gone03", Date(), "[]", "[]", "not a plan"])
    }
    try queue.close()

    library = try Library(at: root, host: host)

    // The new columns, table and indexes are there, filled from the old rows.
    let catalog = try DatabaseQueue(path: catalogPath)
    defer { try? catalog.close() }
    try catalog.read { db in
      XCTAssertEqual(try String.fetchAll(db, sql: "SELECT nameKey FROM vm ORDER BY nameKey"), ["db02", "web01"])
      XCTAssertEqual(try String.fetchAll(db, sql: "SELECT nameKey FROM lab"), ["class"])
      XCTAssertEqual(try String.fetchAll(db, sql: "SELECT vmKey FROM journalVM ORDER BY vmKey"), ["db02", "gone03"])
      let indexes = Set(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index'"))
      for index in ["vm_nameKey", "lab_nameKey", "journalVM_vmKey", "disk_parentID", "checkpointDisk_frozenDiskID"] {
        XCTAssertTrue(indexes.contains(index), "index \(index) missing")
      }
    }

    // Journal recovery: the checkpoint was rolled back, the unreadable merge is kept and reported.
    XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/" + stray), "the rolled-back file is gone")
    XCTAssertEqual(library.unsettledOperations.map(\.vms), [["db02", "Gone03"]])

    // Names are found whatever their case.
    XCTAssertEqual(try library.vm(named: "WEB01").name, "Web01")
    XCTAssertEqual(try library.vms().map(\.name), ["db02", "Web01"])
    XCTAssertEqual(try library.lab(named: "CLASS").vms, ["Web01", "db02"])
    XCTAssertEqual(try library.checkpoint(vm: "web01", named: "clean").vm, "Web01")
    let duplicate = expectError(.alreadyExists) { try library.createVM(name: "WEB01", diskSizes: [4 * MiB]) }
    XCTAssertTrue(duplicate?.message.contains("VM 'WEB01' already exists") ?? false, duplicate?.message ?? "")

    // The kept entry blocks its own VM, whatever case the name is given in, and no other.
    let blocked = expectError(.inconsistent) { try library.checkpoint(vm: "DB02", name: "after") }
    XCTAssertTrue(blocked?.message.contains("unfinished merge") ?? false, blocked?.message ?? "")
    XCTAssertEqual(try library.checkpoints(vm: "db02"), [])
    XCTAssertEqual(try library.checkpoint(vm: "web01", name: "after").checkpoint.name, "after")
  }

  func testNewRowsGetTheirNameKey() throws {
    try library.createVM(name: "MixedCase", diskSizes: [4 * MiB])
    _ = try library.createLab(name: "Room-B", vms: ["mixedcase"])
    let keys = try library.catalog.read { tx in
      (try tx.vm(named: "MIXEDCASE")?.nameKey, try tx.lab(named: "room-b")?.nameKey)
    }
    XCTAssertEqual(keys.0, "mixedcase")
    XCTAssertEqual(keys.1, "room-b")
    XCTAssertFalse(try library.catalog.read { tx in try tx.hasVM(named: "mixed") })
  }
}
