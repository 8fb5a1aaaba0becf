import ArgumentParser
import Cluster
import Foundation
import LabKit

/// `vmlab --cluster URL checkpoint new|list|restore|merge|remove`: the checkpoints of VMs on any
/// host, each change a `vm-operation` step on the VM's host (through `ClusterEngine`). Ids are the
/// cluster's (the host's number in the high bits), so an id `checkpoint list --cluster` shows is
/// the one `checkpoint restore --cluster ID` takes. What changes several VMs at once goes through
/// a lab (all or nothing across hosts), and what needs a host's files (plans, diffs, exports) is
/// run on that host.
struct ClusterCheckpointCommands {
  let target: ClusterVMTarget

  init(cluster: ClusterOptions) { target = ClusterVMTarget(cluster: cluster) }

  // MARK: new

  func new(_ command: CheckpointNew) throws {
    if let lab = command.lab {
      guard !command.async else {
        throw ValidationError(
          "--async with --lab is not available with --cluster: this command carries the lab's checkpoint through its two phases on every host, so it runs to the end (`vmlab --cluster URL lab checkpoint \(lab) NAME`)"
        )
      }
      let (name, description) = (command.name ?? "", command.description)
      return try ClusterLabCommands(cluster: target.cluster).operate(json: command.json) { labs, progress in
        try await labs.checkpoint(lab: lab, name: name, description: description, progress: progress)
      }
    }
    let (names, checkpointName) = try vmsAndName(command)
    let placed = try target.locate(names)
    try NameRules.validateCheckpoint(checkpointName)
    try target.withEngine { engine -> Void in
      if placed.count == 1 && !command.async {
        let result = try engine.checkpoint(
          vm: placed[0].name, name: checkpointName, description: command.description, disksOnly: command.disksOnly)
        if command.json { return try printJSON(result) }
        print(
          "checkpoint \(result.checkpoint.id) '\(result.checkpoint.name)' of \(result.checkpoint.vm) taken\(howTaken(result)) on host \(placed[0].host)"
        )
        return
      }
      // Queued together, so the hosts work in parallel; waited for one by one.
      let started = Date()
      let jobs = try placed.map {
        try engine.checkpointJob(vm: $0.name, name: checkpointName, description: command.description)
      }
      if command.async {
        if command.json { return try printJSON(jobs) }
        for (job, vm) in zip(jobs, placed) {
          print("job \(job.id): checkpoint of \(vm.name) queued on host \(vm.host)")
        }
        print("the hosts' agents run them; `vmlab --cluster URL job list` shows their progress")
        return
      }
      try report(try wait(engine, jobs, placed, started: started), json: command.json)
    }
  }

  /// The VMs and the checkpoint's name, the old form `VM NAME` told apart from two VMs by the
  /// cluster's VMs, as the local command tells them apart by the library's.
  private func vmsAndName(_ command: CheckpointNew) throws -> (vms: [String], name: String) {
    let words = command.words
    if let name = command.name { return (words, name) }
    if words.count == 2 {
      let placed = try target.cluster.withDatabase { db in try await db.placedVMs() }
      if placed.contains(where: { NameRules.key($0.name) == NameRules.key(words[1]) }) {
        throw ValidationError(
          "'\(words[1])' is a VM: to checkpoint \(words[0]) and \(words[1]) pass --name NAME; to name the checkpoint '\(words[1])' pass --name \(words[1])"
        )
      }
      return ([words[0]], words[1])
    }
    return (words, "\(words[0]) - \(shortDate(Date()))")
  }

  // MARK: list

  func list(vm: String?, mostRecent: Bool, json: Bool, show: ([Checkpoint], [String: String]) -> Void) throws {
    let placed =
      try vm.map { try target.locate([$0]) } ?? target.cluster.withDatabase { db in try await db.placedVMs() }
    let away = placed.filter { $0.hostState != .alive }
    let hosts = Dictionary(placed.map { (NameRules.key($0.name), $0.host) }) { a, _ in a }
    let checkpoints = try target.withEngine { engine -> [Checkpoint] in
      if !placed.isEmpty && away.isEmpty && vm == nil {
        // Every host alive: one question per host, asked in parallel.
        return mostRecent ? try engine.mostRecentCheckpoints(vm: nil) : try engine.checkpoints(vm: nil)
      }
      return try placed.filter { $0.hostState == .alive }.flatMap { vm in
        mostRecent ? try engine.mostRecentCheckpoints(vm: vm.name) : try engine.checkpoints(vm: vm.name)
      }
    }
    if json {
      try printJSON(checkpoints)
    } else {
      show(checkpoints, Dictionary(checkpoints.map { ($0.vm, hosts[NameRules.key($0.vm)] ?? "?") }) { a, _ in a })
    }
    if !away.isEmpty {
      FileHandle.standardError.write(
        Data(
          "vmlab: not listed, their hosts are not alive: \(away.map { "\($0.name) (host \($0.host), \($0.hostState.rawValue))" }.joined(separator: ", "))\n"
            .utf8))
    }
  }

  // MARK: restore, merge, remove

  /// The one checkpoint a restore or merge acts on: with --cluster a change spanning several VMs
  /// is a lab's (all or nothing across hosts), so the choice must name one VM, or an id.
  private func chosen(_ selection: CheckpointSelection, verb: String, engine: ClusterEngine) throws -> Checkpoint {
    if let vm = selection.vm {
      if selection.mostRecent {
        guard let last = try engine.mostRecentCheckpoints(vm: vm).first else {
          throw LabKitError(
            .notFound, "VM '\(vm)' has no checkpoints; `vmlab --cluster URL checkpoint list --vm \(vm)`")
        }
        return last
      }
      return try engine.checkpoint(vm: vm, named: selection.checkpoint!)
    }
    if !selection.mostRecent, let id = Int64(selection.checkpoint!) { return try engine.checkpoint(id: id) }
    let which = selection.mostRecent ? "the most recent checkpoint" : "'\(selection.checkpoint!)'"
    throw ClusterError(
      .usage,
      "checkpoint \(verb) of \(which) on every VM that has it is not available with --cluster: give --vm VM for one VM, or put the VMs in a lab and \(verb == "restore" ? "restore the lab (`vmlab --cluster URL lab restore LAB NAME`: all or nothing across hosts)" : "merge each VM's checkpoint")"
    )
  }

  /// The VM a selection names first, for messages that say where to run a refused form.
  private func refuseWhatIf(_ verb: String, vm: String?) -> ClusterError {
    target.unavailable("checkpoint \(verb) --what-if", vm: vm ?? "")
  }

  func restore(_ selection: CheckpointSelection, whatIf: Bool, json: Bool) throws {
    if whatIf { throw refuseWhatIf("restore", vm: selection.vm) }
    if let vm = selection.vm { _ = try target.locate([vm]) }
    try target.withEngine { engine -> Void in
      let checkpoint = try chosen(selection, verb: "restore", engine: engine)
      let placed = try target.locate([checkpoint.vm])
      let started = Date()
      let job = try engine.restoreJob(checkpoint: checkpoint.id)
      try report(try wait(engine, [job], placed, started: started), json: json)
    }
  }

  func merge(_ selection: CheckpointSelection, whatIf: Bool, yes: Bool, json: Bool) throws {
    if whatIf { throw refuseWhatIf("merge", vm: selection.vm) }
    if let vm = selection.vm { _ = try target.locate([vm]) }
    try target.withEngine { engine -> Void in
      let checkpoint = try chosen(selection, verb: "merge", engine: engine)
      let placed = try target.locate([checkpoint.vm])
      // The plan is the host's (its files); the later checkpoints that go with it are read from
      // the VM's tree, and agreed to before anything is queued.
      let later = Self.later(than: checkpoint, in: try engine.checkpoints(vm: checkpoint.vm))
      if !later.isEmpty {
        try confirm(
          "merging also merges the later checkpoints on the current line (\(checkpoint.vm): \(later.map { "'\($0.name)'" }.joined(separator: ", ")))",
          yes: yes,
          // --what-if needs the VM's files, so it runs on the VM's host, not with --cluster.
          plan: "run `vmlab checkpoint merge --what-if` on host \(placed[0].host) to see the plan")
      }
      let started = Date()
      let job = try engine.mergeJob(checkpoint: checkpoint.id)
      try report(try wait(engine, [job], placed, started: started), json: json)
    }
  }

  /// The checkpoints a merge of `checkpoint` takes along: those after it on the VM's current
  /// line, or, when the VM is not on a line through it, every one that descends from it.
  static func later(than checkpoint: Checkpoint, in tree: [Checkpoint]) -> [Checkpoint] {
    let byID = Dictionary(tree.map { ($0.id, $0) }) { a, _ in a }
    var line: [Checkpoint] = []
    var cursor = tree.first(where: \.isCurrent)
    while let at = cursor, at.id != checkpoint.id {
      line.append(at)
      cursor = at.parentID.flatMap { byID[$0] }
    }
    if cursor != nil { return line.reversed() }
    var descendants: [Checkpoint] = []
    var frontier: Set<Int64> = [checkpoint.id]
    while !frontier.isEmpty {
      let children = tree.filter { $0.parentID.map(frontier.contains) ?? false }
      descendants += children
      frontier = Set(children.map(\.id))
    }
    return descendants
  }

  func remove(_ single: SingleCheckpoint, whatIf: Bool, json: Bool) throws {
    if whatIf { throw refuseWhatIf("remove", vm: single.vm) }
    if let vm = single.vm { _ = try target.locate([vm]) }
    try target.withEngine { engine -> Void in
      let checkpoint: Checkpoint
      if let vm = single.vm {
        checkpoint = try engine.checkpoint(vm: vm, named: single.checkpoint)
      } else if let id = Int64(single.checkpoint) {
        checkpoint = try engine.checkpoint(id: id)
      } else {
        throw ValidationError("give --vm with the checkpoint's name '\(single.checkpoint)', or its id")
      }
      let host = try target.locate([checkpoint.vm])[0].host
      let plan = try engine.remove(checkpoint: checkpoint.id, whatIf: false)
      if json { return try printJSON(plan) }
      printPlan(plan)
      print("  (files on host \(host))")
    }
  }

  // MARK: Waiting

  /// Waits for each job (the engine shows each host's progress) and makes its result read as the
  /// local command's, with the VM's host.
  private func wait(_ engine: ClusterEngine, _ jobs: [Job], _ placed: [PlacedVMStatus], started: Date) throws -> [Job] {
    let hosts = Dictionary(placed.map { (NameRules.key($0.name), $0.host) }) { a, _ in a }
    return try jobs.map { queued in
      var job = try engine.wait(job: queued.id)
      job.started = started
      job.finished = Date()
      let host = hosts[NameRules.key(job.target)] ?? "?"
      if job.status == .completed { job.result = Self.sentence(job.result ?? "", host: host) }
      return job
    }
  }

  /// A `vm-operation` step's answer as a sentence: `restored 'clean' (none) on host h2`.
  static func sentence(_ answer: String, host: String) -> String {
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    guard let result = try? decoder.decode(VMOperationResult.self, from: Data(answer.utf8)) else {
      return "\(answer) on host \(host)"
    }
    if let plan = result.plan, plan.operation.contains("merge") {
      return "merged \(plan.checkpointsRemoved.count) checkpoint(s), \(plan.bytesMerged) bytes on host \(host)"
    }
    if let done = result.checkpoint, result.plan != nil {
      let ranAgain = (done.action == .shutDown || done.action == .turnedOff) && done.vmState == .running
      return
        "restored '\(done.checkpoint.name)' (\(done.action.rawValue)\(ranAgain ? ", started again" : "")) on host \(host)"
    }
    if let done = result.checkpoint {
      return "checkpoint '\(done.checkpoint.name)' taken\(howTaken(done)) on host \(host)"
    }
    if let plan = result.plan, plan.operation == "restore" {
      return "restored (\(plan.powerAction.rawValue)) on host \(host)"
    }
    return "done on host \(host)"
  }
}
