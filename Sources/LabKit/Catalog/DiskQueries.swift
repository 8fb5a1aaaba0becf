import GRDB

// Disk rows and the tree they form (each names its parent).

extension CatalogTransaction {
  func disk(id: Int64) throws -> DiskRecord? { try DiskRecord.fetchOne(db, id: id) }

  /// The disk another row refers to (an error naming the row when it is missing).
  func existingDisk(id: Int64) throws -> DiskRecord { try DiskRecord.fetchExisting(db, key: id) }

  func disk(atPath path: String) throws -> DiskRecord? {
    try DiskRecord.filter(DiskRecord.Columns.path == path).fetchOne(db)
  }

  func allDisks() throws -> [DiskRecord] { try DiskRecord.fetchAll(db) }

  /// The disks in a VM's folder.
  func disks(ofVM vmID: Int64) throws -> [DiskRecord] {
    try DiskRecord.filter(DiskRecord.Columns.vmID == vmID).fetchAll(db)
  }

  /// A VM's disks and the templates its linked clones read through: every disk its manifest names.
  func disksAndTemplates(ofVM vmID: Int64) throws -> [DiskRecord] {
    try DiskRecord.fetchAll(
      db.cachedStatement(
        sql: "SELECT * FROM disk WHERE vmID = ? OR id IN (SELECT parentID FROM disk WHERE vmID = ? AND role = ?)"),
      arguments: [vmID, vmID, DiskRole.clone])
  }

  /// The template made from the disk with this unique id (or that disk itself, as a template).
  func template(madeFrom uniqueID: String) throws -> DiskRecord? {
    try DiskRecord.filter(
      DiskRecord.Columns.role == DiskRole.template
        && (DiskRecord.Columns.sourceUniqueID == uniqueID || DiskRecord.Columns.uniqueID == uniqueID)
    ).fetchOne(db)
  }

  /// The differencing disks over this one.
  func children(ofDisk diskID: Int64) throws -> [DiskRecord] {
    try DiskRecord.filter(DiskRecord.Columns.parentID == diskID).fetchAll(db)
  }

  /// How many disks have this parent, leaving one child out (nil: none left out).
  func childCount(ofDisk parentID: Int64, except childID: Int64? = nil) throws -> Int {
    try Int.fetchOne(
      db.cachedStatement(sql: "SELECT COUNT(*) FROM disk WHERE parentID = ? AND id != ?"),
      arguments: [parentID, childID ?? -1]) ?? 0
  }

  /// Every disk that is some disk's parent.
  func parentDiskIDs() throws -> Set<Int64> {
    Set(try Int64.fetchAll(db, sql: "SELECT parentID FROM disk WHERE parentID IS NOT NULL"))
  }

  func setParent(ofDisk diskID: Int64, to parentID: Int64?) throws {
    try db.execute(sql: "UPDATE disk SET parentID = ? WHERE id = ?", arguments: [parentID, diskID])
  }

  /// Records which checkpoint made a disk.
  func setCheckpoint(ofDisk diskID: Int64, to checkpointID: Int64?) throws {
    try db.execute(sql: "UPDATE disk SET checkpointID = ? WHERE id = ?", arguments: [checkpointID, diskID])
  }

  /// Makes a disk a layer that a checkpoint made (`library repair` recognising a checkpoint's file).
  func markLayer(_ diskID: Int64, madeBy checkpointID: Int64) throws {
    try db.execute(
      sql: "UPDATE disk SET role = ?, checkpointID = ? WHERE id = ?",
      arguments: [DiskRole.layer, checkpointID, diskID])
  }

  /// On a statement prepared once: a restore removes every VM's discarded line in one commit, and
  /// GRDB's `deleteOne(key:)` builds and prepares its statement anew each time.
  func deleteDisk(id: Int64) throws {
    try db.cachedStatement(sql: "DELETE FROM disk WHERE id = ?").execute(arguments: [id])
  }
}
