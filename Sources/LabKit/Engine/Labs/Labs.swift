import Foundation

extension Library {
  @discardableResult
  public func createLab(name: String, vms names: [String] = []) throws -> Lab {
    try NameRules.validate(name, as: "lab")
    let lab = try catalog.write { tx -> Lab in
      if try tx.hasLab(named: name) {
        throw LabKitError(.alreadyExists, "lab '\(name)' already exists; choose another name")
      }
      let members = try names.map { try vmRecord(tx, named: $0) }
      var record = LabRecord(id: nil, name: name, created: Date())
      try tx.insert(&record)
      for (position, vm) in members.enumerated() {
        try tx.addMember(vm: vm.id!, toLab: record.id!, position: position)
      }
      return try reportedLab(tx, record)
    }
    try? writeLabsManifest()
    return lab
  }

  public func lab(named name: String) throws -> Lab {
    try catalog.read { tx in try reportedLab(tx, try labRecord(tx, named: name)) }
  }

  public func labs() throws -> [Lab] {
    try catalog.read { tx in
      try tx.labsByName().map { try reportedLab(tx, $0) }
    }
  }

  @discardableResult
  public func addToLab(_ name: String, vms names: [String]) throws -> Lab {
    let lab = try catalog.write { tx -> Lab in
      let lab = try labRecord(tx, named: name)
      var position = try tx.memberCount(ofLab: lab.id!)
      for vm in try names.map({ try vmRecord(tx, named: $0) }) {
        try tx.addMember(vm: vm.id!, toLab: lab.id!, position: position)
        position += 1
      }
      return try reportedLab(tx, lab)
    }
    try? writeLabsManifest()
    return lab
  }

  /// Removes the lab (the group), not its VMs.
  public func removeLab(named name: String) throws {
    try catalog.write { tx in
      let lab = try labRecord(tx, named: name)
      try tx.deleteLab(id: lab.id!)
    }
    try? writeLabsManifest()
  }

  func labRecord(_ tx: CatalogTransaction, named name: String) throws -> LabRecord {
    guard let record = try tx.lab(named: name) else {
      throw LabKitError.notFound("lab", name, hint: "`vmlab lab list` shows the labs")
    }
    return record
  }

  func reportedLab(_ tx: CatalogTransaction, _ record: LabRecord) throws -> Lab {
    Lab(id: record.id!, name: record.name, created: record.created, vms: try tx.memberNames(ofLab: record.id!))
  }

  /// The checkpoint names every VM of the lab has.
  public func labCheckpointNames(_ name: String) throws -> [String] {
    let lab = try self.lab(named: name)
    let perVM = try lab.vms.map { Set(try checkpoints(vm: $0).map(\.name)) }
    guard let first = perVM.first else { return [] }
    let common = perVM.dropFirst().reduce(first) { $0.intersection($1) }
    return try checkpoints(vm: lab.vms[0]).map(\.name).filter { common.contains($0) }.reduce(into: [String]()) {
      if !$0.contains($1) { $0.append($1) }
    }
  }
}
