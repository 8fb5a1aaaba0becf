import ArgumentParser
import Foundation
import LabKit
import QEMUHost
import VHD

struct VMCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vm", abstract: "Create, list, start and stop virtual machines.",
    subcommands: [
      VMCreate.self, VMList.self, VMShow.self, VMStart.self, VMSave.self, VMShutdown.self, VMTurnOff.self,
      VMRemove.self, VMImport.self, VMExport.self, VMExec.self, VMWrite.self, VMRead.self, VMConsole.self,
    ])
}

extension HostKind: ExpressibleByArgument {}
extension Hardware.Network: ExpressibleByArgument {}
extension Hardware.Accelerator: ExpressibleByArgument {}

/// The hosts `vm create --host` takes.
enum HostChoice: String, ExpressibleByArgument, CaseIterable {
  case simulated, qemu
}

struct VMCreate: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "create", abstract: "Create a VM with new disks, from a VHD, or as a linked clone.",
    discussion: """
      Examples:
        vmlab vm create web01 --disk 8G --disk 2G --additions
        vmlab vm create student01 --from base.vhd --linked
        vmlab vm create tiny --disk 1G --memory 256M --cpus 2 --kernel vmlinuz --initrd initrd.img --append console=ttyS0
        vmlab vm create web01 --host qemu --image tiny --disk 1G --memory 256M
        vmlab --cluster URL vm create web01 --disk 8G [--host-name host2]   (placed on a live host)
      """)

  @Argument(help: "The VM's name: letters, digits, '-', '_' or '.'.")
  var name: String

  @Option(name: .customLong("disk"), help: "Add a new dynamic disk of this size (repeat for more disks).")
  var disks: [SizeArgument] = []

  @Option(help: "Make the VM's disk a copy of this VHD (or chain).")
  var from: String?

  @Flag(help: "With --from: a linked clone, a small differencing disk over a shared read-only template.")
  var linked = false

  @Option(
    help: ArgumentHelp(
      "Boot this built image (`vmlab image list`): disk 1 is a linked clone of its root disk, each --disk adds one more; needs --host qemu.",
      valueName: "image"))
  var image: String?

  @Flag(help: "The guest has additions installed (it can be shut down gracefully).")
  var additions = false

  @Option(help: "virtual-server or hypervisor (default: the library's).")
  var hostKind: HostKind?

  @Option(help: "The host that runs it: simulated or qemu (qemu is not built yet).")
  var host: HostChoice = .simulated

  @Option(help: "Memory: a whole number of MiB from 16M to 1T.")
  var memory: SizeArgument = SizeArgument(bytes: Hardware.defaultMemory)

  @Option(help: "Virtual CPUs (1 to 256).")
  var cpus = 1

  @Option(help: "Boot this kernel directly (default: the firmware boots from disk 1).")
  var kernel: String?

  @Option(help: "With --kernel: its initial RAM disk.")
  var initrd: String?

  @Option(name: .customLong("append"), help: "With --kernel: the kernel command line.")
  var commandLine: String?

  @Option(help: "The network: none (the only one for now).")
  var network: Hardware.Network = .none

  @Option(help: "auto (KVM where it works, else TCG), kvm or tcg.")
  var accelerator: Hardware.Accelerator = .auto

  @Option(
    help: ArgumentHelp(
      "With --cluster: create it on this host (default: the live host with the most room).", valueName: "name"))
  var hostName: String?

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func validate() throws {
    if image != nil {
      if from != nil || linked {
        throw ValidationError("--image makes disk 1 from the image: give --image or --from, not both")
      }
      if kernel != nil || initrd != nil || commandLine != nil {
        throw ValidationError("--image boots the image's kernel: --kernel, --initrd and --append do not go with it")
      }
      return
    }
    if from == nil && disks.isEmpty {
      throw ValidationError("give at least one --disk SIZE, or --from VHD, or --image NAME")
    }
    if from != nil && !disks.isEmpty { throw ValidationError("give --disk sizes or --from, not both") }
    if linked && from == nil { throw ValidationError("--linked needs --from VHD") }
    if kernel == nil && initrd != nil { throw ValidationError("--initrd needs --kernel PATH") }
    if kernel == nil && commandLine != nil { throw ValidationError("--append needs --kernel PATH") }
  }

  var hardware: Hardware {
    Hardware(
      memory: memory.bytes, cpus: cpus,
      boot: kernel.map { .kernel(path: $0, initrd: initrd, commandLine: commandLine ?? "") } ?? .firmware,
      network: network, accelerator: accelerator)
  }

  func run() throws {
    // Checked here, not in validate(): --cluster before the command is known only once it runs.
    if cluster.isSet { return try ClusterVMCreate(create: self, cluster: cluster).run() }
    if hostName != nil {
      throw ValidationError("--host-name places a VM on a cluster's host: give --cluster URL (or set VMLAB_CLUSTER)")
    }
    if image == nil { try Hosts.check(host.rawValue) }
    let library = try self.library.open()
    let vm: VirtualMachine
    if let image {
      // The image first: an unknown one lists the built ones, whatever the host.
      _ = try ImageTemplates(library: library.root).manifest(of: image)
      if ImageTemplates.bootingHosts.contains(host.rawValue) { try Hosts.check(host.rawValue) }
      vm = try library.createVM(
        name: name, image: image, extraDiskSizes: disks.map(\.bytes), hostKind: hostKind, host: host.rawValue,
        hardware: hardware)
    } else if let from {
      vm = try library.createVM(
        name: name, from: from, linked: linked, additions: additions, hostKind: hostKind, host: host.rawValue,
        hardware: hardware)
    } else {
      vm = try library.createVM(
        name: name, diskSizes: disks.map(\.bytes), additions: additions, hostKind: hostKind, host: host.rawValue,
        hardware: hardware)
    }
    print(
      "created VM \(vm.name) with \(vm.disks.count) disk\(vm.disks.count == 1 ? "" : "s") (\(vm.hostKind.rawValue), \(vm.host) host)"
    )
    for (index, size) in disks.enumerated() {
      if let note = sizeRoundingNote(requested: size.bytes, actual: DiskGeometry.rounding(size: size.bytes).size) {
        print("disk \(index + (image == nil ? 1 : 2)): \(note)")
      }
    }
  }
}

struct VMList: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "list", abstract: "List the VMs (with --cluster: every VM of the cluster, with its host).")

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func run() throws {
    if cluster.isSet { return try ClusterVMList(json: json, cluster: cluster).run() }
    let library = try self.library.open()
    let vms = try library.vms()
    if json { return try printJSON(vms) }
    if vms.isEmpty { return print("no VMs in \(library.root); create one with `vmlab vm create NAME --disk 8G`") }
    let checkpoints = try library.checkpoints()
    var table = TextTable("NAME", "STATE", "DISKS", "ADDITIONS", "HOST", "CHECKPOINTS")
    for vm in vms {
      table.add(
        vm.name, stateText(vm), String(vm.disks.count), vm.additions ? "yes" : "no",
        "\(vm.host) (\(vm.hostKind.rawValue))", String(checkpoints.filter { $0.vm == vm.name }.count))
    }
    table.print()
  }
}

struct VMShow: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "show", abstract: "Show a VM, its disks and chains (works with --cluster: from the VM's host).")

  @Argument(help: "The VM.")
  var name: String

  @Flag(help: "Print JSON (each disk's leaf path and its chain).")
  var json = false

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func run() throws {
    if cluster.isSet { return try ClusterVMCommands(cluster: cluster).show(name, json: json) }
    let library = try self.library.open()
    let vm = try library.vm(named: name)
    if json { return try printJSON(VMShowJSON(vm)) }
    print(
      "VM \(vm.name): \(stateText(vm)), \(vm.hostKind.rawValue) on the \(vm.host) host, additions \(vm.additions ? "yes" : "no")"
    )
    print("hardware: \(vm.hardware.summary)")
    if vm.host == "qemu", let status = try? Hosts.qemu.status(vm: vm.name) {
      print(
        "qemu: \(status.state), accelerator \(status.accelerator), qemu pid \(status.qemuPid), supervisor pid \(status.supervisorPid)"
      )
    }
    if let driver = library.hosts.driver(named: vm.host) {
      let names = driver.capabilities.names
      print(
        "host can: \(names.isEmpty ? "none of online checkpoint, saved state, guest shutdown, freeze" : names.joined(separator: ", "))"
      )
    }
    print("created \(shortDate(vm.created))")
    for disk in vm.disks {
      let size =
        (try? VirtualDisk.open(disk.path)).map { disk in
          defer { disk.close() }
          return ByteCount.format(disk.size)
        } ?? "?"
      print("disk \(disk.slot) (\(size)): \(disk.path)")
      for parent in disk.chain.dropFirst() { print("    over \(parent)") }
    }
    if let current = vm.currentCheckpointID, let checkpoint = try? library.checkpoint(id: current) {
      print("current checkpoint: \(checkpoint.id) '\(checkpoint.name)'")
    }
  }
}

/// A command that changes the power state of one VM or several, one after another; with
/// `--cluster` each change is a step on the VM's host.
protocol PowerCommand: ParsableCommand, ClusterAware {
  var names: [String] { get }
  var library: LibraryOptions { get }
  var cluster: ClusterOptions { get }
  func change(_ engine: any LabEngine, _ name: String) throws -> VirtualMachine
}

extension PowerCommand {
  func run() throws {
    if cluster.isSet {
      return try ClusterVMCommands(cluster: cluster).power(names) { engine, name in try change(engine, name) }
    }
    let library = try library.open()
    // Every VM first: a typo among several changes none.
    let found = try names.map { try library.vm(named: $0).name }
    for name in found {
      let vm = try change(library, name)
      print("\(vm.name) is \(vm.state.rawValue)")
    }
  }
}

/// The VMs a command takes, named once each.
func checkNamedOnce(_ names: [String]) throws {
  let keys = names.map(NameRules.key)
  if let twice = keys.first(where: { key in keys.filter { $0 == key }.count > 1 }) {
    throw ValidationError("the VM '\(names[keys.firstIndex(of: twice)!])' is named twice")
  }
}

/// Help for the VMs of a power command.
var powerVMsHelp: ArgumentHelp { ArgumentHelp("The VMs, changed one after another.", valueName: "vm") }

struct VMStart: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "start", abstract: "Start VMs (or resume saved ones); works with --cluster.",
    discussion: """
      A VM with guest additions (an agent, as in every VM made from an image) on a real host is
      ready when its guest agent answers: vmlab waits for that, at most --ready-timeout seconds.
      Several VMs start one after another, each waited for.

      With --cluster URL (or VMLAB_CLUSTER) each VM is started by its host's agent, wherever
      `vmlab --cluster URL vm list` places it; a VM whose host is not alive is refused and nothing
      is queued.
      """)
  @Argument(help: powerVMsHelp) var names: [String]

  @Option(help: "Seconds to wait for the guest agent of a VM with additions (0: do not wait).")
  var readyTimeout: Double = 180

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func validate() throws {
    guard readyTimeout >= 0 else { throw ValidationError("--ready-timeout cannot be negative; got \(readyTimeout)") }
    try checkNamedOnce(names)
  }

  func run() throws {
    if cluster.isSet {
      return try ClusterVMCommands(cluster: cluster).power(names, readyTimeout: readyTimeout) { engine, name in
        try engine.start(vm: name)
      }
    }
    // Every VM first: a typo among several starts none.
    let opened = try library.open()
    let found = try names.map { try opened.vm(named: $0).name }
    try opened.close()
    for name in found { try start(name) }
  }

  private func start(_ name: String) throws {
    let opened = try library.open()
    let vm = try opened.start(vm: name)
    // Only a host with a guest agent has a guest to wait for; the library is let go meanwhile.
    guard readyTimeout > 0, vm.additions, vm.state == .running, let guest = try? RunningGuest(library: opened, vm: name)
    else {
      print("\(vm.name) is \(vm.state.rawValue)")
      return
    }
    try opened.close()
    let started = Date()
    do {
      try guest.waitUntilReady(timeout: readyTimeout)
    } catch let error as LabKitError {
      // The VM is left as it is (a slow guest may still come up): say whether it runs and how to go on.
      throw LabKitError(error.kind, "\(error.message)\n\(try afterNoAnswer(name))")
    }
    print(
      "\(vm.name) is running; its guest agent answered after \(String(format: "%.1f", Date().timeIntervalSince(started))) s"
    )
  }

  /// What became of a VM whose agent did not answer, as the library sees it now.
  private func afterNoAnswer(_ name: String) throws -> String {
    let opened = try library.open()
    defer { try? opened.close() }
    let vm = try opened.vm(named: name)
    guard vm.state == .running else { return "VM '\(vm.name)' is \(stateText(vm))" }
    return
      "VM '\(vm.name)' was left running (its guest may still be starting): `vmlab vm console \(vm.name)` shows its console, `vmlab vm turn-off \(vm.name)` stops it"
  }
}

struct VMSave: PowerCommand {
  static let configuration = CommandConfiguration(
    commandName: "save",
    abstract:
      "Save running VMs' state and stop them; start resumes each where it was; works with --cluster (on each VM's host)."
  )
  @Argument(help: powerVMsHelp) var names: [String]
  @OptionGroup var library: LibraryOptions
  @OptionGroup var cluster: ClusterOptions
  func validate() throws { try checkNamedOnce(names) }
  func change(_ engine: any LabEngine, _ name: String) throws -> VirtualMachine { try engine.save(vm: name) }
}

struct VMShutdown: PowerCommand {
  static let configuration = CommandConfiguration(
    commandName: "shutdown",
    abstract: "Shut VMs down gracefully (needs guest additions); works with --cluster (on each VM's host).")
  @Argument(help: powerVMsHelp) var names: [String]
  @OptionGroup var library: LibraryOptions
  @OptionGroup var cluster: ClusterOptions
  func validate() throws { try checkNamedOnce(names) }
  func change(_ engine: any LabEngine, _ name: String) throws -> VirtualMachine { try engine.shutDown(vm: name) }
}

struct VMTurnOff: PowerCommand {
  static let configuration = CommandConfiguration(
    commandName: "turn-off", abstract: "Turn VMs off; works with --cluster (on each VM's host).")
  @Argument(help: powerVMsHelp) var names: [String]
  @OptionGroup var library: LibraryOptions
  @OptionGroup var cluster: ClusterOptions
  func validate() throws { try checkNamedOnce(names) }
  func change(_ engine: any LabEngine, _ name: String) throws -> VirtualMachine { try engine.turnOff(vm: name) }
}

struct VMRemove: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "remove",
    abstract: "Remove stopped VMs with their checkpoints and disk files; works with --cluster (on each VM's host).")

  @Argument(help: ArgumentHelp("The VMs, removed one after another.", valueName: "vm"))
  var names: [String]

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func validate() throws { try checkNamedOnce(names) }

  func run() throws {
    if cluster.isSet { return try ClusterVMCommands(cluster: cluster).remove(names) }
    let library = try library.open()
    // Every VM first: a typo among several removes none.
    for name in try names.map({ try library.vm(named: $0).name }) {
      try library.removeVM(named: name)
      print("removed VM \(name)")
    }
  }
}

/// A VM's power state for people: a VM found stopped when the library opened says so.
func stateText(_ vm: VirtualMachine) -> String {
  guard vm.state == .stopped, let when = vm.stoppedOutside else { return vm.state.rawValue }
  return "stopped outside vmlab at \(shortDate(when))" + (Hosts.stopReason(vm).map { ": \($0)" } ?? "")
}
