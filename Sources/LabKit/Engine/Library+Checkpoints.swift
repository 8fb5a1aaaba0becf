import Foundation
import GRDB
import VHD

extension Library {
  /// Takes a checkpoint of every disk of a VM, all or nothing: for each disk, a new differencing disk
  /// over its current leaf becomes the leaf the VM writes to.
  ///
  /// A running VM on a `virtual-server` host is shut down first (or turned off without guest
  /// additions) and started again afterwards; on a `hypervisor` host it is checkpointed online and
  /// its running state is saved with the checkpoint. A saved VM is turned off, its saved state
  /// discarded (reported as `.savedStateDiscarded`).
  @discardableResult
  public func checkpoint(vm name: String, name checkpointName: String, description: String = "") throws
    -> CheckpointResult
  {
    try checkpoint(vms: [name], name: checkpointName, description: description)[0]
  }

  /// Takes a checkpoint of several VMs at one moment, as one journaled operation (a lab's
  /// checkpoint): every VM is frozen first (running state saved on a hypervisor host, shut down or
  /// turned off on a virtual-server host), then the new differencing disks of all VMs are made
  /// together and committed in one transaction under one time stamp, then the VMs run again. A
  /// crash at any point leaves every VM checkpointed or none.
  func checkpoint(vms names: [String], name checkpointName: String, description: String) throws
    -> [CheckpointResult]
  {
    try NameRules.validateCheckpoint(checkpointName)
    var seen = Set<String>()
    guard names.allSatisfy({ seen.insert($0.lowercased()).inserted }) else {
      throw LabKitError(.invalidArgument, "a checkpoint names each VM once; got \(names.joined(separator: ", "))")
    }
    return try withVMLocks(names.sorted()) {
      var work = try catalog.read { db in
        try names.map { name -> CheckpointWork in
          let vm = try vmRecord(db, named: name)
          let slots = try self.slots(db, vmID: vm.id!)
          return CheckpointWork(
            vm: vm, wasRunning: vm.state == .running, slots: slots,
            leaves: try slots.map { try DiskRecord.fetchExisting(db, key: $0.leafID) },
            stems: try baseStems(db, vmID: vm.id!))
        }
      }
      try freeze(&work)
      // One moment for every VM: one creation time, one stamp no VM's files or checkpoints use yet.
      let created = Date()
      let stamp = try freshStamp(vms: work.map { ($0.vm, $0.stems) }, from: created)
      for index in work.indices {
        let item = work[index]
        work[index].newPaths = item.slots.indices.map {
          "\(vmFolder(item.vm.name))/"
            + CheckpointFileName(base: item.stems[$0], stamp: stamp, slot: item.slots[$0].number).fileName
        }
        if item.runningState != nil { work[index].statePath = "\(vmFolder(item.vm.name))/\(stamp).vsv" }
      }
      // Each VM's disks in slot order; the fault steps name a disk by its number within its VM.
      let disks = work.flatMap { item in
        zip(item.newPaths, item.leaves.map(\.path)).enumerated().map { (new: $1.0, parent: $1.1, number: $0 + 1) }
      }
      let madeDisks = ParallelResults<String>(count: disks.count)
      let checkpoints: [Checkpoint]
      do {
        checkpoints = try journaled(
          "checkpoint", vm: work.map(\.vm.name).joined(separator: ","),
          creates: disks.map(\.new) + work.compactMap(\.statePath), deletes: [],
          files: {
            for item in work {
              if let path = item.statePath, let state = item.runningState {
                try Data(state).write(to: URL(fileURLWithPath: absolute(path)))
              }
            }
            for (index, disk) in disks.enumerated() {
              try fault("checkpoint:disk\(disk.number)")
              madeDisks.outcomes[index] = .success(
                try VirtualDisk.createDifferencing(at: absolute(disk.new), parent: absolute(disk.parent)).closing())
            }
          },
          commit: { db -> [Checkpoint] in
            var next = 0
            return try work.map { item in
              let ids = madeDisks.outcomes[next..<(next + item.slots.count)].map { $0!.success! }
              next += item.slots.count
              return try commitCheckpoint(
                db, item, name: checkpointName, description: description, created: created, stamp: stamp,
                uniqueIDs: ids)
            }
          })
      } catch let crash as SimulatedCrash {
        throw crash
      } catch {
        // Nothing was checkpointed: the VMs run again as they did.
        thaw(work, leaves: { $0.leaves.map { absolute($0.path) } })
        throw error
      }
      // Back to how it was: running VMs run again (online ones never stopped).
      var results: [CheckpointResult] = []
      for item in work {
        if let state = item.runningState {
          let vm = try self.vm(named: item.vm.name)
          try host.resume(vm: item.vm.name, disks: vm.disks.map(\.path), state: state)
        } else if item.wasRunning {
          _ = try start(vm: item.vm.name)
        }
      }
      for (item, checkpoint) in zip(work, checkpoints) {
        results.append(
          CheckpointResult(checkpoint: checkpoint, action: item.action, vmState: try self.vm(named: item.vm.name).state)
        )
      }
      return results
    }
  }

  /// What checkpointing one VM takes: its slots and their current leaves (the new disks' parents),
  /// what was done to its power, and the files the checkpoint makes.
  struct CheckpointWork {
    var vm: VMRecord
    var wasRunning: Bool
    var slots: [SlotRecord]
    var leaves: [DiskRecord]
    var stems: [String]
    var action = PowerAction.none
    /// An online checkpoint's running state, saved with it.
    var runningState: [UInt8]? = nil
    var newPaths: [String] = []
    var statePath: String? = nil
  }

  /// Freezes every VM for its checkpoint, several at a time (a guest's shutdown takes a while):
  /// a running VM on a hypervisor host gives its running state; any other VM that is not stopped
  /// is stopped, and that is recorded before the checkpoint's own transaction.
  private func freeze(_ work: inout [CheckpointWork]) throws {
    let frozen = parallel(work) { [self] item -> CheckpointWork in
      var item = item
      if item.wasRunning && item.vm.hostKind == .hypervisor {
        item.runningState = try host.saveState(vm: item.vm.name)
        item.action = .online
      } else if item.vm.state != .stopped {
        item.action = try stopForOperation(&item.vm)
      }
      return item
    }
    let failures = frozen.compactMap(\.failure)
    let succeeded = frozen.compactMap(\.success)
    try catalog.write { db in
      for item in succeeded where item.action != .none && item.action != .online { try item.vm.update(db) }
    }
    if let failure = failures.first {
      thaw(succeeded, leaves: { $0.leaves.map { absolute($0.path) } })
      throw failure
    }
    work = succeeded
  }

  /// Brings VMs back to how they ran before a checkpoint that did not happen.
  private func thaw(_ work: [CheckpointWork], leaves: (CheckpointWork) -> [String]) {
    for item in work {
      if let state = item.runningState {
        try? host.resume(vm: item.vm.name, disks: leaves(item), state: state)
      } else if item.wasRunning {
        _ = try? start(vm: item.vm.name)
      }
    }
  }

  /// The catalog side of one VM's checkpoint: the checkpoint row, its frozen disks (the old leaves)
  /// and the new leaves the VM writes to from now on.
  private func commitCheckpoint(
    _ db: Database, _ work: CheckpointWork, name: String, description: String, created: Date, stamp: String,
    uniqueIDs: [String]
  ) throws -> Checkpoint {
    var checkpoint = CheckpointRecord(
      id: nil, vmID: work.vm.id!, name: name, description: description, created: created, stamp: stamp,
      parentID: work.vm.currentCheckpointID, runningStatePath: work.statePath)
    try checkpoint.insert(db)
    for (index, slot) in work.slots.enumerated() {
      try CheckpointDiskRecord(checkpointID: checkpoint.id!, slot: slot.number, stateID: slot.leafID).insert(db)
      var disk = DiskRecord(
        id: nil, path: work.newPaths[index], uniqueID: uniqueIDs[index], parentID: slot.leafID, vmID: work.vm.id,
        slot: slot.number, role: .checkpoint, checkpointID: checkpoint.id)
      try disk.insert(db)
      var updated = slot
      updated.leafID = disk.id!
      try updated.update(db)
    }
    var vm = try VMRecord.fetchExisting(db, key: work.vm.id!)
    vm.currentCheckpointID = checkpoint.id
    try vm.update(db)
    return try checkpointSnapshot(db, checkpoint, vm: vm)
  }
}

extension VirtualDisk {
  /// Closes the new disk and gives its unique id (the catalog records it).
  fileprivate func closing() -> String {
    defer { close() }
    return uniqueID.description
  }
}
