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
  /// Folds a checkpoint's differencing disks, and those of every later checkpoint on the VM's
  /// current line, into the disk below them. The VM's data does not change; the merged checkpoints
  /// disappear (the plan names the later ones that go too). A disk that other branches still read is
  /// never modified: such a merge is refused with what stands in the way.
  @discardableResult
  public func merge(checkpoint id: Int64, whatIf: Bool = false) throws -> OperationPlan {
    let owner = try catalog.read { tx in try tx.vm(id: try checkpointRecord(tx, id: id).vmID).name
    }
    return try withVMLock(owner) {
      let (plan, redo, deletes) = try catalog.read { tx in try mergePlan(tx, checkpointID: id) }
      if whatIf { return plan }
      try refuseWhileAGuestWrites(owner, operation: "merged")
      try journaled(
        "merge", vm: owner, creates: [], deletes: deletes, redo: try encode(redo),
        files: { try performRedoFiles(redo) },
        commit: { tx in try applyRedo(tx, redo) })
      writeManifests(vms: [owner])
      var done = plan
      done.applied = true
      return done
    }
  }

  private func mergePlan(_ tx: CatalogTransaction, checkpointID id: Int64) throws -> (OperationPlan, RedoPlan, [String])
  {
    let target = try checkpointRecord(tx, id: id)
    let vm = try tx.vm(id: target.vmID)
    // The current line, from the VM's current checkpoint back to the one named.
    var line: [CheckpointRecord] = []
    var cursor = try vm.currentCheckpointID.flatMap { try tx.checkpoint(id: $0) }
    while let checkpoint = cursor {
      line.append(checkpoint)
      if checkpoint.id == id { break }
      cursor = try checkpoint.parentID.flatMap { try tx.checkpoint(id: $0) }
    }
    guard line.last?.id == id else {
      throw LabKitError(
        .invalidState,
        "checkpoint '\(target.name)' is not on VM '\(vm.name)''s current line (restore it or a later one first); remove it instead to drop it alone"
      )
    }
    let removed = Set(line.map { $0.id! })
    var folds: [RedoPlan.Fold] = []
    var deleteDisks: [Int64] = []
    var bytes: UInt64 = 0
    for slot in try tx.slots(ofVM: vm.id!) {
      let state = try tx.frozenDisk(ofCheckpoint: id, slot: slot.number)
      let chain = try self.chain(tx, from: slot.leafID)
      guard let targetIndex = chain.firstIndex(where: { $0.id == state.stateID }) else {
        throw LabKitError(
          .inconsistent, "the catalog's chain of VM '\(vm.name)' disk \(slot.number) misses its checkpoint state")
      }
      let folded = Array(chain[..<targetIndex])
      let targetDisk = chain[targetIndex]
      // Nothing outside the merge may read the target or the folded disks.
      for (index, disk) in ([targetDisk] + folded.reversed()).enumerated() {
        let allowedChild =
          index == 0 ? folded.last?.id : (index < folded.count ? folded[folded.count - 1 - index].id : nil)
        let others = try tx.children(ofDisk: disk.id!).filter { $0.id != allowedChild }
        if !others.isEmpty {
          throw LabKitError(
            .conflict,
            "cannot merge checkpoint '\(target.name)': \(disk.path) is also read by \(others.map(\.path).joined(separator: ", ")) (another branch of the checkpoint tree); remove those checkpoints first"
          )
        }
        let dependents = try tx.checkpoints(keepingDisk: disk.id!).filter { !removed.contains($0.id!) && index > 0 }
        if !dependents.isEmpty {
          throw LabKitError(
            .conflict,
            "cannot merge checkpoint '\(target.name)': checkpoint \(dependents.map { "'\($0.name)'" }.joined(separator: ", ")) needs \(disk.path); remove it first"
          )
        }
      }
      for disk in folded {
        let file = try VirtualDisk.open(absolute(disk.path))
        bytes += try file.allocatedBytes()
        file.close()
      }
      folds.append(
        RedoPlan.Fold(
          slot: slot.number, targetID: targetDisk.id!, targetPath: targetDisk.path, paths: folded.reversed().map(\.path)
        ))
      deleteDisks += folded.map { $0.id! }
    }
    let stateFiles = line.compactMap(\.runningStatePath)
    let deletes = try deleteDisks.map { try tx.existingDisk(id: $0).path } + stateFiles
    let plan = OperationPlan(
      operation: "merge", vm: vm.name, checkpointsRemoved: line.reversed().map(\.name),
      alsoAffected: line.dropLast().reversed().map(\.name), filesRemoved: deletes.map(absolute), filesCreated: [],
      bytesMerged: bytes, powerAction: .none, applied: false)
    let redo = RedoPlan(
      vmID: vm.id!, removeCheckpoints: line.map { $0.id! }, folds: folds, absorbs: [], deleteDisks: deleteDisks,
      newCurrentCheckpointID: target.parentID, changesCurrent: true)
    return (plan, redo, deletes)
  }

  /// Removes one checkpoint anywhere in the tree, the finer operation: later checkpoints stay and
  /// restore exactly as before. Its frozen disks are merged into their single child when they have
  /// one, deleted when nothing reads them, and kept while other disks share them.
  @discardableResult
  public func remove(checkpoint id: Int64, whatIf: Bool = false) throws -> OperationPlan {
    let owner = try catalog.read { tx in try tx.vm(id: try checkpointRecord(tx, id: id).vmID).name
    }
    return try withVMLock(owner) {
      let (plan, redo, deletes) = try catalog.read { tx in try removalPlan(tx, checkpointID: id) }
      if whatIf { return plan }
      try refuseWhileAGuestWrites(owner, operation: "removed")
      try journaled(
        "remove-checkpoint", vm: owner, creates: [], deletes: deletes, redo: try encode(redo),
        files: { try performRedoFiles(redo) },
        commit: { tx in try applyRedo(tx, redo) })
      writeManifests(vms: [owner])
      var done = plan
      done.applied = true
      return done
    }
  }

  /// A merge or removal rewrites the chain a running guest's disks are served from (the leaf can
  /// become another file, a child is re-pointed at its grandparent), and a real host's process has
  /// those files open. Rather than pause the guest for as long as the copy takes, it is refused
  /// while such a VM runs. A simulated guest writes through the engine, so it is never in the way.
  private func refuseWhileAGuestWrites(_ name: String, operation: String) throws {
    let vm = try self.vm(named: name)
    guard vm.state == .running, let driver = hosts.driver(named: vm.host), !(driver is SimulatingHost) else { return }
    throw LabKitError(
      .invalidState,
      "checkpoints of VM '\(vm.name)' cannot be \(operation) while it runs on the \(vm.host) host: its process has the disk files open. Turn it off (`vmlab vm turn-off \(vm.name)`) or save it (`vmlab vm save \(vm.name)`) first"
    )
  }

  private func removalPlan(_ tx: CatalogTransaction, checkpointID id: Int64) throws -> (
    OperationPlan, RedoPlan, [String]
  ) {
    let target = try checkpointRecord(tx, id: id)
    let vm = try tx.vm(id: target.vmID)
    let leaves = Set(try tx.slots(ofVM: vm.id!).map(\.leafID))
    var absorbs: [RedoPlan.Absorb] = []
    var deleteDisks: [Int64] = []
    var bytes: UInt64 = 0
    func isStateOfAnother(_ diskID: Int64) throws -> Bool {
      try tx.checkpointCount(keepingDisk: diskID, except: id) > 0
    }
    for state in try tx.frozenDisks(ofCheckpoint: id) {
      var disk = try tx.existingDisk(id: state.stateID)
      guard disk.role == .checkpoint || disk.role == .working, !leaves.contains(disk.id!),
        try !isStateOfAnother(disk.id!)
      else { continue }
      let children = try tx.children(ofDisk: disk.id!)
      if children.count == 1, let parentID = disk.parentID, let grandparent = try tx.disk(id: parentID) {
        let file = try VirtualDisk.open(absolute(disk.path))
        bytes += try file.allocatedBytes()
        file.close()
        absorbs.append(
          RedoPlan.Absorb(
            childID: children[0].id!, childPath: children[0].path, parentID: disk.id!, grandparentID: parentID,
            grandparentPath: grandparent.path))
        deleteDisks.append(disk.id!)
      } else if children.isEmpty {
        // Nothing reads it: delete it, and the disks below that existed only for it.
        deleteDisks.append(disk.id!)
        while let parentID = disk.parentID, let parent = try tx.disk(id: parentID),
          parent.role == .checkpoint || parent.role == .working, !leaves.contains(parentID),
          try !isStateOfAnother(parentID),
          try tx.childCount(ofDisk: parentID) == 1
        {
          deleteDisks.append(parentID)
          disk = parent
        }
      }
    }
    let deletes =
      try deleteDisks.map { try tx.existingDisk(id: $0).path }
      + [target.runningStatePath].compactMap { $0 }
    let plan = OperationPlan(
      operation: "remove", vm: vm.name, checkpointsRemoved: [target.name], alsoAffected: [],
      filesRemoved: deletes.map(absolute), filesCreated: [], bytesMerged: bytes, powerAction: .none, applied: false)
    let redo = RedoPlan(
      vmID: vm.id!, removeCheckpoints: [id], folds: [], absorbs: absorbs, deleteDisks: deleteDisks,
      newCurrentCheckpointID: target.parentID, changesCurrent: vm.currentCheckpointID == id)
    return (plan, redo, deletes)
  }

  // MARK: Redo

  private func encode(_ redo: RedoPlan) throws -> String {
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
