import Foundation
import LabKit
import VHD

/// A Checkpoint object's identity: the catalog id, with its name, VM and time kept for messages
/// (so a handle whose checkpoint was merged away still says which one it was).
struct CheckpointHandle: Equatable {
  let id: Int64
  let name: String
  let vm: String
  let created: Date
}

/// `vmlab.checkpoints{...}`, the Checkpoint class and the Checkpoints list (the pipeline of
/// `Get-VMCheckpoint -MostRecent | where {...} | Restore-VMCheckpoint`).
extension EngineBinding {
  func defineCheckpoints(in module: LuaTable, state: LuaState) {
    let checkpoint = state.defineClass("Checkpoint", payload: CheckpointHandle.self)
    checkpointClass = checkpoint
    checkpoint.equality { $0.id == $1.id }
    checkpoint.toString { [weak self] handle in
      let base = "Checkpoint \(handle.id) '\(handle.name)' of \(handle.vm) (\(Self.format(handle.created))"
      guard let self, (try? self.current(handle)) != nil else { return base + ", merged or removed)" }
      return base + ")"
    }

    checkpoint.columns(["name", "vm", "id", "created", "current", "space"])
    checkpoint.property("id") { .integer($0.id) }
    checkpoint.property("name") { .text($0.name) }
    checkpoint.property("description") { handle in .text(try self.current(handle).description) }
    checkpoint.property("vm") { handle in try self.wrapVM(try self.engine.vm(named: try self.current(handle).vm)) }
    checkpoint.property("created") { handle in .text(Self.format(try self.current(handle).created)) }
    checkpoint.property("disks") { handle in try self.strings(try self.current(handle).disks) }
    checkpoint.property("parent") { handle in
      guard let parent = try self.current(handle).parentID else { return .nil }
      return try self.wrapCheckpoint(try self.engine.checkpoint(id: parent))
    }
    checkpoint.property("online") { handle in .boolean(try self.current(handle).online) }
    checkpoint.property("current") { handle in .boolean(try self.current(handle).isCurrent) }
    checkpoint.property("space") { handle in
      _ = try self.current(handle)
      return LuaValue(try self.engine.space(of: handle.id))
    }

    checkpoint.method("restore") { handle, arguments in
      try arguments.checkOptions(1, allowed: ["whatIf", "async"])
      let id = try self.current(handle).id
      if try arguments.flag(1, "async") { return [try self.queued(try self.engine.restoreJob(checkpoint: id))] }
      return [try self.restore(id, whatIf: try arguments.flag(1, "whatIf"))]
    }
    checkpoint.method("merge") { handle, arguments in
      try arguments.checkOptions(1, allowed: ["whatIf", "async"])
      let id = try self.current(handle).id
      if try arguments.flag(1, "async") { return [try self.queued(try self.engine.mergeJob(checkpoint: id))] }
      return [try self.plan(try self.engine.merge(checkpoint: id, whatIf: try arguments.flag(1, "whatIf")))]
    }
    checkpoint.method("remove") { handle, arguments in
      try arguments.checkOptions(1, allowed: ["whatIf"])
      let id = try self.current(handle).id
      return [try self.plan(try self.engine.remove(checkpoint: id, whatIf: try arguments.flag(1, "whatIf")))]
    }
    checkpoint.method("diff") { handle, _ in
      let changes = try self.engine.changes(since: try self.current(handle).id)
      return [
        try self.list(
          .plain,
          changes.map { disk in
            try self.table([
              "disk": .integer(Int64(disk.slot)), "changedBytes": LuaValue(disk.changedBytes),
              "ranges": try self.list(
                .plain,
                disk.ranges.map { try self.table(["offset": LuaValue($0.offset), "length": LuaValue($0.length)]) }),
            ])
          })
      ]
    }
    checkpoint.method("export") { handle, arguments in
      try self.requireFileAccess("checkpoint:export")
      let folder = absolutePath(try arguments.string(1))
      let typeName = try arguments.string(2, default: "dynamic")
      guard let type = DiskType(name: typeName), type != .differencing else {
        throw arguments.error(2, "\"dynamic\" or \"fixed\" expected, got \"\(typeName)\"")
      }
      let paths = try self.engine.exportCheckpoint(try self.current(handle).id, to: folder, type: type)
      return [try self.list(.disks, try paths.map { try self.wrapDisk($0) })]
    }

    defineCheckpointList(state: state)

    module["checkpoints"] = .function(
      state.function(named: "checkpoints") { arguments in
        try arguments.checkOptions(1, allowed: ["vm", "mostRecent", "name"])
        let vmValue = arguments.isNil(1) ? LuaValue.nil : try arguments.field(1, "vm")
        let vm = vmValue.isNil ? nil : try self.vmName(vmValue, what: "checkpoints: field 'vm'")
        var found =
          try arguments.flag(1, "mostRecent")
          ? try self.engine.mostRecentCheckpoints(vm: vm) : try self.engine.checkpoints(vm: vm)
        if let name = try arguments.option(1, "name", as: String.self) { found = found.filter { $0.name == name } }
        return try self.checkpointList(found)
      })
  }

  /// Bulk restore and merge on a list of checkpoints (any list of Checkpoint objects: a query's
  /// result, or what `where` kept of it).
  private func defineCheckpointList(state: LuaState) {
    let list = state.listType(named: ListKind.checkpoints.rawValue)
    list.method("restore") { items, arguments in
      try arguments.checkOptions(1, allowed: ["whatIf", "all", "async"])
      let handles = try self.checkpointHandles(in: items, function: "restore")
      let engine = try self.engine
      let whatIf = try arguments.flag(1, "whatIf")
      let all = try arguments.flag(1, "all")
      let async = try arguments.flag(1, "async")
      // The engine checks the rules (one checkpoint per VM, several VMs need all=true).
      if whatIf {
        let plans = try self.onCurrent(handles) { try engine.restorePlans(checkpoints: $0) }
        return [try self.list(.plain, try plans.map(self.plan))]
      }
      if async {
        let jobs = try self.onCurrent(handles) {
          try engine.restoreJobs(checkpoints: $0, all: all, confirm: Self.confirmBulk)
        }
        return [try self.list(.jobs, try jobs.map(self.queued))]
      }
      // One journaled operation for every VM of the list: all come back, or none.
      let outcomes = try self.onCurrent(handles) {
        try engine.restore(checkpoints: $0, all: all, confirm: Self.confirmBulk)
      }
      return [try self.list(.plain, try outcomes.map(self.restoreTable))]
    }
    list.method("merge") { items, arguments in
      try arguments.checkOptions(1, allowed: ["whatIf", "all", "async"])
      let handles = try self.checkpointHandles(in: items, function: "merge")
      let engine = try self.engine
      let all = try arguments.flag(1, "all")
      let whatIf = try arguments.flag(1, "whatIf")
      // The engine checks the rule for several VMs and decides what runs in parallel.
      if try arguments.flag(1, "async") {
        let jobs = try self.onCurrent(handles) {
          try engine.mergeJobs(checkpoints: $0, all: all, confirm: Self.confirmBulk)
        }
        return [try self.list(.jobs, try jobs.map(self.queued))]
      }
      let plans = try self.onCurrent(handles) {
        try engine.merge(checkpoints: $0, all: all, whatIf: whatIf, confirm: Self.confirmBulk, approve: { _ in })
      }
      return [try self.list(.plain, try plans.map(self.plan))]
    }
  }

  /// How a script confirms a change of several VMs (BulkChange).
  static let confirmBulk =
    "pass {all=true}, or {whatIf=true} to see the plans first, or narrow the list with :where(...) or vmlab.checkpoints{vm=...}"

  // MARK: Handles and results

  /// The checkpoint as it is now, or a clear error for a handle whose checkpoint is gone.
  func current(_ handle: CheckpointHandle) throws -> Checkpoint {
    do {
      return try engine.checkpoint(id: handle.id)
    } catch let error as LabKitError where error.kind == .notFound {
      throw EngineError(
        "checkpoint \(handle.id) '\(handle.name)' of VM '\(handle.vm)' no longer exists (it was merged or removed, or its VM was)"
      )
    }
  }

  /// Runs a bulk operation on the checkpoints of `handles`, by id. The engine looks every id up
  /// before it changes anything, so the handles are not read one by one beforehand (twenty catalog
  /// reads in a classroom's `:restore{all=true}`); when a checkpoint is gone, the error names the
  /// first stale handle as `current` does.
  func onCurrent<Result>(_ handles: [CheckpointHandle], _ operation: ([Int64]) throws -> Result) throws -> Result {
    do {
      return try operation(handles.map(\.id))
    } catch let error as LabKitError where error.kind == .notFound {
      for handle in handles { _ = try current(handle) }
      throw error
    }
  }

  func wrapCheckpoint(_ checkpoint: Checkpoint) throws -> LuaValue {
    try defined(checkpointClass).wrap(
      CheckpointHandle(id: checkpoint.id, name: checkpoint.name, vm: checkpoint.vm, created: checkpoint.created))
  }

  func checkpointList(_ checkpoints: [Checkpoint]) throws -> [LuaValue] {
    [try list(.checkpoints, try checkpoints.map { try wrapCheckpoint($0) })]
  }

  func checkpointHandles(in items: LuaTable, function: String) throws -> [CheckpointHandle] {
    try items.array().enumerated().map { index, value in
      guard let handle = checkpointClass?.payload(of: value) else {
        throw EngineError("\(function): item \(index + 1) of the list is a \(self.typeName(value)), not a Checkpoint")
      }
      return handle
    }
  }

  /// A restore of one checkpoint: its plan, applied unless `whatIf`.
  func restore(_ id: Int64, whatIf: Bool) throws -> LuaValue {
    try restoreTable(try engine.restore(checkpoint: id, whatIf: whatIf))
  }

  /// A VM of a bulk restore: its plan, state and checkpoint, as for a single restore.
  func restoreTable(_ outcome: RestoreOutcome) throws -> LuaValue {
    let value = try plan(outcome.plan)
    if let table = value.tableValue {
      table["state"] = .text(outcome.state.rawValue)
      table["checkpoint"] = try wrapCheckpoint(outcome.checkpoint)
    }
    return value
  }

  func restoreTable(_ outcome: (plan: OperationPlan, result: CheckpointResult?)) throws -> LuaValue {
    let value = try plan(outcome.plan)
    if let result = outcome.result, let table = value.tableValue {
      table["state"] = .text(result.vmState.rawValue)
      table["checkpoint"] = try wrapCheckpoint(result.checkpoint)
    }
    return value
  }

  /// What a destructive operation does (whatIf) or did: a plain table.
  func plan(_ plan: OperationPlan) throws -> LuaValue {
    try table([
      "operation": .text(plan.operation), "vm": .text(plan.vm),
      "checkpointsRemoved": try strings(plan.checkpointsRemoved),
      "alsoAffected": try strings(plan.alsoAffected), "filesRemoved": try strings(plan.filesRemoved),
      "filesCreated": try strings(plan.filesCreated), "bytesMerged": LuaValue(plan.bytesMerged),
      "powerAction": .text(plan.powerAction.rawValue), "applied": .boolean(plan.applied),
    ])
  }
}
