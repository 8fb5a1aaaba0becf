import GRDB

// Lookups a multi-VM operation makes for every VM and disk, as named queries on statements
// prepared once per connection (preparing, with GRDB's authorizer, cost more than running them:
// most of a 20-VM lab restore's processor time went there).

extension CheckpointDiskRecord {
  /// A checkpoint's frozen disks, in slot order.
  static func all(_ db: Database, checkpointID: Int64) throws -> [CheckpointDiskRecord] {
    try fetchAll(
      db.cachedStatement(sql: "SELECT * FROM checkpointDisk WHERE checkpointID = ? ORDER BY slot"),
      arguments: [checkpointID])
  }

  /// How many checkpoints keep this disk as their frozen state.
  static func count(_ db: Database, stateID: Int64) throws -> Int {
    try Int.fetchOne(
      db.cachedStatement(sql: "SELECT COUNT(*) FROM checkpointDisk WHERE stateID = ?"), arguments: [stateID]) ?? 0
  }
}

extension DiskRecord {
  /// How many disks have this parent, leaving one child out (nil: none left out).
  static func countChildren(_ db: Database, of parentID: Int64, except childID: Int64?) throws -> Int {
    try Int.fetchOne(
      db.cachedStatement(sql: "SELECT COUNT(*) FROM disk WHERE parentID = ? AND id != ?"),
      arguments: [parentID, childID ?? -1]) ?? 0
  }
}

extension VMRecord {
  /// The VM of this name, whatever its case.
  static func fetchOne(_ db: Database, named name: String) throws -> VMRecord? {
    try fetchOne(db.cachedStatement(sql: "SELECT * FROM vm WHERE name = ? COLLATE NOCASE"), arguments: [name])
  }
}

extension CheckpointRecord {
  /// A VM's latest checkpoint of this name.
  static func latest(_ db: Database, vmNamed vm: String, named name: String) throws -> CheckpointRecord? {
    try fetchOne(
      db.cachedStatement(
        sql:
          "SELECT * FROM checkpoint WHERE vmID = (SELECT id FROM vm WHERE name = ? COLLATE NOCASE) AND name = ? ORDER BY created DESC, id DESC"
      ), arguments: [vm, name])
  }
}
