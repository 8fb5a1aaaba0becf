import ArgumentParser
import Foundation
import LabKit

struct LabCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "lab", abstract: "Named groups of VMs, checkpointed and restored as one.",
    subcommands: [
      LabCreate.self, LabList.self, LabShow.self, LabCheckpoint.self, LabRestore.self, LabRemove.self,
    ])
}

struct LabCreate: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "create", abstract: "Create a lab of VMs (more can be added by running it again with --add).")

  @Argument(help: "The lab's name.")
  var name: String

  @Argument(help: "Its VMs.")
  var vms: [String] = []

  @Flag(help: "Add the VMs to an existing lab instead.")
  var add = false

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func run() throws {
    if cluster.isSet { return try ClusterLabCommands(cluster: cluster).create(name, vms: vms, add: add) }
    let library = try self.library.open()
    let lab = add ? try library.addToLab(name, vms: vms) : try library.createLab(name: name, vms: vms)
    print("lab \(lab.name): \(lab.vms.joined(separator: ", "))")
  }
}

struct LabList: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(commandName: "list", abstract: "List the labs.")

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func run() throws {
    if cluster.isSet { return try ClusterLabCommands(cluster: cluster).list(json: json) }
    let labs = try library.open().labs()
    if json { return try printJSON(labs) }
    if labs.isEmpty { return print("no labs; create one with `vmlab lab create NAME VM…`") }
    var table = TextTable("NAME", "VMS", "MEMBERS")
    for lab in labs { table.add(lab.name, String(lab.vms.count), lab.vms.joined(separator: ", ")) }
    table.print()
  }
}

struct LabShow: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a lab's VMs and checkpoints.")

  @Argument(help: "The lab.")
  var name: String

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func run() throws {
    if cluster.isSet { return try ClusterLabCommands(cluster: cluster).show(name, json: json) }
    let library = try self.library.open()
    let lab = try library.lab(named: name)
    let common = try library.labCheckpointNames(name)
    if json {
      struct Shown: Encodable {
        var lab: Lab
        var vms: [VirtualMachine]
        var checkpoints: [String]
      }
      return try printJSON(Shown(lab: lab, vms: try lab.vms.map { try library.vm(named: $0) }, checkpoints: common))
    }
    print(
      "lab \(lab.name), \(lab.vms.count) VMs; checkpoints common to all: \(common.isEmpty ? "none" : common.map { "'\($0)'" }.joined(separator: ", "))"
    )
    var table = TextTable("VM", "STATE", "CHECKPOINTS")
    for name in lab.vms {
      let vm = try library.vm(named: name)
      table.add(vm.name, vm.state.rawValue, String(try library.checkpoints(vm: vm.name).count))
    }
    table.print()
  }
}

/// Prints what a lab operation did, VM by VM.
func printLabResults(_ results: [LabMemberResult], json: Bool) throws {
  if json { return try printJSON(results) }
  var table = TextTable("VM", "CHECKPOINT", "WHAT HAPPENED", "STATE", "TIME")
  for result in results {
    table.add(
      result.vm, result.checkpoint, result.action == .none ? "-" : result.action.rawValue, result.state.rawValue,
      shortDuration(result.seconds))
  }
  table.print()
}

struct LabCheckpoint: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "checkpoint", abstract: "Checkpoint every VM of a lab under one name, all or nothing.")

  @Argument(help: "The lab.")
  var name: String

  @Argument(help: "The checkpoint's name.")
  var checkpoint: String

  @Flag(help: "Print JSON.")
  var json = false

  @Option(name: .customLong("description"), help: "With --cluster: the checkpoint's description.")
  var checkpointDescription: String?

  @Flag(help: "With --cluster: the disks only, not the memory of running VMs.")
  var disksOnly = false

  @OptionGroup var timeout: ClusterLabTimeout

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func run() throws {
    if cluster.isSet {
      let (name, checkpoint, description, disksOnly, timeout) = (
        name, checkpoint, checkpointDescription ?? "", disksOnly, try timeout.seconds()
      )
      return try ClusterLabCommands(cluster: cluster).operate(json: json) { labs, progress in
        try await labs.checkpoint(
          lab: name, name: checkpoint, description: description, disksOnly: disksOnly, timeout: timeout,
          progress: progress)
      }
    }
    if checkpointDescription != nil || disksOnly || timeout.timeout != nil {
      throw ValidationError("--description, --disks-only and --timeout are for a lab across hosts: give --cluster URL")
    }
    try printLabResults(try library.open().checkpointLab(name, checkpoint: checkpoint), json: json)
  }
}

struct LabRestore: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "restore",
    abstract: "Restore every VM of a lab to a checkpoint they share (or each one's most recent).")

  @Argument(help: "The lab.")
  var name: String

  @Argument(help: "The checkpoint's name.")
  var checkpoint: String?

  @Flag(help: "Each VM's most recent checkpoint.")
  var mostRecent = false

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var timeout: ClusterLabTimeout

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func validate() throws {
    if (checkpoint == nil) == !mostRecent { throw ValidationError("name a checkpoint or pass --most-recent") }
  }

  func run() throws {
    if cluster.isSet {
      let (name, checkpoint, timeout) = (name, checkpoint, try timeout.seconds())
      return try ClusterLabCommands(cluster: cluster).operate(json: json) { labs, progress in
        try await labs.restore(lab: name, checkpoint: checkpoint, timeout: timeout, progress: progress)
      }
    }
    if timeout.timeout != nil { throw ValidationError("--timeout is for a lab across hosts: give --cluster URL") }
    try printLabResults(try library.open().restoreLab(name, checkpoint: checkpoint), json: json)
  }
}

struct LabRemove: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "remove", abstract: "Remove a lab (the group, not its VMs); works with --cluster.",
    discussion: """
      The lab's VMs and their checkpoints stay (`teardown-lab.lua NAME` removes them too). With \
      --cluster URL (or VMLAB_CLUSTER) it is the cluster's lab, refused while a checkpoint or \
      restore of it is open on the hosts.
      """)

  @Argument(help: "The lab.")
  var name: String

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func run() throws {
    if cluster.isSet { return try ClusterLabCommands(cluster: cluster).remove(name) }
    try library.open().removeLab(named: name)
    print("removed lab \(name); its VMs stay")
  }
}
