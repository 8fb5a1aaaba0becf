import Foundation
import GRDB
import VHD

extension Library {
  /// Takes a checkpoint of every disk of a VM, all or nothing: for each disk, a new differencing disk
  /// over its current leaf becomes the leaf the VM writes to.
  ///
  /// A running VM of kind `virtual-server` is shut down first (or turned off without guest
  /// additions, or on a host that cannot shut guests down) and started again afterwards; one of
  /// kind `hypervisor` is checkpointed online, its running state saved with the checkpoint, when
  /// its host can (file systems frozen around it where the host can freeze them). A saved VM is
  /// turned off, its saved state discarded (reported as `.savedStateDiscarded`). A host failure
  /// after the commit throws `.hostFailedAfterCommit`: the checkpoint is taken.
  @discardableResult
  public func checkpoint(vm name: String, name checkpointName: String, description: String = "") throws
    -> CheckpointResult
  {
    try NameRules.validateCheckpoint(checkpointName)
    return try withVMLock(name) {
      var record = try catalog.read { db in try vmRecord(db, named: name) }
      let driver = try driver(record)
      let wasRunning = record.state == .running
      // Online only where the VM's kind asks for it and its host can do it; otherwise the VM stops.
      let online =
        wasRunning && record.hostKind == .hypervisor
        && driver.capabilities.isSuperset(of: [.onlineCheckpoint, .savedState])
      let freezes = online && record.additions && driver.capabilities.contains(.fileSystemFreeze)
      var action = PowerAction.none
      if online {
        action = .online
      } else if record.state != .stopped {
        do {
          action = try stopForOperation(&record)
        } catch let error as LabKitError {
          throw LabKitError(
            error.kind, "checkpoint '\(checkpointName)' of VM '\(record.name)' not taken: \(error.message)")
        }
        try catalog.write { db in try record.update(db) }
      }
      let slots = try catalog.read { db in try self.slots(db, vmID: record.id!) }
      let (stamp, newPaths) = try newLeafPaths(vm: record, slots: slots)
      let statePath = online ? "\(vmFolder(record.name))/\(stamp).vsv" : nil
      let leaves = try catalog.read { db in try slots.map { try DiskRecord.fetchExisting(db, key: $0.leafID) } }
      var uniqueIDs: [String] = []
      let vmRecordNow = record
      var stateSaved = false
      let checkpoint: Checkpoint
      do {
        checkpoint = try journaled(
          "checkpoint", vm: record.name, creates: newPaths + (statePath.map { [$0] } ?? []), deletes: [],
          files: {
            // The host streams the running state into the checkpoint's file, named in the journal
            // like the disks; the VM is off from here until it resumes on its new leaves.
            if let statePath {
              if freezes { try driver.freezeFileSystems() }
              try driver.saveState(to: absolute(statePath))
              stateSaved = true
            }
            do {
              for (index, path) in newPaths.enumerated() {
                try fault("checkpoint:disk\(index + 1)")
                let disk = try VirtualDisk.createDifferencing(at: absolute(path), parent: absolute(leaves[index].path))
                uniqueIDs.append(disk.uniqueID.description)
                disk.close()
              }
            } catch let error where !(error is SimulatedCrash) {
              // Resumed from the state file while it still exists (the rollback removes it).
              if let statePath, stateSaved {
                try? driver.resume(hosted(record, disks: leaves.map { absolute($0.path) }), from: absolute(statePath))
                if freezes { try? driver.thawFileSystems() }
                stateSaved = false
              }
              throw error
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
        // Nothing was checkpointed: the VM runs again as it did. An online VM whose state was saved
        // and not resumed (the commit itself failed, the file is gone) is off.
        if online && !stateSaved {
          if freezes { try? driver.thawFileSystems() }
        } else if online {
          try? markStopped(record)
        } else if wasRunning {
          _ = try? start(vm: record.name)
        }
        throw error
      }
      // Back to how it was: running VMs run again, online ones on their new leaves. The checkpoint
      // is taken whatever the host does now, and a failure here says so.
      let done = "checkpoint '\(checkpointName)' of VM '\(record.name)' taken"
      if let statePath {
        do {
          try driver.resume(try hosted(record), from: absolute(statePath))
        } catch {
          try? markStopped(record)
          throw notRestarted(done, vm: record.name, error)
        }
        do {
          if freezes { try driver.thawFileSystems() }
        } catch {
          throw LabKitError(
            .hostFailedAfterCommit,
            "\(done); it runs, but its file systems could not be thawed: \(error). Restart it with `vmlab vm turn-off \(record.name)` and `vmlab vm start \(record.name)`"
          )
        }
      } else if wasRunning {
        do {
          _ = try start(vm: record.name)
        } catch {
          throw notRestarted(done, vm: record.name, error)
        }
      }
      return CheckpointResult(checkpoint: checkpoint, action: action, vmState: try self.vm(named: record.name).state)
    }
  }

  /// Records that a VM is off after the host failed to run it again.
  func markStopped(_ record: VMRecord) throws {
    try catalog.write { db in
      var current = try VMRecord.fetchExisting(db, key: record.id!)
      current.state = .stopped
      try current.update(db)
    }
    try? writeManifest(vm: record.name)
  }
}
