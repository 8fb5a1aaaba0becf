import Foundation

extension Library {
  /// Checkpoints every VM of a lab under one name at one moment, as one journaled operation:
  /// every VM is checkpointed, or none is (see `checkpoint(vms:name:description:)`).
  @discardableResult
  public func checkpointLab(_ name: String, checkpoint checkpointName: String, description: String = "") throws
    -> [LabMemberResult]
  {
    let lab = try labToCheckpoint(name, checkpoint: checkpointName)
    let start = Date()
    let taken: [TakenCheckpoint]
    do {
      taken = try checkpoint(vms: lab.vms, name: checkpointName, description: description)
    } catch let error as LabKitError {
      throw LabKitError(error.kind, "lab '\(lab.name)' was not checkpointed (no VM was): \(error.message)")
    }
    let seconds = Date().timeIntervalSince(start)
    let results = taken.map { taken in
      LabMemberResult(
        vm: taken.result.checkpoint.vm, checkpoint: taken.result.checkpoint.name,
        checkpointID: taken.result.checkpoint.id, action: taken.result.action, state: taken.result.vmState,
        seconds: seconds, hostFailure: taken.hostFailure?.message)
    }
    // Taken everywhere; a VM the host did not run again is said, all of them in one error.
    let notStarted = results.filter { $0.hostFailure != nil }
    if !notStarted.isEmpty {
      throw LabKitError(
        .hostFailedAfterCommit,
        "lab '\(lab.name)' checkpointed as '\(checkpointName)', but \(notStarted.count) of \(lab.vms.count) VMs did not start again: "
          + notStarted.compactMap(\.hostFailure).joined(separator: "; "))
    }
    return results
  }

  /// The lab a checkpoint is asked for, after the checks made before anything starts (a job makes
  /// them when it is submitted).
  func labToCheckpoint(_ name: String, checkpoint checkpointName: String) throws -> Lab {
    try NameRules.validateCheckpoint(checkpointName)
    let lab = try self.lab(named: name)
    guard !lab.vms.isEmpty else { throw LabKitError(.invalidState, "lab '\(lab.name)' has no VMs; add some first") }
    return lab
  }

  /// Restores every VM of a lab to its checkpoint of that name (or its most recent one), all in one
  /// operation. Every VM's checkpoint is found before anything is touched; VMs that were running run
  /// again afterwards.
  @discardableResult
  public func restoreLab(_ name: String, checkpoint checkpointName: String?) throws -> [LabMemberResult] {
    let lab = try self.lab(named: name)
    guard !lab.vms.isEmpty else { throw LabKitError(.invalidState, "lab '\(lab.name)' has no VMs; add some first") }
    // Every VM's checkpoint of that name in one transaction (the everyday case, a class of VMs);
    // a VM without one is looked up again for the error that says what it has.
    let named: [CheckpointRecord?] =
      try checkpointName.map { checkpointName in
        try catalog.read { tx in
          try lab.vms.map { vm in try tx.latestCheckpoint(named: checkpointName, ofVMNamed: vm) }
        }
      } ?? Array(repeating: nil, count: lab.vms.count)
    let targets: [(vm: String, checkpoint: (id: Int64, name: String))] = try zip(lab.vms, named).map { vm, found in
      if let found { return (vm, (found.id!, found.name)) }
      let checkpoint: Checkpoint
      if let checkpointName {
        checkpoint = try self.checkpoint(vm: vm, named: checkpointName)
      } else {
        guard let latest = try mostRecentCheckpoints(vm: vm).first else {
          throw LabKitError(.notFound, "VM '\(vm)' of lab '\(lab.name)' has no checkpoint; nothing was restored")
        }
        checkpoint = latest
      }
      return (vm, (checkpoint.id, checkpoint.name))
    }
    // One journaled operation for the whole lab: all VMs come back, or none.
    let start = Date()
    let restored = try restore(checkpoints: targets.map(\.checkpoint.id))
    let seconds = Date().timeIntervalSince(start)
    return zip(targets, restored).map { target, outcome in
      LabMemberResult(
        vm: target.vm, checkpoint: target.checkpoint.name, checkpointID: target.checkpoint.id, action: outcome.action,
        state: outcome.state, seconds: seconds)
    }
  }
}
