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
    try NameRules.validateCheckpoint(checkpointName)
    return try withVMLock(name) {
      var record = try catalog.read { db in try vmRecord(db, named: name) }
      let wasRunning = record.state == .running
      var action = PowerAction.none
      var runningState: [UInt8]? = nil
      if wasRunning && record.hostKind == .hypervisor {
        runningState = try host.saveState(vm: record.name)
        action = .online
      } else if record.state != .stopped {
        action = try stopForOperation(&record)
        try catalog.write { db in try record.update(db) }
      }
      let slots = try catalog.read { db in try self.slots(db, vmID: record.id!) }
      let (stamp, newPaths) = try newLeafPaths(vm: record, slots: slots)
      let statePath = runningState == nil ? nil : "\(vmFolder(record.name))/\(stamp).vsv"
      let leaves = try catalog.read { db in try slots.map { try DiskRecord.fetchExisting(db, key: $0.leafID) } }
      var uniqueIDs: [String] = []
      let vmRecordNow = record
      let checkpoint: Checkpoint
      do {
        checkpoint = try journaled(
          "checkpoint", vm: record.name, creates: newPaths + (statePath.map { [$0] } ?? []), deletes: [],
          files: {
            if let statePath, let runningState {
              try Data(runningState).write(to: URL(fileURLWithPath: absolute(statePath)))
            }
            for (index, path) in newPaths.enumerated() {
              try fault("checkpoint:disk\(index + 1)")
              let disk = try VirtualDisk.createDifferencing(at: absolute(path), parent: absolute(leaves[index].path))
              uniqueIDs.append(disk.uniqueID.description)
              disk.close()
            }
          },
          commit: { db -> Checkpoint in
            var checkpoint = CheckpointRecord(
              id: nil, vmID: vmRecordNow.id!, name: checkpointName, description: description, created: Date(),
              stamp: stamp,
              parentID: vmRecordNow.currentCheckpointID, runningStatePath: statePath)
            try checkpoint.insert(db)
            for (index, slot) in slots.enumerated() {
              try CheckpointDiskRecord(checkpointID: checkpoint.id!, slot: slot.number, stateID: slot.leafID).insert(db)
              var disk = DiskRecord(
                id: nil, path: newPaths[index], uniqueID: uniqueIDs[index], parentID: slot.leafID, vmID: vmRecordNow.id,
                slot: slot.number, role: .checkpoint, checkpointID: checkpoint.id)
              try disk.insert(db)
              var updated = slot
              updated.leafID = disk.id!
              try updated.update(db)
            }
            var vm = try VMRecord.fetchExisting(db, key: vmRecordNow.id!)
            vm.currentCheckpointID = checkpoint.id
            try vm.update(db)
            return try checkpointSnapshot(db, checkpoint, vm: vm)
          })
      } catch let crash as SimulatedCrash {
        throw crash
      } catch {
        // Nothing was checkpointed: the VM runs again as it did.
        if let runningState {
          try? host.resume(vm: record.name, disks: leaves.map { absolute($0.path) }, state: runningState)
        } else if wasRunning {
          _ = try? start(vm: record.name)
        }
        throw error
      }
      // Back to how it was: running VMs run again (online ones never stopped).
      if let runningState {
        let vm = try self.vm(named: record.name)
        try host.resume(vm: record.name, disks: vm.disks.map(\.path), state: runningState)
      } else if wasRunning {
        _ = try start(vm: record.name)
      }
      return CheckpointResult(checkpoint: checkpoint, action: action, vmState: try self.vm(named: record.name).state)
    }
  }
}
