import Foundation

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
