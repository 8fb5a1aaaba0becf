import Foundation
import VHD

extension Library {
  /// Takes a checkpoint of every disk of a VM, all or nothing: for each disk, a new differencing disk
  /// over its current leaf becomes the leaf the VM writes to.
  ///
  /// A running VM of kind `virtual-server` is shut down first (or turned off without guest
  /// additions, or on a host that cannot shut guests down) and started again afterwards; one of
  /// kind `hypervisor` is checkpointed online, its memory saved with the checkpoint, when
  /// its host can (file systems frozen around it where the host can freeze them). A saved VM is
  /// turned off, its saved state discarded (reported as `.savedStateDiscarded`). A host failure
  /// after the commit throws `.hostFailedAfterCommit`: the checkpoint is taken.
  @discardableResult
  public func checkpoint(
    vm name: String, name checkpointName: String, description: String = "", disksOnly: Bool = false
  ) throws -> CheckpointResult {
    let taken = try checkpoint(vms: [name], name: checkpointName, description: description, disksOnly: disksOnly)[0]
    if let failure = taken.hostFailure { throw failure }
    return taken.result
  }

  /// One VM's part of a checkpoint of several: what it did, and the host's failure to run the VM
  /// again afterwards, if any (the checkpoint is taken all the same).
  struct TakenCheckpoint {
    var result: CheckpointResult
    var hostFailure: LabKitError?
  }

  /// Takes a checkpoint of several VMs at one moment, as one journaled operation (a lab's
  /// checkpoint): every VM is frozen first (memory saved into the checkpoint's file where
  /// the VM runs online, else shut down or turned off), the new differencing disks of all VMs are
  /// made together and committed in one transaction under one time stamp, then the VMs run again.
  /// A crash at any point leaves every VM checkpointed or none.
  ///
  /// On a host that can pause and switch disks (`pauseAndSwitch`) an online VM is not restarted:
  /// freeze, journaled { pause, memory into the checkpoint's file unless `disksOnly`, new
  /// disks }, commit, switch to the new leaves, continue, thaw. Until the commit the paused VM's
  /// files are untouched, so a rollback never needs the host; a crash after it leaves a paused VM
  /// that the next opening of the library switches to the catalog's leaves and continues.
  func checkpoint(vms names: [String], name checkpointName: String, description: String, disksOnly: Bool = false)
    throws -> [TakenCheckpoint]
  {
    try checkCheckpointRequest(vms: names, name: checkpointName)
    return try withVMLocks(names.sorted()) {
      let prepared = try prepareLockedCheckpoint(
        vms: names, name: checkpointName, description: description, disksOnly: disksOnly)
      return try commitPrepared(prepared)
    }
  }

  func checkCheckpointRequest(vms names: [String], name: String) throws {
    try NameRules.validateCheckpoint(name)
    var seen = Set<String>()
    guard names.allSatisfy({ seen.insert(NameRules.key($0)).inserted }) else {
      throw LabKitError(.invalidArgument, "a checkpoint names each VM once; got \(names.joined(separator: ", "))")
    }
  }

  // MARK: Phase one: everything up to the commit

  /// Stops or freezes the VMs and makes every file. When the decision is `decidedElsewhere` (a
  /// cluster's), the commit is kept in the journal beside the files, where a crash leaves it
  /// waiting for that decision. On a failure nothing is kept and the VMs run again as they did.
  /// Holds the VMs' locks.
  func prepareLockedCheckpoint(
    vms names: [String], name: String, description: String, disksOnly: Bool, decidedElsewhere: Bool = false
  ) throws
    -> PreparedCheckpoint
  {
    var work = try catalog.read { tx in
      try names.map { name -> CheckpointWork in
        let vm = try vmRecord(tx, named: name)
        let slots = try tx.slots(ofVM: vm.id!)
        return CheckpointWork(
          vm: vm, driver: try driver(vm), slots: slots, leaves: try slots.map { try tx.existingDisk(id: $0.leafID) })
      }
    }
    try stopOfflineVMs(&work, checkpoint: name)
    try freezePausingVMs(work)
    // One moment for every VM: one creation time, one stamp no VM's files or checkpoints use yet.
    let created = Date()
    let (stamp, paths) = try newLeafPaths(for: work.map { ($0.vm, $0.slots) }, from: created)
    for index in work.indices {
      work[index].newPaths = paths[index]
      // Only a paused VM can go on without its memory; a restarted one resumes from it.
      if work[index].online && !(disksOnly && work[index].pauses) {
        work[index].memoryPath = "\(vmFolder(work[index].vm.name))/\(stamp).vsv"
      }
    }
    // Each VM's disks in slot order; the fault steps name a disk by its number within its VM.
    let disks = work.flatMap { item in
      zip(item.newPaths, item.leaves.map(\.path)).enumerated().map { (new: $1.0, parent: $1.1, number: $0 + 1) }
    }
    let entry = try beginJournalEntry(
      "checkpoint", vm: work.map(\.vm.name).joined(separator: ","),
      creates: disks.map(\.new) + work.compactMap(\.memoryPath), deletes: [])
    do {
      try fault("checkpoint:journaled")
      // Paused here, once the journal names the files: its transaction is not part of the pause.
      try pausePausingVMs(&work)
      var uniqueIDs: [String] = []
      do {
        // Paused VMs' hosts write their memory while the new disks are made here: the pause lasts
        // the longer of the two, not their sum. Waited for before anything is thrown.
        let memory = saveMemoriesOfPausedVMs(work)
        defer { memory.wait() }
        // Each other host streams its VM's memory into the checkpoint's file, named in the journal
        // like the disks; the VM is off from here until it resumes on its new leaves.
        for index in work.indices where !work[index].pauses {
          guard let memoryPath = work[index].memoryPath else { continue }
          if work[index].freezes { try work[index].driver.freezeFileSystems() }
          try work[index].driver.saveMemoryAndStop(to: absolute(memoryPath))
          work[index].memorySaved = true
        }
        for disk in disks {
          try fault("checkpoint:disk\(disk.number)")
          uniqueIDs.append(
            try VirtualDisk.createDifferencing(at: absolute(disk.new), parent: absolute(disk.parent)).closing())
        }
        try memory.result()
      } catch let error where !(error is SimulatedCrash) {
        // Resumed from the memory files while they still exist (the rollback removes them).
        resumeOnOldLeaves(&work)
        throw error
      }
      let commit = CheckpointCommit(
        name: name, description: description, created: created, stamp: stamp,
        vms: work.reduce(into: []) { vms, item in
          let first = vms.reduce(0) { $0 + $1.newLeaves.count }
          vms.append(
            CheckpointCommit.VM(
              vmID: item.vm.id!, memoryPath: item.memoryPath, power: item.power,
              newLeaves: item.slots.indices.map { index in
                NewLeaf(
                  slot: item.slots[index].number, frozenDiskID: item.slots[index].leafID,
                  path: item.newPaths[index], uniqueID: uniqueIDs[first + index])
              }))
        })
      try endFirstPhase(entry, commit: commit, decidedElsewhere: decidedElsewhere)
      return PreparedCheckpoint(entry: entry, commit: commit, work: work)
    } catch let crash as SimulatedCrash {
      throw crash
    } catch {
      try? rollBackJournalEntry(entry)
      runAgainOnOldLeaves(work)
      throw error
    }
  }

  // MARK: Phase two: the decision

  /// Commits a prepared checkpoint, then the VMs run again, online ones on their new leaves. The
  /// checkpoint is taken whatever the hosts do then; a failure to run a VM again is in its result.
  /// Works from the journal entry alone, in the process that prepared it or a later one.
  func commitPrepared(_ prepared: PreparedCheckpoint) throws -> [TakenCheckpoint] {
    let work = try prepared.work ?? phaseTwoWork(prepared.commit)
    let checkpoints: [Checkpoint]
    do {
      checkpoints = try commitJournalEntry(prepared.entry) { tx in try commitCheckpoint(tx, prepared.commit) }
    } catch let crash as SimulatedCrash {
      throw crash
    } catch {
      try? rollBackPrepared(prepared)
      throw error
    }
    try fault("checkpoint:committed")
    try finishJournalEntry(prepared.entry)
    writeManifests(vms: work.map(\.vm.name))
    // Paused VMs first and all together: the pause is the same moment for every VM of a lab.
    var pauses: [String: Double] = [:]
    var failures: [String: LabKitError] = [:]
    for item in work where item.pauses {
      switch continueOnNewLeaves(item, checkpoint: prepared.commit.name) {
      case .success(let seconds): pauses[item.vm.name] = seconds
      case .failure(let error): failures[item.vm.name] = error
      }
    }
    return try zip(work, checkpoints).map { item, checkpoint in
      let failure = item.pauses ? failures[item.vm.name] : runAgain(item, checkpoint: prepared.commit.name)
      return TakenCheckpoint(
        result: CheckpointResult(
          checkpoint: checkpoint, action: item.action, vmState: try self.vm(named: item.vm.name).state,
          pauseSeconds: pauses[item.vm.name]),
        hostFailure: failure)
    }
  }

  /// Takes nothing: the files go (memory files only once the VMs resumed from them) and the VMs
  /// run again on the leaves they had.
  func rollBackPrepared(_ prepared: PreparedCheckpoint) throws {
    var work = try prepared.work ?? phaseTwoWork(prepared.commit)
    resumeOnOldLeaves(&work)
    try rollBackJournalEntry(prepared.entry)
    runAgainOnOldLeaves(work)
  }

  /// The VMs of a prepared checkpoint as phase one left them, from its commit and the catalog.
  private func phaseTwoWork(_ commit: CheckpointCommit) throws -> [CheckpointWork] {
    try catalog.read { tx in
      try commit.vms.map { item in
        let vm = try tx.vm(id: item.vmID)
        var work = CheckpointWork(
          vm: vm, driver: try driver(vm), slots: try tx.slots(ofVM: item.vmID),
          leaves: try item.newLeaves.map { try tx.existingDisk(id: $0.frozenDiskID) })
        work.power = item.power
        work.newPaths = item.newLeaves.map(\.path)
        work.memoryPath = item.memoryPath
        return work
      }
    }
  }

  /// After a checkpoint that was not taken, the VMs run again as they did. An online VM whose
  /// memory was saved and not resumed (the file is gone) is off.
  private func runAgainOnOldLeaves(_ work: [CheckpointWork]) {
    for item in work {
      if item.pauses {
        // Never switched: it goes on writing the leaves it had.
        if item.paused { try? item.driver.continueRunning() }
        if item.freezes { try? item.driver.thawFileSystems() }
      } else if item.online && !item.memorySaved {
        if item.freezes { try? item.driver.thawFileSystems() }
      } else if item.online {
        try? markStopped(item.vm)
      } else if item.wasRunning {
        _ = try? start(vm: item.vm.name)
      }
    }
  }

  /// What checkpointing one VM takes: its host, its slots and their current leaves (the new disks'
  /// parents), what was done to its power, and the files the checkpoint makes.
  struct CheckpointWork {
    var vm: VMRecord
    var driver: ReportingHost
    var slots: [SlotRecord]
    var leaves: [DiskRecord]
    var wasRunning: Bool
    /// Checkpointed while it runs: its kind asks for it and its host can.
    var online: Bool
    /// Its guest's file systems are frozen around the online checkpoint.
    var freezes: Bool
    var action: PowerAction
    /// Checkpointed online without a restart: paused, switched to its new leaves, continued.
    var pauses: Bool
    var paused = false
    var pauseStarted = Date()
    var newPaths: [String] = []
    var memoryPath: String? = nil
    var memorySaved = false

    /// What phase one did to the VM's power, as its commit records it for phase two.
    var power: CheckpointCommit.Power {
      get {
        .init(
          wasRunning: wasRunning, online: online, freezes: freezes, action: action, pauses: pauses, paused: paused,
          pauseStarted: pauseStarted, memorySaved: memorySaved)
      }
      set {
        (wasRunning, online, freezes, action) = (
          newValue.wasRunning, newValue.online, newValue.freezes, newValue.action
        )
        (pauses, paused, pauseStarted, memorySaved) = (
          newValue.pauses, newValue.paused, newValue.pauseStarted, newValue.memorySaved
        )
      }
    }

    init(vm: VMRecord, driver: ReportingHost, slots: [SlotRecord], leaves: [DiskRecord]) {
      self.vm = vm
      self.driver = driver
      self.slots = slots
      self.leaves = leaves
      wasRunning = vm.state == .running
      online =
        wasRunning && vm.hostKind == .hypervisor
        && driver.capabilities.isSuperset(of: [.onlineCheckpoint, .savedState])
      freezes = online && vm.additions && driver.capabilities.contains(.fileSystemFreeze)
      pauses = online && driver.capabilities.contains(.pauseAndSwitch)
      action = online ? .online : .none
    }
  }

  /// Stops every VM that is not checkpointed online and not stopped, several at a time (a guest's
  /// shutdown takes a while), and records it before the checkpoint's own transaction. When one
  /// cannot be stopped, the others run again and nothing is taken.
  private func stopOfflineVMs(_ work: inout [CheckpointWork], checkpoint name: String) throws {
    work = try stopForOperation(
      work,
      stop: { [self] item in
        var item = item
        guard !item.online && item.vm.state != .stopped else { return item }
        do {
          item.action = try stopForOperation(&item.vm)
        } catch let error as LabKitError {
          throw LabKitError(error.kind, "checkpoint '\(name)' of VM '\(item.vm.name)' not taken: \(error.message)")
        }
        return item
      }, stopped: { $0.action != .none && $0.action != .online ? $0.vm : nil }, runAgain: \.wasRunning)
  }

  /// Freezes the file systems of every VM checkpointed without a restart, where it can, before
  /// any is paused (a guest agent takes its time; no VM waits paused for another's). When one
  /// fails, those already frozen are thawed and nothing is taken.
  private func freezePausingVMs(_ work: [CheckpointWork]) throws {
    for (index, item) in work.enumerated() where item.pauses && item.freezes {
      do {
        try item.driver.freezeFileSystems()
      } catch {
        for earlier in work[..<index] where earlier.pauses && earlier.freezes { try? earlier.driver.thawFileSystems() }
        throw error
      }
    }
  }

  /// Pauses every VM checkpointed without a restart, all before any of the checkpoint's files is
  /// made. A failure propagates: the checkpoint rolls back and the caller continues those paused.
  private func pausePausingVMs(_ work: inout [CheckpointWork]) throws {
    for index in work.indices where work[index].pauses {
      work[index].pauseStarted = Date()
      try work[index].driver.pause()
      work[index].paused = true
    }
  }

  /// Starts writing the memory of every paused VM that keeps its memory, each on a thread
  /// of its own (its host does the work; this waits for it).
  private func saveMemoriesOfPausedVMs(_ work: [CheckpointWork]) -> MemorySaves {
    let saves = MemorySaves()
    for item in work where item.pauses {
      guard let memoryPath = item.memoryPath else { continue }
      let (driver, file) = (item.driver, absolute(memoryPath))
      saves.group.enter()
      Thread.detachNewThread {
        do { try driver.saveMemory(to: file) } catch { saves.lock.withLock { saves.failures.append(error) } }
        saves.group.leave()
      }
    }
    return saves
  }

  /// After the commit: points a paused VM's disks at its new leaves, lets it continue and thaws
  /// it; returns how long it was paused. A VM that cannot be switched is turned off rather than
  /// left writing the disks the checkpoint froze.
  private func continueOnNewLeaves(_ item: CheckpointWork, checkpoint name: String) -> Result<Double, LabKitError> {
    let done = "checkpoint '\(name)' of VM '\(item.vm.name)' taken"
    let seconds: Double
    do {
      try item.driver.switchDisks(to: item.newPaths.map(absolute))
      try item.driver.continueRunning()
      seconds = Date().timeIntervalSince(item.pauseStarted)
    } catch {
      try? item.driver.turnOff()
      try? markStopped(item.vm)
      return .failure(notRestarted(done, vm: item.vm.name, error))
    }
    do {
      if item.freezes { try item.driver.thawFileSystems() }
    } catch {
      return .failure(
        LabKitError(
          .hostFailedAfterCommit,
          "\(done); it runs, but its file systems could not be thawed: \(error). Restart it with `vmlab vm turn-off \(item.vm.name)` and `vmlab vm start \(item.vm.name)`"
        ))
    }
    return .success(seconds)
  }

  /// Before a failed checkpoint's files go: online VMs whose state was saved resume from it on
  /// the leaves they had.
  private func resumeOnOldLeaves(_ work: inout [CheckpointWork]) {
    for index in work.indices where work[index].memorySaved {
      let item = work[index]
      try? item.driver.resume(
        hosted(item.vm, disks: item.leaves.map { absolute($0.path) }), from: absolute(item.memoryPath!))
      if item.freezes { try? item.driver.thawFileSystems() }
      work[index].memorySaved = false
    }
  }

  /// Runs a VM again after its checkpoint was committed; returns the host's failure (the VM is then
  /// recorded as stopped), nil when it runs as it did.
  private func runAgain(_ item: CheckpointWork, checkpoint name: String) -> LabKitError? {
    let done = "checkpoint '\(name)' of VM '\(item.vm.name)' taken"
    if let memoryPath = item.memoryPath {
      do {
        try item.driver.resume(try hosted(item.vm), from: absolute(memoryPath))
      } catch {
        try? markStopped(item.vm)
        return notRestarted(done, vm: item.vm.name, error)
      }
      do {
        if item.freezes { try item.driver.thawFileSystems() }
      } catch {
        return LabKitError(
          .hostFailedAfterCommit,
          "\(done); it runs, but its file systems could not be thawed: \(error). Restart it with `vmlab vm turn-off \(item.vm.name)` and `vmlab vm start \(item.vm.name)`"
        )
      }
    } else if item.wasRunning {
      do {
        _ = try start(vm: item.vm.name)
      } catch {
        return notRestarted(done, vm: item.vm.name, error)
      }
    }
    return nil
  }

  /// Records that a VM is off after the host failed to run it again.
  func markStopped(_ record: VMRecord) throws {
    try catalog.write { tx in
      var current = try tx.vm(id: record.id!)
      current.state = .stopped
      try tx.update(current)
    }
    try? writeManifest(vm: record.name)
  }

  /// The catalog side of a checkpoint, from the commit its first phase recorded: for each VM the
  /// checkpoint row, its frozen disks (the old leaves) and the new leaves it writes to from now on.
  func commitCheckpoint(_ tx: CatalogTransaction, _ commit: CheckpointCommit) throws -> [Checkpoint] {
    try commit.vms.map { item in
      var vm = try tx.vm(id: item.vmID)
      var checkpoint = CheckpointRecord(
        id: nil, vmID: item.vmID, name: commit.name, description: commit.description, created: commit.created,
        stamp: commit.stamp, parentID: vm.currentCheckpointID, memoryPath: item.memoryPath)
      try tx.insert(&checkpoint)
      for leaf in item.newLeaves {
        try tx.insert(
          CheckpointDiskRecord(checkpointID: checkpoint.id!, slot: leaf.slot, frozenDiskID: leaf.frozenDiskID))
        try recordNewLeaf(tx, leaf, vmID: item.vmID, madeBy: checkpoint.id)
      }
      vm.currentCheckpointID = checkpoint.id
      try tx.update(vm)
      return try reportedCheckpoint(tx, checkpoint, vm: vm)
    }
  }
}

extension VirtualDisk {
  /// Closes the new disk and gives its unique id (the catalog records it).
  fileprivate func closing() -> String {
    defer { close() }
    return uniqueID.description
  }
}

/// The memory files being written while a checkpoint makes its disks.
final class MemorySaves: @unchecked Sendable {
  let group = DispatchGroup()
  let lock = NSLock()
  var failures: [Error] = []

  func wait() { group.wait() }

  /// Waits for every save and throws the first failure.
  func result() throws {
    wait()
    if let failure = lock.withLock({ failures.first }) { throw failure }
  }
}
