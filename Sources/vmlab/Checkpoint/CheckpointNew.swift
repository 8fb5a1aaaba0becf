import ArgumentParser
import Foundation
import LabKit

/// `vmlab checkpoint new`: one VM, several (a job each, in parallel), or a lab (all or nothing);
/// waiting for them, or returning at once with the job ids (`--async`).
struct CheckpointNew: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "new", abstract: "Take a checkpoint of every disk of one or more VMs, or of a lab.",
    discussion: """
      Forms:
        vmlab checkpoint new VM [NAME]               one VM
        vmlab checkpoint new VM… --name NAME         several VMs, in parallel
        vmlab checkpoint new --lab LAB --name NAME   a lab, all or nothing (one job)

      Without --name, a second word is the checkpoint's name (default: the VM's name and the \
      time); it is refused when it is also a VM's name (pass --name to say which you meant). \
      With --async the command returns at once with the job ids, and the jobs run on in a \
      background vmlab process: `vmlab job wait IDS` (or `vmlab job wait` for all) waits for \
      them and reports each.

      A running VM on a virtual-server host is shut down (or turned off without guest \
      additions) and started again; on a hypervisor host it is checkpointed online. A saved \
      VM's saved state is discarded (the checkpoint holds disks only): start it and checkpoint \
      it running to keep it.

      Examples:
        vmlab checkpoint new web01 clean --description "before the exercise"
        vmlab checkpoint new web01 web02 db01 --name clean --async
        vmlab checkpoint new --lab class --name round2
        vmlab --cluster URL checkpoint new web01 clean      (on web01's host)

      With --cluster URL (or VMLAB_CLUSTER) each VM is checkpointed by its host's agent (several \
      VMs in parallel, on their hosts), and --lab is the cluster's lab, all or nothing across \
      hosts. --async returns once the steps are queued; `vmlab --cluster URL job list` shows them.
      """)

  @Argument(
    help: ArgumentHelp(
      "The VMs; without --name, a second word is the checkpoint's name (the old form VM NAME).", valueName: "vm"))
  var words: [String] = []

  @Option(help: "The checkpoint's name (default for one VM: the VM's name and the time).")
  var name: String?

  @Option(help: "Checkpoint every VM of this lab, all or nothing (as `vmlab lab checkpoint`).")
  var lab: String?

  @Option(help: "A description.")
  var description: String = ""

  @Flag(help: "Return at once with the job ids; `vmlab job wait` waits for them.")
  var async = false

  @Flag(help: "A running VM checkpointed online keeps no memory with it (only a host that pauses VMs, as qemu).")
  var disksOnly = false

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func validate() throws {
    if lab != nil && !words.isEmpty {
      throw ValidationError("give VMs or --lab, not both (the checkpoint's name goes in --name)")
    }
    if lab == nil && words.isEmpty {
      throw ValidationError("name the VM to checkpoint (or several, with --name NAME), or --lab LAB")
    }
    if name == nil && words.count > 2 {
      throw ValidationError("several VMs take the checkpoint's name as --name NAME")
    }
    if let lab, name == nil {
      throw ValidationError("give the lab's checkpoint a name: --lab \(lab) --name NAME")
    }
    if disksOnly && (lab != nil || async || (name != nil && words.count > 1)) {
      throw ValidationError("--disks-only checkpoints one VM and waits for it (no --lab, no --async, one VM)")
    }
    let lowered = words.map { $0.lowercased() }
    if let twice = lowered.first(where: { word in lowered.filter { $0 == word }.count > 1 }), name != nil {
      throw ValidationError("the VM '\(twice)' is named twice")
    }
  }

  func run() throws {
    if cluster.isSet { return try ClusterCheckpointCommands(cluster: cluster).new(self) }
    if async && !BackgroundProcess.isBackground { BackgroundProcess.startAndRelay() }
    let library = try self.library.open()
    let (vms, checkpointName) = try target(library)
    if let lab {
      if async {
        try queued([try library.checkpointLabJob(lab, checkpoint: checkpointName, description: description)], library)
      }
      return try printLabResults(
        try library.checkpointLab(lab, checkpoint: checkpointName, description: description), json: json)
    }
    if vms.count == 1 && !async {
      let result = try library.checkpoint(
        vm: vms[0], name: checkpointName, description: description, disksOnly: disksOnly)
      if json { return try printJSON(result) }
      print(
        "checkpoint \(result.checkpoint.id) '\(result.checkpoint.name)' of \(result.checkpoint.vm) taken\(howTaken(result))"
      )
      return
    }
    // Every VM is checked before any job is queued: a typo queues nothing.
    let names = try vms.map { try library.vm(named: $0).name }
    try NameRules.validateCheckpoint(checkpointName)
    let jobs = try names.map { try library.checkpointJob(vm: $0, name: checkpointName, description: description) }
    if async { try queued(jobs, library) }
    try report(try waitWithProgress(library, jobs, label: "checkpointing"), json: json)
  }

  /// The VMs and the checkpoint's name, the old form `VM NAME` told apart from two VMs.
  private func target(_ library: Library) throws -> (vms: [String], name: String) {
    if let name { return (words, name) }
    if words.count == 2 {
      if (try? library.vm(named: words[1])) != nil {
        throw ValidationError(
          "'\(words[1])' is a VM: to checkpoint \(words[0]) and \(words[1]) pass --name NAME; to name the checkpoint '\(words[1])' pass --name \(words[1])"
        )
      }
      return ([words[0]], words[1])
    }
    return (words, "\(words[0]) - \(shortDate(Date()))")
  }

  /// Prints the queued jobs and lets the background process go on with them.
  private func queued(_ jobs: [Job], _ library: Library) throws -> Never {
    if json {
      try printJSON(jobs)
    } else {
      for job in jobs { print("job \(job.id): \(job.kind) of \(job.target) queued") }
      print("`vmlab job wait \(jobs.map { String($0.id) }.joined(separator: " "))` waits for them")
    }
    BackgroundProcess.letGo()
    try? library.close()
    Foundation.exit(0)
  }
}

/// How a checkpoint was taken, as `checkpoint new` says it after "taken" (locally and with
/// `--cluster`): paused online, or stopped (and started again), or nothing when the VM was off.
func howTaken(_ result: CheckpointResult) -> String {
  if let pause = result.pauseSeconds {
    return
      " (online, paused \(String(format: "%.1f", pause * 1000)) ms\(result.checkpoint.online ? ", memory saved" : ", disks only"))"
  }
  // A VM stopped for the checkpoint runs again: say so beside how it was stopped.
  if (result.action == .shutDown || result.action == .turnedOff) && result.vmState == .running {
    return " (\(result.action.rawValue), started again)"
  }
  return result.action == .none ? "" : " (\(result.action.rawValue))"
}
