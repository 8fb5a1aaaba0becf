import Foundation
import VHD

extension Library {
  /// Brings a VM back to a checkpoint: for each disk, a new empty differencing disk over the
  /// checkpoint's frozen state becomes the leaf, and the differencing disks of the current line that
  /// nothing else needs are deleted. No data is copied, whatever the disk size; the checkpoint stays,
  /// so it can be restored again and again.
  ///
  /// A running VM is stopped first (shut down, or turned off without guest additions). An online
  /// checkpoint brings the VM back running with its saved state; after one without, a VM that ran
  /// boots again on the restored disks.
  @discardableResult
  public func restore(checkpoint id: Int64, whatIf: Bool = false) throws -> (
    plan: OperationPlan, result: CheckpointResult?
  ) {
    let owner = try catalog.read { tx in try tx.vm(id: try checkpointRecord(tx, id: id).vmID).name
    }
    return try withVMLock(owner) {
      var record = try catalog.read { tx in try vmRecord(tx, named: owner) }
      let target = try catalog.read { tx in try checkpointRecord(tx, id: id) }
      var work = try catalog.read { tx in try restoreWork(tx, vm: record, checkpoint: target, restartRunning: false) }
      work.newPaths = try newLeafPaths(vm: record, slots: work.slots).paths
      let powerAction: PowerAction
      switch record.state {
      case .stopped: powerAction = .none
      case .saved: powerAction = .savedStateDiscarded
      case .running: powerAction = record.additions ? .shutDown : .turnedOff
      }
      let plan = OperationPlan(
        operation: "restore", vm: record.name, checkpointsRemoved: [], alsoAffected: [],
        filesRemoved: work.doomed.map { absolute($0.path) } + [record.savedStatePath].compactMap { $0.map(absolute) },
        filesCreated: work.newPaths.map(absolute), bytesMerged: 0,
        powerAction: target.runningStatePath != nil ? .online : powerAction, applied: !whatIf)
      if whatIf { return (plan, nil) }

      let wasRunning = record.state == .running
      var action: PowerAction
      do {
        action = try stopForOperation(&record, discardingRun: target.runningStatePath != nil)
      } catch let error as LabKitError {
        throw LabKitError(error.kind, "VM '\(record.name)' not restored: \(error.message)")
      }
      try catalog.write { tx in try tx.update(record) }
      var uniqueIDs: [String] = []
      let checkpoint = try journaled(
        "restore", vm: record.name, creates: work.newPaths, deletes: work.doomed.map(\.path),
        files: {
          for (index, path) in work.newPaths.enumerated() {
            try fault("restore:disk\(index + 1)")
            let disk = try VirtualDisk.createDifferencing(at: absolute(path), parent: absolute(work.statePaths[index]))
            uniqueIDs.append(disk.uniqueID.description)
            disk.close()
          }
        },
        commit: { tx -> Checkpoint in
          let vm = try commitRestore(tx, work, uniqueIDs: uniqueIDs)
          return try reportedCheckpoint(tx, target, vm: vm)
        })
      writeManifests(vms: [record.name])
      if let statePath = target.runningStatePath {
        do {
          try resumeOnline(vm: record, statePath: statePath)
        } catch {
          throw notRestarted(
            "VM '\(record.name)' restored to checkpoint '\(target.name)'", vm: record.name, error)
        }
        action = .online
      } else if wasRunning {
        // A checkpoint without memory: the VM that ran boots again on the restored disks.
        do {
          _ = try start(vm: record.name)
        } catch {
          throw notRestarted("VM '\(record.name)' restored to checkpoint '\(target.name)'", vm: record.name, error)
        }
      }
      let state = try self.vm(named: record.name).state
      return (plan, CheckpointResult(checkpoint: checkpoint, action: action, vmState: state))
    }
  }

  /// What restoring one VM to a checkpoint takes: for each slot, the checkpoint's frozen disk (the
  /// new leaf's parent), the disks of the current line that go, and the new leaf's path.
  struct RestoreWork {
    var vm: VMRecord
    var checkpoint: CheckpointRecord
    var slots: [SlotRecord]
    var stateIDs: [Int64]
    var statePaths: [String]
    var doomed: [DiskRecord]
    var newPaths: [String] = []
    var action: PowerAction = .none
    /// The VM ran and runs again afterwards (bulk restores of labs).
    var restart: Bool
  }

  func restoreWork(_ tx: CatalogTransaction, vm: VMRecord, checkpoint: CheckpointRecord, restartRunning: Bool) throws
    -> RestoreWork
  {
    let slots = try tx.slots(ofVM: vm.id!)
    let states = try tx.frozenDisks(ofCheckpoint: checkpoint.id!)
    guard states.count == slots.count else {
      throw LabKitError(
        .inconsistent,
        "checkpoint \(checkpoint.id!) of VM '\(vm.name)' does not cover every disk; run `vmlab library check`")
    }
    var doomed: [DiskRecord] = []
    for (slot, state) in zip(slots, states) {
      doomed += try discardableLine(tx, from: slot.leafID, stoppingAt: state.stateID)
    }
    return RestoreWork(
      vm: vm, checkpoint: checkpoint, slots: slots, stateIDs: states.map(\.stateID),
      statePaths: try states.map { try tx.existingDisk(id: $0.stateID).path }, doomed: doomed,
      restart: restartRunning && vm.state == .running && checkpoint.runningStatePath == nil)
  }

  /// The catalog side of a restore: the new leaves (with these unique ids) replace the slots' leaves,
  /// the discarded line goes, and the VM descends from the checkpoint. Returns the VM's row.
  func commitRestore(_ tx: CatalogTransaction, _ work: RestoreWork, uniqueIDs: [String]) throws -> VMRecord {
    for (index, slot) in work.slots.enumerated() {
      var disk = DiskRecord(
        id: nil, path: work.newPaths[index], uniqueID: uniqueIDs[index], parentID: work.stateIDs[index],
        vmID: work.vm.id, slot: slot.number, role: .working, checkpointID: nil)
      try tx.insert(&disk)
      var updated = slot
      updated.leafID = disk.id!
      try tx.update(updated)
    }
    // Children first: the line is deleted from its leaf down.
    for disk in work.doomed { try tx.deleteDisk(id: disk.id!) }
    var vm = try tx.vm(id: work.vm.id!)
    vm.currentCheckpointID = work.checkpoint.id
    if work.restart { vm.state = .running }
    try tx.update(vm)
    return vm
  }

  /// An online checkpoint's VM comes back running with the state saved with it.
  func resumeOnline(vm record: VMRecord, statePath: String) throws {
    let driver = try driver(record)
    try driver.resume(try hosted(record), from: absolute(statePath))
    // The memory was saved between a freeze and a thaw of the guest's file systems: the guest
    // wakes up frozen (its agent refusing most commands) until it is thawed.
    if record.additions && driver.capabilities.contains(.fileSystemFreeze) { try? driver.thawFileSystems() }
    try catalog.write { tx in
      var current = try tx.vm(id: record.id!)
      current.state = .running
      try tx.update(current)
    }
    try? writeManifest(vm: record.name)
  }

  /// The differencing disks from `leafID` down that exist for nothing but the current line: made by a
  /// checkpoint or a restore, not any checkpoint's frozen state, and with no other child. Stops at
  /// `stopID` and at the first disk something else needs.
  func discardableLine(_ tx: CatalogTransaction, from leafID: Int64, stoppingAt stopID: Int64) throws -> [DiskRecord] {
    var result: [DiskRecord] = []
    var current = try tx.disk(id: leafID)
    var childOnLine: Int64? = nil
    while let disk = current, disk.id != stopID {
      guard disk.role == .checkpoint || disk.role == .working else { break }
      let isState = try tx.checkpointCount(keepingDisk: disk.id!) > 0
      let otherChildren = try tx.childCount(ofDisk: disk.id!, except: childOnLine)
      if isState || otherChildren > 0 { break }
      result.append(disk)
      childOnLine = disk.id
      current = try disk.parentID.flatMap { try tx.disk(id: $0) }
    }
    return result
  }
}
