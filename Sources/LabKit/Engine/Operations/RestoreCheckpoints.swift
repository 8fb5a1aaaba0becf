import Foundation
import VHD

/// What a restore did to one VM.
public struct RestoreOutcome: Codable, Equatable, Sendable {
  public var vm: String
  public var checkpoint: Checkpoint
  public var action: PowerAction
  public var state: PowerState
  /// The files it made and deleted.
  public var plan: OperationPlan
}

extension Library {
  // MARK: Entry points

  /// Brings a VM back to a checkpoint (see `restore(checkpoints:)`, which it is for one VM).
  @discardableResult
  public func restore(checkpoint id: Int64, whatIf: Bool = false) throws -> (
    plan: OperationPlan, result: CheckpointResult?
  ) {
    if whatIf { return (try restorePlans(checkpoints: [id])[0], nil) }
    let outcome = try restore(checkpoints: [id])[0]
    return (
      outcome.plan, CheckpointResult(checkpoint: outcome.checkpoint, action: outcome.action, vmState: outcome.state)
    )
  }

  /// Restores the checkpoints chosen by a caller (the CLI's `--all`, Lua's `:restore{all=true}`), with
  /// the rules checked here, once: one checkpoint per VM, and a change of several VMs confirmed
  /// (`BulkChange`: `all`, with `confirm` saying how the caller gives it).
  @discardableResult
  public func restore(checkpoints ids: [Int64], all: Bool, confirm: String) throws -> [RestoreOutcome] {
    let vms = try vmsOfRestore(ids)
    try BulkChange.check(vms: vms, verb: "restore", all: all, whatIf: false, confirm: confirm)
    return try restore(checkpoints: ids)
  }

  /// The same as jobs, one per VM (each runs in its VM's order): the rules are checked now.
  public func restoreJobs(checkpoints ids: [Int64], all: Bool, confirm: String) throws -> [Job] {
    let vms = try vmsOfRestore(ids)
    try BulkChange.check(vms: vms, verb: "restore", all: all, whatIf: false, confirm: confirm)
    return try ids.map { try restoreJob(checkpoint: $0) }
  }

  /// What restoring the chosen checkpoints would do, a plan per VM, changing nothing (a dry run
  /// needs no confirmation, but still one checkpoint per VM).
  public func restorePlans(checkpoints ids: [Int64]) throws -> [OperationPlan] {
    _ = try vmsOfRestore(ids)
    let work = try catalog.read { tx in
      try ids.map { id in
        let checkpoint = try checkpointRecord(tx, id: id)
        return try restoreWork(tx, vm: try tx.vm(id: checkpoint.vmID), checkpoint: checkpoint)
      }
    }
    return try work.map { item in
      var item = item
      item.newPaths = try newLeafPaths(vm: item.vm, slots: item.slots).paths
      return item.plan(action: item.predictedAction, applied: false, absolute: absolute)
    }
  }

  // MARK: The operation

  /// Brings VMs back to checkpoints, one per VM, as one journaled operation. For each disk, a new
  /// empty differencing disk over the checkpoint's frozen disk becomes the leaf, and the layers of
  /// the current line that nothing else needs are deleted. No data is copied, whatever the disk
  /// size; the checkpoints stay, so they can be restored again and again. Every new disk is made
  /// (in parallel) before a single commit switches all the VMs, so a classroom comes back in about
  /// the time of a few VMs, and a crash leaves all of them restored or none.
  ///
  /// Power, before: a running VM is stopped (shut down, or turned off without guest additions, or
  /// at once when the checkpoint brings back its memory); a saved VM's memory is discarded. When one
  /// cannot be stopped, those already stopped run again and nothing is restored. After: an online
  /// checkpoint brings its VM back running from its memory; a VM that ran before a checkpoint
  /// without memory boots again on the restored disks. The VMs are restored whatever the hosts do
  /// then: a VM that does not run again is recorded as stopped and named in the error.
  @discardableResult
  public func restore(checkpoints ids: [Int64]) throws -> [RestoreOutcome] {
    let names = try vmsOfRestore(ids)
    guard !names.isEmpty else { return [] }
    return try withVMLocks(names.sorted()) {
      let prepared = try prepareLockedRestore(checkpoints: ids)
      return try commitPreparedRestore(prepared)
    }
  }

  // MARK: Phase one: everything up to the commit

  /// Stops the VMs and makes every new leaf. When the decision is `decidedElsewhere` (a cluster's),
  /// the commit is kept in the journal beside the files, where a crash leaves it waiting for that
  /// decision. On a failure nothing is kept and the VMs that ran run again. Holds the VMs' locks.
  func prepareLockedRestore(checkpoints ids: [Int64], decidedElsewhere: Bool = false) throws -> PreparedRestore {
    // What each VM needs: its checkpoint's frozen disks, the line that goes, the new leaves
    // (under one stamp for every VM).
    var work: [RestoreWork] = try catalog.read { tx in
      try ids.map { id in
        let checkpoint = try checkpointRecord(tx, id: id)
        return try restoreWork(tx, vm: try tx.vm(id: checkpoint.vmID), checkpoint: checkpoint)
      }
    }
    let paths = try newLeafPaths(for: work.map { ($0.vm, $0.slots) }).paths
    for index in work.indices { work[index].newPaths = paths[index] }

    try stopForRestore(&work)

    // Each VM's disks in slot order; the fault steps name a disk by its number within its VM.
    let disks = work.flatMap { item in
      zip(item.newPaths, item.frozenDiskPaths).enumerated().map { (new: $1.0, parent: $1.1, number: $0 + 1) }
    }
    let entry = try beginJournalEntry(
      "restore", vm: work.map(\.vm.name).joined(separator: ","), creates: disks.map(\.new),
      deletes: work.flatMap { $0.doomed.map(\.path) })
    do {
      try fault("restore:journaled")
      try fault("restore:disks")
      // Making a differencing disk is processor work (its parent's tables read and checked, its
      // own written; no sync), so a few threads per core: sixteen on two cores only added thread
      // start-up and switches.
      var uniqueIDs: [String] = []
      for outcome in parallel(
        disks, width: WorkQueue.defaultWidth,
        { disk -> String in
          try self.fault("restore:disk\(disk.number)")
          let made = try VirtualDisk.createDifferencing(at: self.absolute(disk.new), parent: self.absolute(disk.parent))
          defer { made.close() }
          return made.uniqueID.description
        })
      {
        switch outcome {
        case .success(let id): uniqueIDs.append(id)
        case .failure(let error): throw error
        }
      }
      var next = 0
      let commit = RestoreCommit(
        vms: work.map { item in
          defer { next += item.slots.count }
          return RestoreCommit.VM(
            vmID: item.vm.id!, checkpointID: item.checkpoint.id!, restart: item.restart,
            power: RestoreCommit.Power(
              action: item.action, wasRunning: item.wasRunning, discardedMemory: item.discardedMemory),
            doomedDiskIDs: item.doomed.map { $0.id! },
            newLeaves: item.slots.indices.map { index in
              NewLeaf(
                slot: item.slots[index].number, frozenDiskID: item.frozenDiskIDs[index],
                path: item.newPaths[index], uniqueID: uniqueIDs[next + index])
            })
        })
      try endFirstPhase(entry, commit: commit, decidedElsewhere: decidedElsewhere)
      return PreparedRestore(entry: entry, commit: commit, work: work)
    } catch let crash as SimulatedCrash {
      throw crash
    } catch {
      try? rollBackJournalEntry(entry)
      startAgainAfterRestoreRollBack(work)
      throw error
    }
  }

  // MARK: Phase two: the decision

  /// Commits a prepared restore, removes the discarded line (unless `tidying` is `.later`), and
  /// runs the VMs again. Works from the journal entry alone, in the process that prepared it or a
  /// later one.
  func commitPreparedRestore(_ prepared: PreparedRestore, tidying: Tidying = .now) throws -> [RestoreOutcome] {
    let work = try prepared.work ?? phaseTwoWork(prepared.commit)
    let outcomes: [RestoreOutcome]
    do {
      outcomes = try commitJournalEntry(prepared.entry) { tx in
        try zip(work, prepared.commit.vms).map { item, commit in
          let vm = try commitRestore(tx, commit, recordRunning: item.restart)
          // The checkpoint as it is now, from what the plan already read (no more lookups).
          let checkpoint = reportedCheckpoint(item.checkpoint, vm: vm, frozenDiskPaths: item.frozenDiskPaths)
          return RestoreOutcome(
            vm: vm.name, checkpoint: checkpoint, action: item.action, state: vm.state,
            plan: item.plan(action: item.action, applied: true, absolute: absolute))
        }
      }
    } catch let crash as SimulatedCrash {
      throw crash
    } catch {
      try? rollBackPreparedRestore(prepared)
      throw error
    }
    try fault("restore:committed")
    if tidying == .now {
      try finishJournalEntry(prepared.entry, while: { writeManifests(vms: work.map(\.vm.name)) })
    }
    return try runAgainAfterRestore(work, outcomes)
  }

  /// Restores nothing: the new leaves go and the VMs that ran run again on the disks they had.
  func rollBackPreparedRestore(_ prepared: PreparedRestore) throws {
    let work = try prepared.work ?? phaseTwoWork(prepared.commit)
    try rollBackJournalEntry(prepared.entry)
    startAgainAfterRestoreRollBack(work)
  }

  /// The VMs of a prepared restore as phase one left them, from its commit and the catalog.
  private func phaseTwoWork(_ commit: RestoreCommit) throws -> [RestoreWork] {
    try catalog.read { tx in
      try commit.vms.map { item in
        var work = try restoreWork(
          tx, vm: try tx.vm(id: item.vmID), checkpoint: try checkpointRecord(tx, id: item.checkpointID),
          doomed: try item.doomedDiskIDs.map { try tx.existingDisk(id: $0) })
        work.newPaths = item.newLeaves.map(\.path)
        (work.action, work.wasRunning, work.discardedMemory) = (
          item.power.action, item.power.wasRunning, item.power.discardedMemory
        )
        work.restart = item.restart
        return work
      }
    }
  }

  /// The VMs a restore that was not done stopped, started again (a running guest's memory is gone:
  /// it boots on the disks it had).
  private func startAgainAfterRestoreRollBack(_ work: [RestoreWork]) {
    for item in work where item.wasRunning { _ = try? start(vm: item.vm.name) }
  }

  // MARK: Steps

  /// What restoring one VM to a checkpoint takes: for each slot, the checkpoint's frozen disk (the
  /// new leaf's parent), the layers of the current line that go, and the new leaf's path; then what
  /// was done to the VM's power.
  struct RestoreWork {
    var vm: VMRecord
    var checkpoint: CheckpointRecord
    var slots: [SlotRecord]
    var frozenDiskIDs: [Int64]
    var frozenDiskPaths: [String]
    var doomed: [DiskRecord]
    var newPaths: [String] = []
    /// The saved VM's memory file, discarded by the restore (by the stop, which removes it).
    var discardedMemory: String?
    var action: PowerAction = .none
    /// The VM ran and boots again afterwards (its checkpoint holds no memory).
    var restart = false
    /// The VM ran before the restore stopped it.
    var wasRunning = false

    /// What the restore does to the VM's power, as a plan made before anything runs says it.
    var predictedAction: PowerAction {
      if checkpoint.memoryPath != nil { return .online }
      switch vm.state {
      case .stopped: return .none
      case .saved: return .savedStateDiscarded
      case .running: return vm.additions ? .shutDown : .turnedOff
      }
    }

    func plan(action: PowerAction, applied: Bool, absolute: (String) -> String) -> OperationPlan {
      OperationPlan(
        operation: "restore", vm: vm.name, checkpointsRemoved: [], alsoAffected: [],
        filesRemoved: doomed.map { absolute($0.path) }
          + [discardedMemory ?? vm.savedMemoryPath].compactMap {
            $0.map(absolute)
          },
        filesCreated: newPaths.map(absolute), bytesMerged: 0, powerAction: action, applied: applied)
    }
  }

  /// `doomed`, when given, is the line phase one chose (it is still in the catalog until the commit).
  func restoreWork(
    _ tx: CatalogTransaction, vm: VMRecord, checkpoint: CheckpointRecord, doomed chosen: [DiskRecord]? = nil
  ) throws -> RestoreWork {
    let slots = try tx.slots(ofVM: vm.id!)
    let frozen = try tx.frozenDisks(ofCheckpoint: checkpoint.id!)
    guard frozen.count == slots.count else {
      throw LabKitError(
        .inconsistent,
        "checkpoint \(checkpoint.id!) of VM '\(vm.name)' does not cover every disk; run `vmlab library check`")
    }
    var doomed: [DiskRecord] = chosen ?? []
    if chosen == nil {
      for (slot, disk) in zip(slots, frozen) {
        doomed += try discardableLine(tx, from: slot.leafID, stoppingAt: disk.frozenDiskID)
      }
    }
    return RestoreWork(
      vm: vm, checkpoint: checkpoint, slots: slots, frozenDiskIDs: frozen.map(\.frozenDiskID),
      frozenDiskPaths: try frozen.map { try tx.existingDisk(id: $0.frozenDiskID).path }, doomed: doomed)
  }

  /// Stops every VM that runs or is saved, several at a time (a guest's shutdown takes a while),
  /// and records it before the restore's own transaction. When one cannot be stopped, the others
  /// run again and nothing is restored.
  private func stopForRestore(_ work: inout [RestoreWork]) throws {
    work = try stopForOperation(
      work,
      stop: { [self] item in
        var item = item
        guard item.vm.state != .stopped else { return item }
        let ran = item.vm.state == .running
        item.discardedMemory = item.vm.savedMemoryPath
        do {
          item.action = try stopForOperation(&item.vm, discardingRun: item.checkpoint.memoryPath != nil)
        } catch let error as LabKitError {
          throw LabKitError(error.kind, "VM '\(item.vm.name)' not restored: \(error.message)")
        }
        item.wasRunning = ran
        item.restart = ran && item.checkpoint.memoryPath == nil
        return item
      }, stopped: { $0.action != .none ? $0.vm : nil }, runAgain: \.restart)
  }

  /// The catalog side of one VM's restore, from the commit its first phase recorded: the new leaves
  /// replace the slots' leaves, the discarded line goes, and the VM descends from the checkpoint.
  /// Returns the VM's row.
  func commitRestore(_ tx: CatalogTransaction, _ commit: RestoreCommit.VM, recordRunning: Bool) throws -> VMRecord {
    var vm = try tx.vm(id: commit.vmID)
    for leaf in commit.newLeaves { try recordNewLeaf(tx, leaf, vmID: commit.vmID, madeBy: nil) }
    // Children first: the line is deleted from its leaf down.
    for id in commit.doomedDiskIDs { try tx.deleteDisk(id: id) }
    vm.currentCheckpointID = commit.checkpointID
    // A VM that boots again is recorded running in the same commit (one transaction for a lab);
    // one that then fails to start is recorded stopped.
    if recordRunning { vm.state = .running }
    try tx.update(vm)
    return vm
  }

  /// After the commit: VMs that ran boot again, online checkpoints' VMs resume from their memory
  /// (side by side: each host loads its VM's memory on its own). A VM that does not run again is
  /// recorded as stopped and named in the error, after every other VM was started.
  private func runAgainAfterRestore(_ work: [RestoreWork], _ outcomes: [RestoreOutcome]) throws -> [RestoreOutcome] {
    var finished = outcomes
    var notStarted: [(index: Int, error: Error)] = []
    for (index, item) in work.enumerated() where item.restart {
      do {
        try driver(item.vm).start(hosted(item.vm, disks: item.newPaths.map(absolute)))
        finished[index].state = .running
      } catch {
        try? markStopped(item.vm)
        finished[index].state = .stopped
        notStarted.append((index, error))
      }
    }
    let online = work.indices.compactMap { index in
      work[index].checkpoint.memoryPath.map { (index: index, vm: work[index].vm, memoryPath: $0) }
    }
    for (resumed, outcome) in zip(
      online,
      parallel(online, width: max(1, online.count)) { item in
        try self.resumeOnline(vm: item.vm, memoryPath: item.memoryPath)
      })
    {
      if let error = outcome.failure {
        notStarted.append((resumed.index, error))
        continue
      }
      finished[resumed.index].action = .online
      finished[resumed.index].plan.powerAction = .online
      finished[resumed.index].state = .running
    }
    if notStarted.count == 1 && work.count == 1 {
      let item = work[0]
      throw notRestarted(
        "VM '\(item.vm.name)' restored to checkpoint '\(item.checkpoint.name)'", vm: item.vm.name, notStarted[0].error)
    }
    if !notStarted.isEmpty {
      let names = notStarted.map { "'\(work[$0.index].vm.name)'" }.joined(separator: ", ")
      throw LabKitError(
        .hostFailedAfterCommit,
        "\(work.count) VM\(work.count == 1 ? "" : "s") restored; \(notStarted.count == 1 ? "VM" : "VMs") \(names) did not start again: "
          + notStarted.map { "\(work[$0.index].vm.name): \($0.error)" }.joined(separator: "; ")
          + ". Start \(notStarted.count == 1 ? "it" : "them") with `vmlab vm start NAME`")
    }
    return finished
  }

  /// An online checkpoint's VM comes back running with the memory saved with it.
  func resumeOnline(vm record: VMRecord, memoryPath: String) throws {
    let driver = try driver(record)
    try driver.resume(try hosted(record), from: absolute(memoryPath))
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

  /// The VM of each checkpoint, checking that no VM is restored to two checkpoints at once.
  func vmsOfRestore(_ ids: [Int64]) throws -> [String] {
    // One read for every VM's name: a classroom's worth of checkpoints in one transaction.
    let vms = try catalog.read { tx in try ids.map { try tx.vm(id: try checkpointRecord(tx, id: $0).vmID).name } }
    var counts: [String: (name: String, count: Int)] = [:]
    for vm in vms { counts[NameRules.key(vm), default: (vm, 0)].count += 1 }
    if let (name, count) = counts.values.filter({ $0.count > 1 }).map({ ($0.name, $0.count) }).sorted(by: {
      $0.0 < $1.0
    }).first {
      throw LabKitError(
        .invalidArgument,
        "restore: \(count) checkpoints of VM '\(name)' were chosen; a VM is restored to one checkpoint at a time (choose the most recent, or one by name)"
      )
    }
    return vms
  }

  /// The layers from `leafID` down that exist for nothing but the current line: not any
  /// checkpoint's frozen disk, and with no other child. Stops at `stopID` and at the first disk
  /// something else needs.
  func discardableLine(_ tx: CatalogTransaction, from leafID: Int64, stoppingAt stopID: Int64) throws -> [DiskRecord] {
    var result: [DiskRecord] = []
    var current = try tx.disk(id: leafID)
    var childOnLine: Int64? = nil
    while let disk = current, disk.id != stopID {
      guard disk.role == .layer else { break }
      let isFrozen = try tx.checkpointCount(keepingDisk: disk.id!) > 0
      let otherChildren = try tx.childCount(ofDisk: disk.id!, except: childOnLine)
      if isFrozen || otherChildren > 0 { break }
      result.append(disk)
      childOnLine = disk.id
      current = try disk.parentID.flatMap { try tx.disk(id: $0) }
    }
    return result
  }
}
