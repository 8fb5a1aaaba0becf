import Foundation
import GRDB
import VHD

/// What a restore did to one VM.
public struct RestoreOutcome: Codable, Equatable, Sendable {
  public var vm: String
  public var checkpoint: Checkpoint
  public var action: PowerAction
  public var state: PowerState
}

extension Library {
  /// Restores several VMs at once, each to its own checkpoint, as one journaled operation: every
  /// new differencing disk is made (in parallel) before a single commit switches all the VMs, so a
  /// classroom of VMs comes back in about the time of a few, and a crash leaves either all of them
  /// restored or none. At most one checkpoint per VM. With `restartRunning`, VMs that were running
  /// run again afterwards (a lab's students keep working), recorded in the same commit.
  @discardableResult
  public func restore(checkpoints ids: [Int64], restartRunning: Bool = false) throws -> [RestoreOutcome] {
    let targets = try catalog.read { db in
      try ids.map { id -> (checkpoint: CheckpointRecord, vm: String) in
        let checkpoint = try checkpointRecord(db, id: id)
        return (checkpoint, try VMRecord.fetchOne(db, key: checkpoint.vmID)!.name)
      }
    }
    let names = targets.map(\.vm)
    guard Set(names.map { $0.lowercased() }).count == names.count else {
      throw LabKitError(.invalidArgument, "a bulk restore takes one checkpoint per VM; got several for one VM")
    }
    guard !targets.isEmpty else { return [] }
    return try withVMLocks(names.sorted()) {
      struct Work {
        var vm: VMRecord
        var checkpoint: CheckpointRecord
        var slots: [SlotRecord]
        var statePaths: [String]
        var stateIDs: [Int64]
        var newPaths: [String]
        var doomed: [DiskRecord]
        var action: PowerAction
        var restart: Bool
      }
      var work: [Work] = try catalog.read { db in
        try targets.map { target in
          let vm = try vmRecord(db, named: target.vm)
          let slots = try self.slots(db, vmID: vm.id!)
          let states = try CheckpointDiskRecord.filter(Column("checkpointID") == target.checkpoint.id!).order(
            Column("slot")
          )
          .fetchAll(db)
          guard states.count == slots.count else {
            throw LabKitError(
              .inconsistent, "checkpoint \(target.checkpoint.id!) of VM '\(vm.name)' does not cover every disk")
          }
          var doomed: [DiskRecord] = []
          for (slot, state) in zip(slots, states) {
            doomed += try discardableLine(db, from: slot.leafID, stoppingAt: state.stateID)
          }
          return Work(
            vm: vm, checkpoint: target.checkpoint, slots: slots,
            statePaths: try states.map { try DiskRecord.fetchOne(db, key: $0.stateID)!.path },
            stateIDs: states.map(\.stateID),
            newPaths: [], doomed: doomed, action: .none,
            restart: restartRunning && vm.state == .running && target.checkpoint.runningStatePath == nil)
        }
      }
      for index in work.indices {
        let stems = try catalog.read { db in try baseStems(db, vmID: work[index].vm.id!) }
        let stamp = try freshStamp(vm: work[index].vm, bases: stems)
        work[index].newPaths = work[index].slots.indices.map {
          "\(vmFolder(work[index].vm.name))/"
            + CheckpointFileName(base: stems[$0], stamp: stamp, slot: work[index].slots[$0].number).fileName
        }
        work[index].action = try stopForOperation(&work[index].vm)
      }
      try catalog.write { db in for item in work { try item.vm.update(db) } }

      let jobs = work.flatMap { item in zip(item.newPaths, item.statePaths).map { (new: $0, state: $1) } }
      let created = ParallelResults<String>(count: jobs.count)
      let outcomes = try journaled(
        "restore", vm: names.joined(separator: ","), creates: jobs.map(\.new),
        deletes: work.flatMap { $0.doomed.map(\.path) },
        files: {
          try fault("restore:disks")
          for (index, outcome) in try parallel(
            jobs,
            { job -> String in
              let disk = try VirtualDisk.createDifferencing(
                at: self.absolute(job.new), parent: self.absolute(job.state))
              defer { disk.close() }
              return disk.uniqueID.description
            }
          ).enumerated() {
            created.outcomes[index] = outcome
            if let error = outcome.failure { throw error }
          }
        },
        commit: { db -> [RestoreOutcome] in
          var next = 0
          var results: [RestoreOutcome] = []
          for item in work {
            for (index, slot) in item.slots.enumerated() {
              var disk = DiskRecord(
                id: nil, path: item.newPaths[index], uniqueID: created.outcomes[next]!.success!,
                parentID: item.stateIDs[index],
                vmID: item.vm.id, slot: slot.number, role: .working, checkpointID: nil)
              next += 1
              try disk.insert(db)
              var updated = slot
              updated.leafID = disk.id!
              try updated.update(db)
            }
            for disk in item.doomed { _ = try DiskRecord.deleteOne(db, key: disk.id) }
            var vm = try VMRecord.fetchOne(db, key: item.vm.id!)!
            vm.currentCheckpointID = item.checkpoint.id
            if item.restart { vm.state = .running }
            try vm.update(db)
            results.append(
              RestoreOutcome(
                vm: vm.name, checkpoint: try checkpointSnapshot(db, item.checkpoint, vm: vm), action: item.action,
                state: vm.state))
          }
          return results
        })
      // Online checkpoints bring their VMs back running; the others that ran start again.
      var finished = outcomes
      for (index, item) in work.enumerated() where item.restart {
        try host.start(vm: item.vm.name, disks: item.newPaths.map(absolute))
        finished[index].state = .running
      }
      for (index, item) in work.enumerated() {
        guard let statePath = item.checkpoint.runningStatePath else { continue }
        let vm = try self.vm(named: item.vm.name)
        try host.resume(vm: vm.name, disks: vm.disks.map(\.path), state: try readFile(absolute(statePath)))
        try catalog.write { db in
          try db.execute(sql: "UPDATE vm SET state = 'running' WHERE id = ?", arguments: [item.vm.id])
        }
        try? writeManifest(vm: vm.name)
        finished[index].action = .online
        finished[index].state = .running
      }
      return finished
    }
  }

  /// Holds several VMs' locks at once, always taken in the same (sorted) order.
  func withVMLocks<T>(_ names: [String], _ body: () throws -> T) throws -> T {
    guard let first = names.first else { return try body() }
    return try withVMLock(first) { try withVMLocks(Array(names.dropFirst()), body) }
  }
}
