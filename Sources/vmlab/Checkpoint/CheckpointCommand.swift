import ArgumentParser
import Foundation
import LabKit
import VHD

struct CheckpointCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "checkpoint", abstract: "Take, list, restore, merge and remove VM checkpoints.",
    subcommands: [
      CheckpointNew.self, CheckpointList.self, CheckpointRestore.self, CheckpointMerge.self, CheckpointRemove.self,
      CheckpointDiff.self, CheckpointExport.self,
    ])
}

/// Which checkpoints a command acts on: one named (or by id), or the most recent of a VM or of
/// every VM. A choice that spans every VM needs `--all`, so a bulk change is never a surprise.
struct CheckpointSelection: ParsableArguments {
  @Argument(help: "The checkpoint: its name (with --vm, or on every VM with --all) or its id.")
  var checkpoint: String?

  @Option(help: "The VM whose checkpoint it is.")
  var vm: String?

  @Flag(help: "The most recently created checkpoint (of --vm, or of every VM with --all).")
  var mostRecent = false

  @Flag(help: "Confirm an operation on every VM.")
  var all = false

  func validate() throws {
    if checkpoint == nil && !mostRecent {
      throw ValidationError("name a checkpoint (or its id), or pass --most-recent")
    }
    if checkpoint != nil && mostRecent { throw ValidationError("name a checkpoint or pass --most-recent, not both") }
  }

  /// The checkpoints chosen, one per VM; `bulk` is true when no VM narrowed the choice.
  func resolve(_ library: Library) throws -> (checkpoints: [Checkpoint], bulk: Bool) {
    if mostRecent {
      return (try library.mostRecentCheckpoints(vm: vm), vm == nil)
    }
    let reference = checkpoint!
    if let vm { return ([try library.checkpoint(vm: vm, named: reference)], false) }
    if let id = Int64(reference), let found = try? library.checkpoint(id: id) { return ([found], false) }
    let matches = try library.vms().compactMap { try? library.checkpoint(vm: $0.name, named: reference) }
    if matches.isEmpty {
      throw LabKitError(.notFound, "no VM has a checkpoint '\(reference)'; `vmlab checkpoint list` shows them")
    }
    return (matches, true)
  }

  /// The checkpoints chosen, for an engine call that checks the rule for several VMs itself
  /// (`BulkChange`): only the command line's own rule is checked here, that a choice spanning the
  /// library needs `--all` even when it finds one VM.
  func chosen(_ library: Library, verb: String, whatIf: Bool) throws -> [Checkpoint] {
    let (checkpoints, bulk) = try resolve(library)
    if bulk && !all && !whatIf && Set(checkpoints.map { NameRules.key($0.vm) }).count <= 1 {
      throw try libraryWide(library, verb: verb, checkpoints)
    }
    return checkpoints
  }

  private func libraryWide(_ library: Library, verb: String, _ checkpoints: [Checkpoint]) throws -> ValidationError {
    let count = checkpoints.count
    let total = try library.vms().count
    let which = mostRecent ? "the most recent checkpoint" : "'\(checkpoint ?? "")'"
    let scope = count == total ? "every VM" : "\(count) of the \(total) VMs, every one that has it"
    return ValidationError(
      "this would \(verb) \(which) on \(scope): \(checkpoints.map(\.vm).joined(separator: ", ")); \(CheckpointSelection.confirmBulk)"
    )
  }

  /// How the command line confirms a change of several VMs (BulkChange).
  static let confirmBulk = "pass --all to do it, --vm VM for one, or --what-if to see the plan"
}

/// One checkpoint, by name with `--vm`, or by id.
struct SingleCheckpoint: ParsableArguments {
  @Argument(help: "The checkpoint: its name (with --vm) or its id.")
  var checkpoint: String

  @Option(help: "The VM whose checkpoint it is.")
  var vm: String?

  func resolve(_ library: Library) throws -> Checkpoint {
    if let vm { return try library.checkpoint(vm: vm, named: checkpoint) }
    if let id = Int64(checkpoint) { return try library.checkpoint(id: id) }
    throw ValidationError("give --vm with the checkpoint's name '\(checkpoint)', or its id")
  }
}

struct CheckpointList: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "list", abstract: "List checkpoints; works with --cluster (each VM's, from its host, with the host).")

  @Option(help: "Only this VM's checkpoints.")
  var vm: String?

  @Flag(help: "Only the most recently created checkpoint of each VM.")
  var mostRecent = false

  @Flag(help: "Show each VM's checkpoints as a tree (branches after restores).")
  var tree = false

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func run() throws {
    if cluster.isSet {
      return try ClusterCheckpointCommands(cluster: cluster).list(vm: vm, mostRecent: mostRecent, json: json) {
        checkpoints, hosts in show(checkpoints, hosts: hosts)
      }
    }
    let library = try self.library.open()
    let checkpoints = mostRecent ? try library.mostRecentCheckpoints(vm: vm) : try library.checkpoints(vm: vm)
    if json { return try printJSON(checkpoints) }
    show(checkpoints)
  }

  /// The checkpoints as a tree or a table; with `hosts` (with --cluster, each VM's host by its
  /// name), a HOST column after the VM's.
  private func show(_ checkpoints: [Checkpoint], hosts: [String: String]? = nil) {
    if checkpoints.isEmpty { return print("no checkpoints\(vm.map { " of \($0)" } ?? "")") }
    if tree { return printTree(checkpoints) }
    var table = TextTable("ID", "VM", "NAME", "CREATED", "ONLINE", "CURRENT")
    if hosts != nil { table.header.insert("HOST", at: 2) }
    for checkpoint in checkpoints {
      var cells = [
        String(checkpoint.id), checkpoint.vm, checkpoint.name, shortDate(checkpoint.created),
        checkpoint.online ? "yes" : "", checkpoint.isCurrent ? "*" : "",
      ]
      if let hosts { cells.insert(hosts[checkpoint.vm] ?? "?", at: 2) }
      table.rows.append(cells)
    }
    table.print()
  }

  private func printTree(_ checkpoints: [Checkpoint]) {
    for vm in Set(checkpoints.map(\.vm)).sorted() {
      print(vm)
      let own = checkpoints.filter { $0.vm == vm }
      let ids = Set(own.map(\.id))
      func show(_ parent: Int64?, depth: Int) {
        for child in own
        where child.parentID == parent || (depth == 0 && parent == nil && !ids.contains(child.parentID ?? -1)) {
          if depth == 0 && child.parentID != nil && ids.contains(child.parentID!) { continue }
          let marker = child.isCurrent ? "  <- now" : ""
          print(
            String(repeating: "  ", count: depth + 1)
              + "\(child.id) '\(child.name)' \(shortDate(child.created))\(marker)")
          show(child.id, depth: depth + 1)
        }
      }
      show(nil, depth: 0)
    }
  }
}

/// Prints a plan (dry run) the way people read it.
func printPlan(_ plan: OperationPlan) {
  print("\(plan.applied ? "" : "would ")\(plan.operation) on VM \(plan.vm):")
  if !plan.checkpointsRemoved.isEmpty {
    print("  checkpoints removed: \(plan.checkpointsRemoved.map { "'\($0)'" }.joined(separator: ", "))")
  }
  if !plan.alsoAffected.isEmpty {
    print("  later checkpoints that go with it: \(plan.alsoAffected.map { "'\($0)'" }.joined(separator: ", "))")
  }
  if plan.bytesMerged > 0 { print("  data merged: \(plan.bytesMerged) bytes") }
  if plan.powerAction != .none { print("  power: \(plan.powerAction.rawValue)") }
  for file in plan.filesCreated { print("  + \(file)") }
  for file in plan.filesRemoved { print("  - \(file)") }
}

struct CheckpointRestore: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "restore", abstract: "Bring VMs back to a checkpoint (it stays, to restore again).",
    discussion: """
      Examples:
        vmlab checkpoint restore clean --vm web01
        vmlab checkpoint restore --most-recent --vm web01
        vmlab checkpoint restore --most-recent --all        (every VM, as one operation: all or none)
        vmlab checkpoint restore clean --all --what-if
        vmlab --cluster URL checkpoint restore clean --vm web01   (on web01's host)

      With --cluster URL (or VMLAB_CLUSTER) one VM's checkpoint (--vm, or an id from `checkpoint
      list --cluster`) is restored by its host's agent; several VMs at once are a lab's restore
      (`vmlab --cluster URL lab restore`), and --what-if runs on the VM's host.
      """)

  @OptionGroup var selection: CheckpointSelection

  @Flag(help: "Print the plan and change nothing.")
  var whatIf = false

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func run() throws {
    if cluster.isSet {
      return try ClusterCheckpointCommands(cluster: cluster).restore(selection, whatIf: whatIf, json: json)
    }
    let library = try self.library.open()
    let checkpoints = try selection.chosen(library, verb: "restore", whatIf: whatIf)
    if whatIf {
      let plans = try library.restorePlans(checkpoints: checkpoints.map(\.id))
      return json ? try printJSON(plans) : plans.forEach(printPlan)
    }
    guard checkpoints.count > 1 else {
      let jobs = try checkpoints.map { try library.restoreJob(checkpoint: $0.id) }
      return try report(try waitWithProgress(library, jobs, label: "restoring"), json: json)
    }
    // Several VMs: one journaled operation, as a lab restore is — all of them come back, or none.
    if !json {
      print(
        "restoring \(checkpoints.count) VMs: \(checkpoints.map { "\($0.vm) → '\($0.name)'" }.joined(separator: ", "))")
    }
    let outcomes = try library.restore(
      checkpoints: checkpoints.map(\.id), all: selection.all, confirm: CheckpointSelection.confirmBulk)
    if json { return try printJSON(outcomes) }
    var table = TextTable("VM", "CHECKPOINT", "WHAT HAPPENED", "STATE")
    for outcome in outcomes {
      table.add(outcome.vm, outcome.checkpoint.name, outcome.action.rawValue, outcome.state.rawValue)
    }
    table.print()
  }
}

struct CheckpointMerge: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "merge",
    abstract: "Fold a checkpoint (and later ones on the VM's current line) into the disks below; the VM's data stays.",
    discussion: """
      Works with --cluster URL (or VMLAB_CLUSTER) for one VM's checkpoint (--vm, or an id from
      `checkpoint list --cluster`): its host's agent merges it. --what-if runs on the VM's host.
      """)

  @OptionGroup var selection: CheckpointSelection

  @Flag(help: "Print the plan and change nothing.")
  var whatIf = false

  @Flag(help: "Merge later checkpoints of the line too without asking (needed without a terminal).")
  var yes = false

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func run() throws {
    if cluster.isSet {
      return try ClusterCheckpointCommands(cluster: cluster).merge(selection, whatIf: whatIf, yes: yes, json: json)
    }
    let library = try self.library.open()
    let ids = try selection.chosen(library, verb: "merge", whatIf: whatIf).map(\.id)
    // Later checkpoints on the line go too: said, and agreed to, before anything is merged.
    let approve = { (plans: [OperationPlan]) throws in
      let also = plans.filter { !$0.alsoAffected.isEmpty }
      guard !also.isEmpty else { return }
      let list = also.map { plan in
        "\(plan.vm): \(plan.alsoAffected.map { "'\($0)'" }.joined(separator: ", "))"
      }.joined(separator: "; ")
      try confirm("merging also merges the later checkpoints on the current line (\(list))", yes: yes)
    }
    guard ids.count > 1 || whatIf else {
      try approve(try ids.map { try library.merge(checkpoint: $0, whatIf: true) })
      let jobs = try ids.map { try library.mergeJob(checkpoint: $0) }
      return try report(try waitWithProgress(library, jobs, label: "merging"), json: json)
    }
    // Several checkpoints (or a plan): one engine call, which checks the rule for several VMs and
    // merges different VMs in parallel.
    let plans = try library.merge(
      checkpoints: ids, all: selection.all, whatIf: whatIf, confirm: CheckpointSelection.confirmBulk,
      approve: approve)
    json ? try printJSON(plans) : plans.forEach(printPlan)
  }
}

struct CheckpointRemove: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "remove",
    abstract:
      "Remove one checkpoint anywhere in the tree; later checkpoints stay restorable. Works with --cluster (on the VM's host)."
  )

  @OptionGroup var target: SingleCheckpoint

  @Flag(help: "Print the plan and change nothing.")
  var whatIf = false

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func run() throws {
    if cluster.isSet {
      return try ClusterCheckpointCommands(cluster: cluster).remove(target, whatIf: whatIf, json: json)
    }
    let library = try self.library.open()
    let plan = try library.remove(checkpoint: try target.resolve(library).id, whatIf: whatIf)
    json ? try printJSON(plan) : printPlan(plan)
  }
}

struct CheckpointDiff: ParsableCommand, NeedsHostFiles {
  static let configuration = CommandConfiguration(
    commandName: "diff", abstract: "Show which byte ranges of a VM's disks changed since a checkpoint.")

  @OptionGroup var target: SingleCheckpoint

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var library: LibraryOptions

  func run() throws {
    try refuseCluster("checkpoint diff", vm: target.vm ?? "")
    let library = try self.library.open()
    let changes = try library.changes(since: try target.resolve(library).id)
    if json { return try printJSON(changes) }
    for disk in changes {
      print(
        "disk \(disk.slot): \(disk.changedBytes) bytes changed in \(disk.ranges.count) range\(disk.ranges.count == 1 ? "" : "s")"
      )
      for range in disk.ranges.prefix(50) { print("  \(range.offset)..<\(range.offset + range.length)") }
      if disk.ranges.count > 50 { print("  … \(disk.ranges.count - 50) more") }
    }
  }
}

struct CheckpointExport: ParsableCommand, NeedsHostFiles {
  static let configuration = CommandConfiguration(
    commandName: "export", abstract: "Write each disk of a checkpoint, as it was then, to a standalone VHD.")

  @OptionGroup var target: SingleCheckpoint

  @Argument(help: "The folder to write <vm>-disk<N>.vhd files to.")
  var folder: String

  @Option(help: "dynamic or fixed.")
  var type: DiskType = .dynamic

  @OptionGroup var library: LibraryOptions

  func run() throws {
    try refuseCluster("checkpoint export", vm: target.vm ?? "")
    let library = try self.library.open()
    let files = try library.exportCheckpoint(try target.resolve(library).id, to: folder, type: type)
    files.forEach { print($0) }
  }
}

/// Waits for jobs, with a progress bar on a terminal; returns them finished.
func waitWithProgress(_ library: Library, _ jobs: [Job], label: String) throws -> [Job] {
  let bar = ProgressBar(label)
  var finished: [Job] = []
  for job in jobs {
    finished.append(try library.wait(job: job.id))
    bar.update(done: UInt64(finished.count), total: UInt64(jobs.count))
  }
  bar.finish()
  return finished
}

/// Prints finished jobs as a table; fails (exit 1) when any failed.
func report(_ jobs: [Job], json: Bool) throws {
  if json {
    try printJSON(jobs)
  } else {
    var table = TextTable("VM", "STATUS", "TIME", "RESULT")
    for job in jobs {
      table.add(job.target, job.status.rawValue, job.duration.map(shortDuration) ?? "", job.error ?? job.result ?? "")
    }
    table.print()
  }
  let failed = jobs.filter { $0.status == .failed }
  if !failed.isEmpty {
    throw LabKitError(
      .failed,
      "\(failed.count) of \(jobs.count) failed: \(failed.map { "\($0.target): \($0.error ?? "")" }.joined(separator: "; "))"
    )
  }
}
