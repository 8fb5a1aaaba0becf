import Foundation
import VHD

/// What a merge or a checkpoint removal does, saved in the journal so that a crash is finished
/// rather than undone: both change files the catalog still uses (reads stay the same throughout).
struct RedoPlan: Codable {
  struct Fold: Codable {
    var slot: Int
    /// The disk that receives the data and becomes the slot's leaf.
    var targetID: Int64
    var targetPath: String
    /// The disks folded into it, nearest to the target first.
    var paths: [String]
  }

  struct Absorb: Codable {
    /// The disk that takes in its parent's sectors and is re-pointed at its grandparent.
    var childID: Int64
    var childPath: String
    var parentID: Int64
    var grandparentID: Int64
    var grandparentPath: String
  }

  var vmID: Int64
  var removeCheckpoints: [Int64]
  var folds: [Fold] = []
  var absorbs: [Absorb] = []
  /// Disk rows to delete once the files are done (their files are the journal's `deletes`).
  var deleteDisks: [Int64]
  var newCurrentCheckpointID: Int64?
  /// When set, the VM's current checkpoint changes to `newCurrentCheckpointID`.
  var changesCurrent: Bool
}

extension Library {
  /// A merge or removal rewrites the chain a running guest's disks are served from (the leaf can
  /// become another file, a child is re-pointed at its grandparent), and a real host's process has
  /// those files open. Rather than pause the guest for as long as the copy takes, it is refused
  /// while such a VM runs. A simulated guest writes through the engine, so it is never in the way.
  func refuseWhileAGuestWrites(_ name: String, operation: String) throws {
    let vm = try self.vm(named: name)
    guard vm.state == .running, let driver = hosts.driver(named: vm.host), !(driver is SimulatingHost) else { return }
    throw LabKitError(
      .invalidState,
      "checkpoints of VM '\(vm.name)' cannot be \(operation) while it runs on the \(vm.host) host: its process has the disk files open. Turn it off (`vmlab vm turn-off \(vm.name)`) or save it (`vmlab vm save \(vm.name)`) first"
    )
  }

  /// A merge or removal of checkpoint `id`, under its VM's lock: the plan (all a dry run gives),
  /// refused while a guest writes, journaled to be finished rather than undone, manifests written.
  func changeChain(
    checkpoint id: Int64, operation: String, refusedAs verb: String, whatIf: Bool,
    plan makePlan: (CatalogTransaction, Int64) throws -> (OperationPlan, RedoPlan, [String])
  ) throws -> OperationPlan {
    let owner = try catalog.read { tx in try tx.vm(id: try checkpointRecord(tx, id: id).vmID).name }
    return try withVMLock(owner) {
      let (plan, redo, deletes) = try catalog.read { tx in try makePlan(tx, id) }
      if whatIf { return plan }
      try refuseWhileAGuestWrites(owner, operation: verb)
      try journaled(
        operation, vm: owner, creates: [], deletes: deletes, redo: try encode(redo),
        files: { try performRedoFiles(redo) },
        commit: { tx in try applyRedo(tx, redo) })
      writeManifests(vms: [owner])
      var done = plan
      done.applied = true
      return done
    }
  }

  // MARK: Redo

  func encode(_ redo: RedoPlan) throws -> String {
    String(decoding: try JSONEncoder().encode(redo), as: UTF8.self)
  }

  /// The file steps of a merge or removal; safe to run again after a crash.
  func performRedoFiles(_ redo: RedoPlan) throws {
    for fold in redo.folds where !fold.paths.isEmpty {
      try fault("merge:fold\(fold.slot)")
      let target = try DiskChain.open(absolute(fold.targetPath), writable: true)
      defer { target.close() }
      let present = fold.paths.filter { FileManager.default.fileExists(atPath: absolute($0)) }
      guard present.count == fold.paths.count else { continue }  // already folded and committed
      _ = try target.fold(present.map(absolute))
    }
    for absorb in redo.absorbs {
      try fault("remove:absorb")
      let child = try DiskChain.open(absolute(absorb.childPath), writable: true)
      defer { child.close() }
      let grandparent = try VirtualDisk.open(absolute(absorb.grandparentPath))
      let done = child.leaf.header?.parentUniqueID == grandparent.uniqueID
      grandparent.close()
      if !done { try child.absorbParent() }
    }
  }

  func applyRedo(_ tx: CatalogTransaction, _ redo: RedoPlan) throws {
    try tx.deferForeignKeyChecks()
    for fold in redo.folds { try tx.setLeaf(ofVM: redo.vmID, slot: fold.slot, to: fold.targetID) }
    for absorb in redo.absorbs { try tx.setParent(ofDisk: absorb.childID, to: absorb.grandparentID) }
    let removed = redo.removeCheckpoints
    // Already gone when a redo runs a second time.
    for id in removed { if let checkpoint = try tx.checkpoint(id: id) { try tx.removeCheckpoint(checkpoint) } }
    for id in redo.deleteDisks { try tx.deleteDisk(id: id) }
    if redo.changesCurrent {
      var current = redo.newCurrentCheckpointID
      while let id = current, removed.contains(id) {
        current = try tx.checkpoint(id: id)?.parentID
      }
      try tx.setCurrentCheckpoint(ofVM: redo.vmID, to: current)
    }
  }

  func completeRedo(entry: JournalRecord, redo text: String) throws {
    let redo = try JSONDecoder().decode(RedoPlan.self, from: Data(text.utf8))
    try performRedoFiles(redo)
    try catalog.write { tx in
      try applyRedo(tx, redo)
      try tx.markJournalEntryCommitted(id: entry.id!)
    }
    removeFiles(entry.deletes)
    try catalog.write { tx in try tx.deleteJournalEntry(id: entry.id!) }
  }
}
