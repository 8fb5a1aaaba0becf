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
  /// Restores the checkpoints chosen by a caller (the CLI's `--all`, Lua's `:restore{all=true}`), with
  /// the rules checked here, once: one checkpoint per VM, and a change of several VMs confirmed
  /// (`BulkChange`: `all`, with `confirm` saying how the caller gives it). All come back in one
  /// journaled operation, or none.
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
    return try ids.map { try restore(checkpoint: $0, whatIf: true).plan }
  }

  /// The VM of each checkpoint, checking that no VM is restored to two checkpoints at once.
  private func vmsOfRestore(_ ids: [Int64]) throws -> [String] {
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

  /// Restores several VMs at once, each to its own checkpoint, as one journaled operation: every
  /// new differencing disk is made (in parallel) before a single commit switches all the VMs, so a
  /// classroom of VMs comes back in about the time of a few, and a crash leaves either all of them
  /// restored or none. At most one checkpoint per VM. With `restartRunning`, VMs that were running
  /// run again afterwards (a lab's students keep working), recorded in the same commit.
  @discardableResult
  public func restore(checkpoints ids: [Int64], restartRunning: Bool = false) throws -> [RestoreOutcome] {
    let targets = try catalog.read { tx in
      try ids.map { id -> (checkpoint: CheckpointRecord, vm: String) in
        let checkpoint = try checkpointRecord(tx, id: id)
        return (checkpoint, try tx.vm(id: checkpoint.vmID).name)
      }
    }
    let names = targets.map(\.vm)
    guard Set(names.map(NameRules.key)).count == names.count else {
      throw LabKitError(.invalidArgument, "a bulk restore takes one checkpoint per VM; got several for one VM")
    }
    guard !targets.isEmpty else { return [] }
    return try withVMLocks(names.sorted()) {
      var work: [RestoreWork] = try catalog.read { tx in
        try targets.map { target in
          try restoreWork(
            tx, vm: try vmRecord(tx, named: target.vm), checkpoint: target.checkpoint, restartRunning: restartRunning)
        }
      }
      // One stamp for the new leaves of every VM (one lookup, not one per VM).
      let paths = try newLeafPaths(for: work.map { ($0.vm, $0.slots) }).paths
      for index in work.indices {
        work[index].newPaths = paths[index]
        work[index].action = try stopForOperation(
          &work[index].vm, discardingRun: work[index].checkpoint.runningStatePath != nil)
      }
      let stopped = work.filter { $0.action != .none }
      if !stopped.isEmpty { try catalog.write { tx in for item in stopped { try tx.update(item.vm) } } }

      let jobs = work.flatMap { item in zip(item.newPaths, item.statePaths).map { (new: $0, state: $1) } }
      let created = ParallelResults<String>(count: jobs.count)
      let outcomes = try journaled(
        "restore", vm: names.joined(separator: ","), creates: jobs.map(\.new),
        deletes: work.flatMap { $0.doomed.map(\.path) },
        files: {
          try fault("restore:disks")
          // Making a differencing disk is processor work (its parent's tables read and checked,
          // its own written; no sync), so a few threads per core: sixteen on two cores only added
          // thread start-up and switches.
          for (index, outcome) in parallel(
            jobs, width: WorkQueue.defaultWidth,
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
        commit: { tx -> [RestoreOutcome] in
          var next = 0
          return try work.map { item in
            let ids = created.outcomes[next..<(next + item.slots.count)].map { $0!.success! }
            next += item.slots.count
            let vm = try commitRestore(tx, item, uniqueIDs: ids)
            let plan = OperationPlan(
              operation: "restore", vm: vm.name, checkpointsRemoved: [], alsoAffected: [],
              filesRemoved: item.doomed.map { absolute($0.path) }, filesCreated: item.newPaths.map(absolute),
              bytesMerged: 0, powerAction: item.action, applied: true)
            // The checkpoint as it is now, from what the plan already read (no more lookups).
            let checkpoint = reportedCheckpoint(item.checkpoint, vm: vm, statePaths: item.statePaths)
            return RestoreOutcome(vm: vm.name, checkpoint: checkpoint, action: item.action, state: vm.state, plan: plan)
          }
        },
        whileDeleting: { writeManifests(vms: names) })
      // Online checkpoints bring their VMs back running; the others that ran start again. All are
      // restored whatever the hosts do now: a VM that does not start is recorded as stopped and
      // named in the error, after every other VM was started.
      var finished = outcomes
      var notStarted: [(vm: String, error: Error)] = []
      for (index, item) in work.enumerated() where item.restart {
        do {
          try driver(item.vm).start(hosted(item.vm, disks: item.newPaths.map(absolute)))
          finished[index].state = .running
        } catch {
          try? markStopped(item.vm)
          finished[index].state = .stopped
          notStarted.append((item.vm.name, error))
        }
      }
      // Side by side: each VM's host loads its saved memory on its own (a lab comes back in about
      // the time of one VM where the host has the cores).
      let online = work.indices.compactMap { index in
        work[index].checkpoint.runningStatePath.map { (index: index, vm: work[index].vm, statePath: $0) }
      }
      for (resumed, outcome) in zip(
        online,
        parallel(online, width: max(1, online.count)) { item in
          try self.resumeOnline(vm: item.vm, statePath: item.statePath)
        })
      {
        if let error = outcome.failure {
          notStarted.append((work[resumed.index].vm.name, error))
          continue
        }
        finished[resumed.index].action = .online
        finished[resumed.index].plan.powerAction = .online
        finished[resumed.index].state = .running
      }
      if !notStarted.isEmpty {
        let names = notStarted.map { "'\($0.vm)'" }.joined(separator: ", ")
        throw LabKitError(
          .hostFailedAfterCommit,
          "\(work.count) VM\(work.count == 1 ? "" : "s") restored; \(notStarted.count == 1 ? "VM" : "VMs") \(names) did not start again: "
            + notStarted.map { "\($0.vm): \($0.error)" }.joined(separator: "; ")
            + ". Start \(notStarted.count == 1 ? "it" : "them") with `vmlab vm start NAME`")
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
