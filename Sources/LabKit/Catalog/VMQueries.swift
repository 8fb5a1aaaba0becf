import Foundation
import GRDB

// VMs and their disk slots. The lookups a multi-VM operation makes for every VM run on statements
// prepared once per connection (preparing, with GRDB's authorizer, cost more than running them:
// most of a 20-VM lab restore's processor time went there).

extension CatalogTransaction {
  /// The VM of this name, whatever its case.
  func vm(named name: String) throws -> VMRecord? {
    try VMRecord.fetchOne(
      db.cachedStatement(sql: "SELECT * FROM vm WHERE nameKey = ?"), arguments: [NameRules.key(name)])
  }

  /// The VM another row refers to (an error naming the row when it is missing).
  func vm(id: Int64) throws -> VMRecord { try VMRecord.fetchExisting(db, key: id) }

  func hasVM(named name: String) throws -> Bool {
    try VMRecord.filter(VMRecord.Columns.nameKey == NameRules.key(name)).fetchCount(db) > 0
  }

  /// Every VM, by name.
  func vmsByName() throws -> [VMRecord] { try VMRecord.order(VMRecord.Columns.nameKey).fetchAll(db) }

  func vmNames() throws -> [String] { try String.fetchAll(db, sql: "SELECT name FROM vm") }

  func vms(in state: PowerState) throws -> [VMRecord] {
    try VMRecord.filter(VMRecord.Columns.state == state).fetchAll(db)
  }

  /// The memory files of saved VMs (library-relative paths).
  func savedMemoryPaths() throws -> [String] {
    try String.fetchAll(db, sql: "SELECT savedMemoryPath FROM vm WHERE savedMemoryPath IS NOT NULL")
  }

  func setCurrentCheckpoint(ofVM vmID: Int64, to checkpointID: Int64?) throws {
    try db.execute(sql: "UPDATE vm SET currentCheckpointID = ? WHERE id = ?", arguments: [checkpointID, vmID])
  }

  /// Removes a VM's rows: its slots, checkpoints, disks, lab memberships and the VM itself.
  func removeVM(id vmID: Int64) throws {
    try deferForeignKeyChecks()
    try db.execute(sql: "DELETE FROM slot WHERE vmID = ?", arguments: [vmID])
    try db.execute(
      sql: "DELETE FROM checkpointDisk WHERE checkpointID IN (SELECT id FROM checkpoint WHERE vmID = ?)",
      arguments: [vmID])
    try db.execute(sql: "DELETE FROM checkpoint WHERE vmID = ?", arguments: [vmID])
    try db.execute(sql: "DELETE FROM disk WHERE vmID = ?", arguments: [vmID])
    try db.execute(sql: "DELETE FROM labMember WHERE vmID = ?", arguments: [vmID])
    _ = try VMRecord.deleteOne(db, key: vmID)
  }

  /// A VM's disk slots, in order.
  func slots(ofVM vmID: Int64) throws -> [SlotRecord] {
    try SlotRecord.fetchAll(
      db.cachedStatement(sql: "SELECT * FROM slot WHERE vmID = ? ORDER BY number"), arguments: [vmID])
  }

  /// Points a slot at a new leaf.
  func setLeaf(ofVM vmID: Int64, slot: Int, to diskID: Int64) throws {
    // On a statement prepared once: a lab's restore sets every VM's leaves in one commit.
    try db.cachedStatement(sql: "UPDATE slot SET leafID = ? WHERE vmID = ? AND number = ?").execute(
      arguments: [diskID, vmID, slot])
  }
}
