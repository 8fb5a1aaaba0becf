import GRDB

// Labs: named groups of VMs, in the order they were added.

extension CatalogTransaction {
  /// The lab of this name, whatever its case.
  func lab(named name: String) throws -> LabRecord? {
    try LabRecord.filter(LabRecord.Columns.nameKey == NameRules.key(name)).fetchOne(db)
  }

  func hasLab(named name: String) throws -> Bool {
    try LabRecord.filter(LabRecord.Columns.nameKey == NameRules.key(name)).fetchCount(db) > 0
  }

  /// Every lab, by name.
  func labsByName() throws -> [LabRecord] { try LabRecord.order(LabRecord.Columns.nameKey).fetchAll(db) }

  func memberCount(ofLab labID: Int64) throws -> Int {
    try LabMemberRecord.filter(LabMemberRecord.Columns.labID == labID).fetchCount(db)
  }

  /// The names of a lab's VMs, in the order they were added.
  func memberNames(ofLab labID: Int64) throws -> [String] {
    try String.fetchAll(
      db,
      sql:
        "SELECT vm.name FROM labMember JOIN vm ON vm.id = labMember.vmID WHERE labID = ? ORDER BY position, vm.nameKey",
      arguments: [labID])
  }

  /// Adds a VM to a lab; a VM already in it keeps its place.
  func addMember(vm vmID: Int64, toLab labID: Int64, position: Int) throws {
    try LabMemberRecord(labID: labID, vmID: vmID, position: position).insert(db, onConflict: .ignore)
  }

  func deleteLab(id: Int64) throws { _ = try LabRecord.deleteOne(db, key: id) }
}
