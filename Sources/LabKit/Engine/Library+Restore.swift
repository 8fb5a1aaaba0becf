import Foundation
import GRDB
import VHD

extension Library {
  /// Brings a VM back to a checkpoint: for each disk, a new empty differencing disk over the
  /// checkpoint's frozen state becomes the leaf, and the differencing disks of the current line that
  /// nothing else needs are deleted. No data is copied, whatever the disk size; the checkpoint stays,
  /// so it can be restored again and again.
  ///
  /// A running VM is stopped first (shut down, or turned off without guest additions). An online
  /// checkpoint brings the VM back running with its saved state.
  @discardableResult
  public func restore(checkpoint id: Int64, whatIf: Bool = false) throws -> (
    plan: OperationPlan, result: CheckpointResult?
  ) {
    let owner = try catalog.read { db in try VMRecord.fetchOne(db, key: try checkpointRecord(db, id: id).vmID)!.name }
    return try withVMLock(owner) {
      var record = try catalog.read { db in try vmRecord(db, named: owner) }
      let target = try catalog.read { db in try checkpointRecord(db, id: id) }
      let (slots, stems, states, doomed) = try catalog.read { db in
        let slots = try self.slots(db, vmID: record.id!)
        let states = try CheckpointDiskRecord.filter(Column("checkpointID") == id).order(Column("slot")).fetchAll(db)
        guard states.count == slots.count else {
          throw LabKitError(
            .inconsistent, "checkpoint \(id) of VM '\(owner)' does not cover every disk; run `vmlab library check`")
        }
        var doomed: [DiskRecord] = []
        for (slot, state) in zip(slots, states) {
          doomed += try discardableLine(db, from: slot.leafID, stoppingAt: state.stateID)
        }
        return (slots, try baseStems(db, vmID: record.id!), states, doomed)
      }
      let stamp = try freshStamp(vm: record, bases: stems)
      let folder = vmFolder(record.name)
      let newPaths = slots.indices.map {
        "\(folder)/" + CheckpointFileName(base: stems[$0], stamp: stamp, slot: slots[$0].number).fileName
      }
      let powerAction: PowerAction =
        record.state == .stopped ? .none : (record.state == .running && record.additions ? .shutDown : .turnedOff)
      let plan = OperationPlan(
        operation: "restore", vm: record.name, checkpointsRemoved: [], alsoAffected: [],
        filesRemoved: doomed.map { absolute($0.path) } + [record.savedStatePath].compactMap { $0.map(absolute) },
        filesCreated: newPaths.map(absolute), bytesMerged: 0,
        powerAction: target.runningStatePath != nil ? .online : powerAction, applied: !whatIf)
      if whatIf { return (plan, nil) }

      var action = try stopForOperation(&record)
      try catalog.write { db in try record.update(db) }
      let statePaths = try catalog.read { db in try states.map { try DiskRecord.fetchOne(db, key: $0.stateID)!.path } }
      var uniqueIDs: [String] = []
      let vmID = record.id!
      let checkpoint = try journaled(
        "restore", vm: record.name, creates: newPaths, deletes: doomed.map(\.path),
        files: {
          for (index, path) in newPaths.enumerated() {
            try fault("restore:disk\(index + 1)")
            let disk = try VirtualDisk.createDifferencing(at: absolute(path), parent: absolute(statePaths[index]))
            uniqueIDs.append(disk.uniqueID.description)
            disk.close()
          }
        },
        commit: { db -> Checkpoint in
          for (index, slot) in slots.enumerated() {
            var disk = DiskRecord(
              id: nil, path: newPaths[index], uniqueID: uniqueIDs[index], parentID: states[index].stateID, vmID: vmID,
              slot: slot.number, role: .working, checkpointID: nil)
            try disk.insert(db)
            var updated = slot
            updated.leafID = disk.id!
            try updated.update(db)
          }
          // Children first: the line is deleted from its leaf down.
          for disk in doomed { _ = try DiskRecord.deleteOne(db, key: disk.id) }
          var vm = try VMRecord.fetchOne(db, key: vmID)!
          vm.currentCheckpointID = id
          try vm.update(db)
          return try checkpointSnapshot(db, target, vm: vm)
        })
      if let statePath = target.runningStatePath {
        let state = try readFile(absolute(statePath))
        let vm = try self.vm(named: record.name)
        try host.resume(vm: record.name, disks: vm.disks.map(\.path), state: state)
        try catalog.write { db in
          try db.execute(sql: "UPDATE vm SET state = 'running' WHERE id = ?", arguments: [vmID])
        }
        action = .online
        try? writeManifest(vm: record.name)
      }
      let state = try self.vm(named: record.name).state
      return (plan, CheckpointResult(checkpoint: checkpoint, action: action, vmState: state))
    }
  }

  /// The differencing disks from `leafID` down that exist for nothing but the current line: made by a
  /// checkpoint or a restore, not any checkpoint's frozen state, and with no other child. Stops at
  /// `stopID` and at the first disk something else needs.
  func discardableLine(_ db: Database, from leafID: Int64, stoppingAt stopID: Int64) throws -> [DiskRecord] {
    var result: [DiskRecord] = []
    var current = try DiskRecord.fetchOne(db, key: leafID)
    var childOnLine: Int64? = nil
    while let disk = current, disk.id != stopID {
      guard disk.role == .checkpoint || disk.role == .working else { break }
      let isState = try CheckpointDiskRecord.filter(Column("stateID") == disk.id!).fetchCount(db) > 0
      let otherChildren = try DiskRecord.filter(Column("parentID") == disk.id! && Column("id") != (childOnLine ?? -1))
        .fetchCount(db)
      if isState || otherChildren > 0 { break }
      result.append(disk)
      childOnLine = disk.id
      current = try disk.parentID.flatMap { try DiskRecord.fetchOne(db, key: $0) }
    }
    return result
  }
}
