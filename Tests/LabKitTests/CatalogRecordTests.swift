import Foundation
import GRDB
import XCTest

@testable import LabKit

/// The records read and write their columns by hand (no Codable): every column of every table is
/// written, every value comes back as it went in, and rows the Codable code wrote read the same.
final class CatalogRecordTests: XCTestCase {
  var queue: DatabaseQueue!

  override func setUpWithError() throws {
    queue = try DatabaseQueue()
    try Catalog.migrator.migrate(queue)
  }

  override func tearDownWithError() throws {
    try queue?.close()
  }

  /// Whole seconds: the catalog keeps dates to the millisecond, so these compare equal read back.
  let created = Date(timeIntervalSince1970: 1_764_500_000)

  /// The columns SQLite has for a table.
  func columns(_ table: String) throws -> Set<String> {
    try queue.read { db in Set(try db.columns(in: table).map(\.name)) }
  }

  /// A record of each table, with every optional column set, inserted and fetched back equal; and
  /// what each record writes is exactly its table's columns (a column left out would keep its
  /// default and be lost on the next update).
  func testEveryRecordRoundTripsEveryColumn() throws {
    try queue.write { db in
      let tx = CatalogTransaction(db)
      var vm = VMRecord(
        id: nil, name: "Web01", hostKind: .hypervisor, state: .saved, additions: true, created: created,
        currentCheckpointID: nil, savedMemoryPath: "vms/Web01/state.vsv", host: "qemu", memory: 2_147_483_648, cpus: 4,
        bootKernel: "/boot/vmlinuz", bootInitrd: "/boot/initrd", bootCommandLine: "console=ttyS0", network: .none,
        accelerator: .tcg, stoppedOutside: created.addingTimeInterval(60), nameKey: "")
      try tx.insert(&vm)
      XCTAssertEqual(vm.nameKey, "web01")
      var base = DiskRecord(
        id: nil, path: "vms/Web01/Web01-disk1.vhd", uniqueID: "u1", parentID: nil, vmID: vm.id, slot: 1, role: .base,
        checkpointID: nil, sourceUniqueID: "s1")
      try tx.insert(&base)
      var checkpoint = CheckpointRecord(
        id: nil, vmID: vm.id!, name: "clean", description: "before the lab", created: created,
        stamp: "20261130-101500-123",
        parentID: nil, memoryPath: "vms/Web01/clean.vsv")
      try tx.insert(&checkpoint)
      var child = CheckpointRecord(
        id: nil, vmID: vm.id!, name: "later", description: "", created: created, stamp: "20261130-101501-000",
        parentID: checkpoint.id, memoryPath: nil)
      try tx.insert(&child)
      var leaf = DiskRecord(
        id: nil, path: "vms/Web01/Web01-disk1_20261130-101500-123_01.vhd", uniqueID: "u2", parentID: base.id,
        vmID: vm.id, slot: 1, role: .layer, checkpointID: checkpoint.id, sourceUniqueID: nil)
      try tx.insert(&leaf)
      vm.currentCheckpointID = checkpoint.id
      try tx.update(vm)
      let slot = SlotRecord(vmID: vm.id!, number: 1, baseID: base.id!, leafID: leaf.id!)
      try tx.insert(slot)
      let frozen = CheckpointDiskRecord(checkpointID: checkpoint.id!, slot: 1, frozenDiskID: base.id!)
      try tx.insert(frozen)
      var lab = LabRecord(id: nil, name: "Class-A", created: created)
      try tx.insert(&lab)
      XCTAssertEqual(lab.nameKey, "class-a")
      let member = LabMemberRecord(labID: lab.id!, vmID: vm.id!, position: 3)
      try tx.insert(member)
      var job = JobRecord(
        id: nil, kind: "checkpoint", target: "Web01", status: .failed, progress: 0.5, created: created,
        started: created.addingTimeInterval(1), finished: created.addingTimeInterval(2), error: "disk full",
        result: "{\"a\":1}")
      try tx.insert(&job)
      var entry = JournalRecord(
        id: nil, operation: "restore", vmName: "Web01,db02", created: created,
        creates: ["vms/Web01/a b.vhd", "vms/db02/\"q\".vhd"],
        deletes: [], committed: true, redo: "{}")
      try tx.beginJournalEntry(&entry)

      XCTAssertEqual(try VMRecord.fetchOne(db, id: vm.id!), vm)
      XCTAssertEqual(try DiskRecord.fetchOne(db, id: base.id!), base)
      XCTAssertEqual(try DiskRecord.fetchOne(db, id: leaf.id!), leaf)
      XCTAssertEqual(try CheckpointRecord.fetchOne(db, id: checkpoint.id!), checkpoint)
      XCTAssertEqual(try CheckpointRecord.fetchOne(db, id: child.id!), child)
      XCTAssertEqual(try SlotRecord.fetchAll(db), [slot])
      XCTAssertEqual(try CheckpointDiskRecord.fetchAll(db), [frozen])
      XCTAssertEqual(try LabRecord.fetchOne(db, id: lab.id!), lab)
      XCTAssertEqual(try LabMemberRecord.fetchAll(db), [member])
      XCTAssertEqual(try JobRecord.fetchOne(db, id: job.id!), job)
      XCTAssertEqual(try JournalRecord.fetchOne(db, id: entry.id!), entry)
      XCTAssertEqual(
        try JournalVMRecord.fetchAll(db).sorted { $0.vmKey < $1.vmKey },
        [JournalVMRecord(journalID: entry.id!, vmKey: "db02"), JournalVMRecord(journalID: entry.id!, vmKey: "web01")])

      // What each record writes is exactly its table.
      let written: [(String, [String: DatabaseValue])] = [
        ("vm", try vm.databaseDictionary), ("disk", try base.databaseDictionary),
        ("slot", try slot.databaseDictionary), ("checkpoint", try checkpoint.databaseDictionary),
        ("checkpointDisk", try frozen.databaseDictionary), ("lab", try lab.databaseDictionary),
        ("labMember", try member.databaseDictionary), ("job", try job.databaseDictionary),
        ("journal", try entry.databaseDictionary),
        ("journalVM", try JournalVMRecord(journalID: 1, vmKey: "k").databaseDictionary),
      ]
      for (table, dictionary) in written {
        XCTAssertEqual(Set(dictionary.keys), Set(try db.columns(in: table).map(\.name)), "columns of \(table)")
      }
    }
  }

  /// Rows as the Codable records wrote them (GRDB's date text, the file lists as JSON with escaped
  /// slashes) read as before, and the lists are written in that same form.
  func testRowsTheCodableRecordsWroteReadTheSame() throws {
    try queue.write { db in
      try db.execute(
        sql: """
          INSERT INTO journal(id, operation, vmName, created, creates, deletes, committed, redo)
          VALUES (7, 'merge', 'Web01', '2025-11-30 10:53:20.123', '["vms\\/Web01\\/a.vhd"]', '[]', 0, NULL)
          """)
      let entry = try XCTUnwrap(try JournalRecord.fetchOne(db, id: 7))
      XCTAssertEqual(entry.creates, ["vms/Web01/a.vhd"])
      XCTAssertEqual(entry.deletes, [])
      XCTAssertEqual(entry.created.timeIntervalSince1970, 1_764_500_000.123, accuracy: 0.001)
      XCTAssertFalse(entry.committed)
      XCTAssertNil(entry.redo)
      XCTAssertEqual(try entry.databaseDictionary["creates"], "[\"vms\\/Web01\\/a.vhd\"]".databaseValue)
    }
  }

  /// A journal row whose file list is not JSON is an error naming the entry and the way out, not a
  /// crash.
  func testAnUnreadableFileListNamesTheEntry() throws {
    try queue.write { db in
      try db.execute(
        sql: """
          INSERT INTO journal(id, operation, vmName, created, creates, deletes, committed, redo)
          VALUES (9, 'restore', 'Web01', '2025-11-30 10:53:20.123', 'vms/a.vhd', '[]', 0, NULL)
          """)
      XCTAssertThrowsError(try JournalRecord.fetchOne(db, id: 9)) { error in
        let message = (error as? LabKitError)?.message ?? "\(error)"
        XCTAssertTrue(message.contains("journal entry 9"), message)
        XCTAssertTrue(message.contains("creates"), message)
        XCTAssertTrue(message.contains("vmlab library repair"), message)
      }
    }
  }

  /// A column that holds a value its type cannot take (a power state this vmlab does not know) is
  /// an error, not a crash.
  func testAnUnknownEnumValueIsAnError() throws {
    try queue.write { db in
      try db.execute(
        sql: """
          INSERT INTO vm(id, name, hostKind, state, additions, created, nameKey)
          VALUES (1, 'x', 'virtual-server', 'levitating', 0, '2025-11-30 10:53:20.123', 'x')
          """)
      XCTAssertThrowsError(try VMRecord.fetchOne(db, id: 1))
    }
  }

  /// Updating a VM or a slot that has no row is an error naming the row and the way out, as GRDB's
  /// update refused it, never a silent no-op; a disk whose path is taken is refused as before.
  func testWritesOfMissingOrDuplicateRowsAreErrors() throws {
    try queue.write { db in
      let tx = CatalogTransaction(db)
      let ghost = VMRecord(
        id: 41, name: "ghost", hostKind: .virtualServer, state: .stopped, additions: false, created: created,
        currentCheckpointID: nil, savedMemoryPath: nil, nameKey: "ghost")
      XCTAssertThrowsError(try tx.update(ghost)) { error in
        let message = (error as? LabKitError)?.message ?? "\(error)"
        XCTAssertTrue(message.contains("no vm row id 41"), message)
        XCTAssertTrue(message.contains("vmlab library repair"), message)
      }
      XCTAssertThrowsError(try tx.update(SlotRecord(vmID: 41, number: 2, baseID: 1, leafID: 1))) { error in
        let message = (error as? LabKitError)?.message ?? "\(error)"
        XCTAssertTrue(message.contains("no slot row vmID 41, number 2"), message)
      }
      var first = DiskRecord(
        id: nil, path: "vms/a/a-disk1.vhd", uniqueID: "u1", parentID: nil, vmID: nil, slot: nil, role: .base,
        checkpointID: nil)
      try tx.insert(&first)
      XCTAssertEqual(first.id, 1)
      var second = first
      second.id = nil
      XCTAssertThrowsError(try tx.insert(&second)) { error in
        XCTAssertEqual((error as? DatabaseError)?.resultCode, .SQLITE_CONSTRAINT, "\(error)")
      }
      XCTAssertNil(second.id)
      XCTAssertEqual(try DiskRecord.fetchCount(db), 1)
    }
  }
}
