import Foundation
import VHD

extension Library {
  /// Folds a checkpoint's differencing disks, and those of every later checkpoint on the VM's
  /// current line, into the disk below them. The VM's data does not change; the merged checkpoints
  /// disappear (the plan names the later ones that go too). A disk that other branches still read is
  /// never modified: such a merge is refused with what stands in the way.
  @discardableResult
  public func merge(checkpoint id: Int64, whatIf: Bool = false) throws -> OperationPlan {
    try changeChain(checkpoint: id, operation: "merge", refusedAs: "merged", whatIf: whatIf, plan: mergePlan)
  }

  private func mergePlan(_ tx: CatalogTransaction, checkpointID id: Int64) throws -> (OperationPlan, RedoPlan, [String])
  {
    let target = try checkpointRecord(tx, id: id)
    let vm = try tx.vm(id: target.vmID)
    // The current line, from the VM's current checkpoint back to the one named.
    var line: [CheckpointRecord] = []
    var cursor = try vm.currentCheckpointID.flatMap { try tx.checkpoint(id: $0) }
    while let checkpoint = cursor {
      line.append(checkpoint)
      if checkpoint.id == id { break }
      cursor = try checkpoint.parentID.flatMap { try tx.checkpoint(id: $0) }
    }
    guard line.last?.id == id else {
      throw LabKitError(
        .invalidState,
        "checkpoint '\(target.name)' is not on VM '\(vm.name)''s current line (restore it or a later one first); remove it instead to drop it alone"
      )
    }
    let removed = Set(line.map { $0.id! })
    var folds: [RedoPlan.Fold] = []
    var deleteDisks: [Int64] = []
    var bytes: UInt64 = 0
    for slot in try tx.slots(ofVM: vm.id!) {
      let state = try tx.frozenDisk(ofCheckpoint: id, slot: slot.number)
      let chain = try self.chain(tx, from: slot.leafID)
      guard let targetIndex = chain.firstIndex(where: { $0.id == state.frozenDiskID }) else {
        throw LabKitError(
          .inconsistent, "the catalog's chain of VM '\(vm.name)' disk \(slot.number) misses its checkpoint state")
      }
      let folded = Array(chain[..<targetIndex])
      let targetDisk = chain[targetIndex]
      // Nothing outside the merge may read the target or the folded disks.
      for (index, disk) in ([targetDisk] + folded.reversed()).enumerated() {
        let allowedChild =
          index == 0 ? folded.last?.id : (index < folded.count ? folded[folded.count - 1 - index].id : nil)
        let others = try tx.children(ofDisk: disk.id!).filter { $0.id != allowedChild }
        if !others.isEmpty {
          throw LabKitError(
            .conflict,
            "cannot merge checkpoint '\(target.name)': \(disk.path) is also read by \(others.map(\.path).joined(separator: ", ")) (another branch of the checkpoint tree); remove those checkpoints first"
          )
        }
        let dependents = try tx.checkpoints(keepingDisk: disk.id!).filter { !removed.contains($0.id!) && index > 0 }
        if !dependents.isEmpty {
          throw LabKitError(
            .conflict,
            "cannot merge checkpoint '\(target.name)': checkpoint \(dependents.map { "'\($0.name)'" }.joined(separator: ", ")) needs \(disk.path); remove it first"
          )
        }
      }
      for disk in folded {
        let file = try VirtualDisk.open(absolute(disk.path))
        bytes += try file.allocatedBytes()
        file.close()
      }
      folds.append(
        RedoPlan.Fold(
          slot: slot.number, targetID: targetDisk.id!, targetPath: targetDisk.path, paths: folded.reversed().map(\.path)
        ))
      deleteDisks += folded.map { $0.id! }
    }
    let stateFiles = line.compactMap(\.memoryPath)
    let deletes = try deleteDisks.map { try tx.existingDisk(id: $0).path } + stateFiles
    let plan = OperationPlan(
      operation: "merge", vm: vm.name, checkpointsRemoved: line.reversed().map(\.name),
      alsoAffected: line.dropLast().reversed().map(\.name), filesRemoved: deletes.map(absolute), filesCreated: [],
      bytesMerged: bytes, powerAction: .none, applied: false)
    let redo = RedoPlan(
      vmID: vm.id!, removeCheckpoints: line.map { $0.id! }, folds: folds, absorbs: [], deleteDisks: deleteDisks,
      newCurrentCheckpointID: target.parentID, changesCurrent: true)
    return (plan, redo, deletes)
  }
}

extension Library {
  /// Merges several checkpoints, of one VM or many, as one call (the CLI's `--all`, Lua's
  /// `:merge{all=true}`): the rule for changing several VMs (`BulkChange`) is checked here, once,
  /// with `all` and `whatIf` as the caller's confirmation and `confirm` saying how the caller gives
  /// it. `whatIf` returns each checkpoint's plan and changes nothing. Otherwise `approve` sees the
  /// plans first (throwing there stops everything), then each VM's checkpoints merge in turn —
  /// merging one folds the later ones of its line, which are then skipped — and different VMs in
  /// parallel on the job pool. Each VM's merge is journaled and finished on its own (a merge rolls
  /// forward, never back), so one VM that fails leaves the others merged; the error names every VM
  /// that failed and says how many went through.
  @discardableResult
  public func merge(
    checkpoints ids: [Int64], all: Bool, whatIf: Bool = false, confirm: String,
    approve: ([OperationPlan]) throws -> Void = { _ in }
  ) throws -> [OperationPlan] {
    let checkpoints = try ids.map { try checkpoint(id: $0) }
    try BulkChange.check(vms: checkpoints.map(\.vm), verb: "merge", all: all, whatIf: whatIf, confirm: confirm)
    let plans = try ids.map { try merge(checkpoint: $0, whatIf: true) }
    if whatIf { return plans }
    try approve(plans)
    // One group per VM, in the order the VMs first appear.
    var groups: [(vm: String, ids: [Int64])] = []
    for checkpoint in checkpoints {
      if let index = groups.firstIndex(where: { NameRules.key($0.vm) == NameRules.key(checkpoint.vm) }) {
        groups[index].ids.append(checkpoint.id)
      } else {
        groups.append((checkpoint.vm, [checkpoint.id]))
      }
    }
    let outcomes = jobs.runTogether(
      groups.map { group in
        (
          vm: group.vm,
          work: { () throws -> [OperationPlan] in
            try group.ids.compactMap { id in
              // Already folded by an earlier merge of this group.
              guard (try? self.checkpoint(id: id)) != nil else { return nil }
              return try self.merge(checkpoint: id)
            }
          }
        )
      })
    let failures = zip(groups, outcomes).compactMap { group, outcome in
      outcome.failure.map { "\(group.vm): \($0)" }
    }
    guard failures.isEmpty else {
      throw LabKitError(
        .failed,
        "merge failed for \(failures.count) of \(groups.count) VMs (\(groups.count - failures.count) merged): \(failures.joined(separator: "; "))"
      )
    }
    return outcomes.flatMap { $0.success ?? [] }
  }

  /// The same as jobs: the rule for several VMs is checked now, then each checkpoint's merge is
  /// queued as a job of its VM (a VM's jobs run in the order they were queued).
  public func mergeJobs(checkpoints ids: [Int64], all: Bool, confirm: String) throws -> [Job] {
    let checkpoints = try ids.map { try checkpoint(id: $0) }
    try BulkChange.check(vms: checkpoints.map(\.vm), verb: "merge", all: all, whatIf: false, confirm: confirm)
    return try ids.map { try mergeJob(checkpoint: $0) }
  }
}
