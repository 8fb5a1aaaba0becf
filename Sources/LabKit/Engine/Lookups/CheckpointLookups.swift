import Foundation

extension Library {
  func reportedCheckpoint(_ tx: CatalogTransaction, _ record: CheckpointRecord, vm: VMRecord? = nil) throws
    -> Checkpoint
  {
    let owner = try vm ?? tx.vm(id: record.vmID)
    let states = try tx.frozenDisks(ofCheckpoint: record.id!)
    let paths = try states.map { try tx.disk(id: $0.frozenDiskID)?.path ?? "" }
    return reportedCheckpoint(record, vm: owner, frozenDiskPaths: paths)
  }

  /// The same from rows already read: `frozenDiskPaths` are the frozen disks' catalog paths, slot order.
  func reportedCheckpoint(_ record: CheckpointRecord, vm owner: VMRecord, frozenDiskPaths: [String]) -> Checkpoint {
    Checkpoint(
      id: record.id!, vm: owner.name, name: record.name, description: record.description, created: record.created,
      stamp: record.stamp, parentID: record.parentID, online: record.memoryPath != nil,
      disks: frozenDiskPaths.map { $0.isEmpty ? "" : absolute($0) }, isCurrent: owner.currentCheckpointID == record.id)
  }

  func checkpointRecord(_ tx: CatalogTransaction, id: Int64) throws -> CheckpointRecord {
    guard let record = try tx.checkpoint(id: id) else {
      throw LabKitError(
        .notFound,
        "checkpoint \(id) not found (it was merged or removed); `vmlab checkpoint list` shows the checkpoints")
    }
    return record
  }

  public func checkpoint(id: Int64) throws -> Checkpoint {
    try catalog.read { tx in try reportedCheckpoint(tx, try checkpointRecord(tx, id: id)) }
  }

  /// A VM's checkpoints (or every VM's), oldest first.
  public func checkpoints(vm name: String? = nil) throws -> [Checkpoint] {
    try catalog.read { tx in
      let vmID = try name.map { try vmRecord(tx, named: $0).id! }
      return try tx.checkpointsByCreation(ofVM: vmID).map { try reportedCheckpoint(tx, $0) }
    }
  }

  /// The most recently created checkpoint of each VM (or of one VM), by VM name.
  public func mostRecentCheckpoints(vm name: String? = nil) throws -> [Checkpoint] {
    let all = try checkpoints(vm: name)
    var latest: [String: Checkpoint] = [:]
    for checkpoint in all { latest[checkpoint.vm] = checkpoint }
    return latest.values.sorted { NameRules.key($0.vm) < NameRules.key($1.vm) }
  }

  /// A VM's checkpoint by name (the most recent of that name), or by id when `reference` is a number.
  public func checkpoint(vm name: String, named reference: String) throws -> Checkpoint {
    // The common case in one lookup: the latest checkpoint of that name.
    let found = try catalog.read { tx -> Checkpoint? in
      let vm = try vmRecord(tx, named: name)
      return try tx.latestCheckpoint(named: reference, ofVMNamed: vm.name).map {
        try reportedCheckpoint(tx, $0, vm: vm)
      }
    }
    if let found { return found }
    let candidates = try checkpoints(vm: name)
    if let match = candidates.last(where: { $0.name == reference }) { return match }
    if let id = Int64(reference), let match = candidates.first(where: { $0.id == id }) { return match }
    let known = candidates.map { "'\($0.name)'" }.joined(separator: ", ")
    throw LabKitError(
      .notFound,
      "VM '\(name)' has no checkpoint '\(reference)'; \(known.isEmpty ? "it has no checkpoints yet" : "it has \(known)")"
    )
  }

  /// The checkpoint each of `vms` goes back to when they are restored together: the latest one
  /// named `name` (or whose id it is), or with nil each VM's most recent one. A lab restore in one
  /// library and a host's part of one across a cluster resolve them alike, every VM's before
  /// anything is touched. The everyday case, a class of VMs and one name, is one transaction; a VM
  /// without it is looked up again for the error that says what it has (`lab` names the lab there).
  public func checkpointsToRestore(vms: [String], named name: String?, lab: String? = nil) throws
    -> [(vm: String, checkpointID: Int64, checkpoint: String)]
  {
    let named: [CheckpointRecord?] =
      try name.map { name in
        try catalog.read { tx in try vms.map { vm in try tx.latestCheckpoint(named: name, ofVMNamed: vm) } }
      } ?? Array(repeating: nil, count: vms.count)
    return try zip(vms, named).map { vm, found in
      if let found { return (vm, found.id!, found.name) }
      if let name {
        let checkpoint = try self.checkpoint(vm: vm, named: name)
        return (vm, checkpoint.id, checkpoint.name)
      }
      guard let latest = try mostRecentCheckpoints(vm: vm).first else {
        let which = lab.map { "VM '\(vm)' of lab '\($0)'" } ?? "VM '\(vm)'"
        throw LabKitError(.notFound, "\(which) has no checkpoint; nothing was restored")
      }
      return (vm, latest.id, latest.name)
    }
  }
}
