import GRDB

// Checkpoints and, for each slot of one, the frozen disk that holds the VM's data at that moment.

extension CatalogTransaction {
  func checkpoint(id: Int64) throws -> CheckpointRecord? { try CheckpointRecord.fetchOne(db, id: id) }

  /// A VM's checkpoints in the order they were made (by id).
  func checkpoints(ofVM vmID: Int64) throws -> [CheckpointRecord] {
    try CheckpointRecord.fetchAll(
      db.cachedStatement(sql: "SELECT * FROM checkpoint WHERE vmID = ? ORDER BY id"), arguments: [vmID])
  }

  /// Checkpoints by creation time, of one VM or (nil) of all.
  func checkpointsByCreation(ofVM vmID: Int64?) throws -> [CheckpointRecord] {
    var request = CheckpointRecord.order(CheckpointRecord.Columns.created, CheckpointRecord.Columns.id)
    if let vmID { request = request.filter(CheckpointRecord.Columns.vmID == vmID) }
    return try request.fetchAll(db)
  }

  /// A VM's latest checkpoint of this name.
  func latestCheckpoint(named name: String, ofVMNamed vm: String) throws -> CheckpointRecord? {
    try CheckpointRecord.fetchOne(
      db.cachedStatement(
        sql:
          "SELECT * FROM checkpoint WHERE vmID = (SELECT id FROM vm WHERE nameKey = ?) AND name = ? ORDER BY created DESC, id DESC"
      ), arguments: [NameRules.key(vm), name])
  }

  /// Whether a checkpoint of one of these VMs has this time stamp (file names carry it).
  func isStampTaken(_ stamp: String, byAnyOf vmIDs: [Int64]) throws -> Bool {
    try CheckpointRecord.filter(
      vmIDs.contains(CheckpointRecord.Columns.vmID) && CheckpointRecord.Columns.stamp == stamp
    )
    .fetchCount(db) > 0
  }

  /// The checkpoints that keep this disk as one of their frozen disks.
  func checkpoints(keepingDisk diskID: Int64) throws -> [CheckpointRecord] {
    try CheckpointRecord.filter(
      sql: "id IN (SELECT checkpointID FROM checkpointDisk WHERE frozenDiskID = ?)", arguments: [diskID]
    ).fetchAll(db)
  }

  /// The memory files saved with online checkpoints (library-relative paths).
  func checkpointMemoryPaths() throws -> [String] {
    try String.fetchAll(
      db, sql: "SELECT memoryPath FROM checkpoint WHERE memoryPath IS NOT NULL")
  }

  func setParent(ofCheckpoint checkpointID: Int64, to parentID: Int64?) throws {
    try db.execute(sql: "UPDATE checkpoint SET parentID = ? WHERE id = ?", arguments: [parentID, checkpointID])
  }

  /// Removes a checkpoint: its children descend from its parent from now on, and the disks it made
  /// are no longer marked as its own.
  func removeCheckpoint(_ checkpoint: CheckpointRecord) throws {
    guard let id = checkpoint.id else { return }
    try db.execute(
      sql: "UPDATE checkpoint SET parentID = ? WHERE parentID = ?", arguments: [checkpoint.parentID, id])
    try db.execute(sql: "UPDATE disk SET checkpointID = NULL WHERE checkpointID = ?", arguments: [id])
    _ = try CheckpointRecord.deleteOne(db, key: id)
  }

  /// A checkpoint's frozen disks, in slot order.
  func frozenDisks(ofCheckpoint checkpointID: Int64) throws -> [CheckpointDiskRecord] {
    try CheckpointDiskRecord.fetchAll(
      db.cachedStatement(sql: "SELECT * FROM checkpointDisk WHERE checkpointID = ? ORDER BY slot"),
      arguments: [checkpointID])
  }

  /// A checkpoint's frozen disk for one slot (an error naming the row when it is missing).
  func frozenDisk(ofCheckpoint checkpointID: Int64, slot: Int) throws -> CheckpointDiskRecord {
    try CheckpointDiskRecord.fetchExisting(db, key: ["checkpointID": checkpointID, "slot": slot])
  }

  /// How many checkpoints keep this disk as a frozen disk, leaving one checkpoint out (nil: none).
  func checkpointCount(keepingDisk diskID: Int64, except checkpointID: Int64? = nil) throws -> Int {
    try Int.fetchOne(
      db.cachedStatement(sql: "SELECT COUNT(*) FROM checkpointDisk WHERE frozenDiskID = ? AND checkpointID != ?"),
      arguments: [diskID, checkpointID ?? -1]) ?? 0
  }

  /// Frozen disks that name a disk the catalog does not have (damage `library check` reports).
  func danglingFrozenDiskCount() throws -> Int {
    try CheckpointDiskRecord.filter(sql: "frozenDiskID NOT IN (SELECT id FROM disk)").fetchCount(db)
  }
}
