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
    let targets = try checkpointsToRestore(vms: lab.vms, named: checkpointName, lab: lab.name)
    // One journaled operation for the whole lab: all VMs come back, or none.
    let start = Date()
    let restored = try restore(checkpoints: targets.map(\.checkpointID))
    let seconds = Date().timeIntervalSince(start)
    return zip(targets, restored).map { target, outcome in
      LabMemberResult(
        vm: target.vm, checkpoint: target.checkpoint, checkpointID: target.checkpointID, action: outcome.action,
        state: outcome.state, seconds: seconds)
    }
  }
}
