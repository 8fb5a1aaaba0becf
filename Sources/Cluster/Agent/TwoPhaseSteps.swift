import Foundation
import LabKit

// The agent's side of a lab operation across hosts: phase one prepares on this host's library and
// hands back the id of the operation left waiting there; phase two carries out the coordinator's
// decision on it. Both are safe to run again: a retried prepare takes over what an earlier attempt
// prepared, and a decision already carried out is reported as such. Neither reports progress: each
// is one part, and the step's end records it whole without a write of its own on the way.

extension StepRunner {
  /// A fault hook for the failure tests: seconds a prepare step waits before it prepares
  /// (`VMLAB_AGENT_PREPARE_DELAY_SECONDS`), so that a test can kill or pause another host, or the
  /// coordinator, while this one is still preparing. Unset, it is 0.
  static let prepareDelay: Double = max(
    0, ProcessInfo.processInfo.environment["VMLAB_AGENT_PREPARE_DELAY_SECONDS"].flatMap(Double.init) ?? 0)

  private func delayForTests() {
    if Self.prepareDelay > 0 { Thread.sleep(forTimeInterval: Self.prepareDelay) }
  }

  func prepareCheckpoint(_ arguments: PrepareCheckpointStep, attempt: Int) throws -> Outcome {
    let names = try checked(arguments.vms)
    try NameRules.validateCheckpoint(arguments.name)
    let library = try libraryForRetry(attempt: attempt)
    if let earlier = waitingOperation(in: library, kind: "checkpoint", vms: names), attempt > 1 {
      return Outcome(
        message:
          "checkpoint '\(arguments.name)' of \(names.joined(separator: ", ")) was prepared by an earlier attempt (operation \(earlier)); waiting for the decision",
        prepared: earlier)
    }
    delayForTests()
    guard stillHeld() else { throw LeaseLost() }
    let prepared = try library.prepareCheckpoint(
      vms: names, name: arguments.name, description: arguments.description, disksOnly: arguments.disksOnly)
    preparedOperations?.keep(.checkpoint(prepared), id: prepared.operationID)
    return Outcome(
      message:
        "prepared checkpoint '\(arguments.name)' of \(names.joined(separator: ", ")) (operation \(prepared.operationID)); waiting for the decision",
      prepared: prepared.operationID)
  }

  func prepareRestore(_ arguments: PrepareRestoreStep, attempt: Int) throws -> Outcome {
    let names = try checked(arguments.vms)
    if let name = arguments.checkpoint { try NameRules.validateCheckpoint(name) }
    let library = try libraryForRetry(attempt: attempt)
    if let earlier = waitingOperation(in: library, kind: "restore", vms: names), attempt > 1 {
      return Outcome(
        message:
          "restore of \(names.joined(separator: ", ")) was prepared by an earlier attempt (operation \(earlier)); waiting for the decision",
        prepared: earlier)
    }
    // Every VM's checkpoint is found before anything is touched, as a restore in one library finds them.
    let targets = try library.checkpointsToRestore(vms: names, named: arguments.checkpoint)
    delayForTests()
    guard stillHeld() else { throw LeaseLost() }
    let prepared = try library.prepareRestore(checkpoints: targets.map(\.checkpointID))
    preparedOperations?.keep(.restore(prepared), id: prepared.operationID)
    let what = targets.map { "\($0.vm) to '\($0.checkpoint)'" }.joined(separator: ", ")
    return Outcome(
      message: "prepared the restore of \(what) (operation \(prepared.operationID)); waiting for the decision",
      prepared: prepared.operationID)
  }

  func decide(_ arguments: DecideStep) throws -> Outcome {
    let names = try checked(arguments.vms)
    let verb = arguments.commit ? "committed" : "rolled back"
    guard let id = arguments.prepared else {
      // The host never reported a prepared operation: roll back whatever a late prepare left.
      guard !arguments.commit else {
        throw ClusterError(.usage, "a commit needs the prepared operation's id; this step has none")
      }
      let library = try reopen?() ?? self.library
      guard let waiting = waitingOperation(in: library, kind: arguments.kind, vms: names) else {
        return Outcome(
          message: "nothing of lab operation \(arguments.operation) was prepared here; nothing to roll back")
      }
      _ = try library.decidePrepared(operation: waiting, commit: false)
      return Outcome(
        message: "rolled back operation \(waiting) (\(arguments.kind) of \(names.joined(separator: ", ")))")
    }
    // The VMs of a committed restore, whose replaced disks the agent removes once it answered.
    var untidied: [String] = []
    do {
      let vms: [String]
      switch preparedOperations?.take(id) {
      case .restore(let prepared)?:
        if arguments.commit { untidied = prepared.vms }
        try library.decide(prepared, commit: arguments.commit, tidying: .later)
        vms = prepared.vms
      case .checkpoint(let prepared)?:
        try library.decide(prepared, commit: arguments.commit)
        vms = prepared.vms
      case nil:
        vms = try library.decidePrepared(operation: id, commit: arguments.commit)
      }
      return Outcome(
        message: "\(verb) operation \(id) (\(arguments.kind) of \(vms.joined(separator: ", ")))", untidied: untidied)
    } catch let error as LabKitError where error.kind == .hostFailedAfterCommit {
      // Committed all the same: the checkpoint is taken; the host only failed to run a VM again.
      return Outcome(message: "committed operation \(id); \(error.message)", untidied: untidied)
    } catch let error as LabKitError where error.kind == .notFound || error.message.contains("decided already") {
      // A retry: an earlier attempt carried the decision out before its result was recorded.
      return Outcome(message: "operation \(id) no longer waits here: an earlier attempt \(verb) it")
    }
  }

  /// The library to prepare on: after a first attempt, opened afresh so that an operation an
  /// earlier attempt prepared is seen in its journal.
  private func libraryForRetry(attempt: Int) throws -> Library {
    guard attempt > 1, let reopen else { return library }
    return try reopen()
  }

  /// The prepared operation of `kind` that waits for its decision on exactly `vms`, if one does.
  /// The library refuses any other operation on VMs that wait, so one on exactly these VMs is the
  /// one an earlier attempt of this step prepared.
  private func waitingOperation(in library: Library, kind: String, vms: [String]) -> Int64? {
    let wanted = Set(vms.map(NameRules.key))
    return library.unsettledOperations.first { operation in
      operation.preparedOperationID != nil && operation.operation == kind
        && Set(operation.vms.map(NameRules.key)) == wanted
    }?.preparedOperationID
  }
}
