import Foundation
import LabKit
import VHD

/// A VM object's identity: the catalog id and the name (names cannot change). Every access looks
/// the VM up again; a VM removed (or removed and created anew under the same name) is a stale
/// handle with a clear error.
struct VMHandle: Equatable {
  let id: Int64
  let name: String
}

/// `vmlab.vm.*`, `vmlab.vms()`, the VM class and the VMs list (bulk checkpoint and power).
extension EngineBinding {
  func defineVMs(in module: LuaTable, state: LuaState) {
    let vm = state.defineClass("VM", payload: VMHandle.self)
    vmClass = vm
    vm.equality { $0.id == $1.id }
    vm.toString { [weak self] handle in
      guard let self, let current = try? self.current(handle) else { return "VM \(handle.name) (removed)" }
      let disks = current.disks.count == 1 ? "1 disk" : "\(current.disks.count) disks"
      return "VM \(current.name) (\(current.state.rawValue), \(disks))"
    }

    vm.columns(["name", "state", "disks", "additions", "host", "hostKind", "currentCheckpoint"])
    vm.property("id") { .integer($0.id) }
    vm.property("name") { .text($0.name) }
    vm.property("state") { handle in .text(try self.current(handle).state.rawValue) }
    vm.property("additions") { handle in .boolean(try self.current(handle).additions) }
    // `host` is the host kind (as in `vm.create{host=}`); `hostName` the host that runs the VM.
    // `host` is the host that runs the VM (`simulated`, `qemu`), as `vm.create{host=}` takes it;
    // `hostName` is its older spelling. The kind (`virtual-server`, `hypervisor`) is `hostKind`.
    vm.property("host") { handle in .text(try self.current(handle).host) }
    vm.property("hostName") { handle in .text(try self.current(handle).host) }
    // With --cluster, the cluster host that holds the VM (nil without: every VM is on this machine).
    vm.property("clusterHost") { handle in try self.engine.clusterHost(of: handle.name).map { .text($0) } ?? .nil }
    vm.property("hostKind") { handle in .text(try self.current(handle).hostKind.rawValue) }
    vm.property("hardware") { handle in
      let hardware = try self.current(handle).hardware
      var fields: [String: LuaValue] = [
        "memory": .integer(Int64(hardware.memory)), "cpus": .integer(Int64(hardware.cpus)),
        "network": .text(hardware.network.rawValue), "accelerator": .text(hardware.accelerator.rawValue),
        "boot": .text("firmware"),
      ]
      if case .kernel(let path, let initrd, let commandLine) = hardware.boot {
        fields["boot"] = .text("kernel")
        fields["kernel"] = .text(path)
        fields["initrd"] = initrd.map { .text($0) } ?? .nil
        fields["append"] = .text(commandLine)
      }
      return try self.table(fields)
    }
    // The accelerator the guest runs on now (kvm, tcg) on a host with real guests; else the setting.
    vm.property("accelerator") { handle in .text(try self.engine.accelerator(of: try self.current(handle).name)) }
    vm.property("created") { handle in .text(Self.format(try self.current(handle).created)) }
    vm.property("disks") { handle in
      try self.list(.disks, try self.current(handle).disks.map { try self.wrapDisk($0.path) })
    }
    vm.property("currentCheckpoint") { handle in
      guard let id = try self.current(handle).currentCheckpointID else { return .nil }
      return try self.wrapCheckpoint(try self.engine.checkpoint(id: id))
    }

    // Power: each returns the VM, so calls chain (vm:start():checkpoint{...}).
    vm.method("start") { handle, _ in
      _ = try self.engine.start(vm: try self.current(handle).name)
      return [try self.wrapVM(handle)]
    }
    vm.method("shutdown") { handle, _ in
      _ = try self.engine.shutDown(vm: try self.current(handle).name)
      return [try self.wrapVM(handle)]
    }
    vm.method("turnOff") { handle, _ in
      _ = try self.engine.turnOff(vm: try self.current(handle).name)
      return [try self.wrapVM(handle)]
    }
    vm.method("save") { handle, _ in
      _ = try self.engine.save(vm: try self.current(handle).name)
      return [try self.wrapVM(handle)]
    }
    vm.method("remove") { handle, _ in
      try self.engine.removeVM(named: try self.current(handle).name)
      return []
    }

    vm.method("checkpoint") { handle, arguments in
      let request = try CheckpointRequest(arguments, position: 1)
      let name = try self.current(handle).name
      if request.async {
        return [
          try self.queued(
            try self.engine.checkpointJob(vm: name, name: request.name, description: request.description))
        ]
      }
      let result = try self.engine.checkpoint(
        vm: name, name: request.name, description: request.description, disksOnly: false)
      return [try self.wrapCheckpoint(result.checkpoint), .text(result.action.rawValue)]
    }
    vm.method("checkpoints") { handle, _ in
      try self.checkpointList(try self.engine.checkpoints(vm: try self.current(handle).name))
    }
    vm.method("mostRecentCheckpoint") { handle, _ in
      guard let latest = try self.engine.mostRecentCheckpoints(vm: try self.current(handle).name).first else {
        return [.nil]
      }
      return [try self.wrapCheckpoint(latest)]
    }

    // The guest, simulated: writes go to the disk's current leaf while the VM runs. Only the
    // simulated host offers this; a real host's guest does its own writes.
    func guest(_ handle: VMHandle, _ method: String) throws -> SimulatedGuest {
      do {
        return try self.engine.simulatedGuest(of: try self.current(handle).name)
      } catch let error as LabKitError where error.kind == .invalidState {
        throw LabKitError(
          .invalidState,
          "vm:\(method) works only on the simulated host: \(error.message) (on a real host, run programs in the guest with vm:exec)"
        )
      }
    }
    vm.method("write") { handle, arguments in
      let slot = try arguments.int(1)
      let start = try offset(arguments, 2)
      let bytes = try arguments.bytes(3)
      try guest(handle, "write").write(disk: slot, offset: start, bytes: bytes)
      return [.integer(Int64(bytes.count))]
    }
    vm.method("read") { handle, arguments in
      let slot = try arguments.int(1)
      let start = try offset(arguments, 2)
      let length = try arguments.int(3)
      guard length >= 0 else { throw arguments.error(3, "length cannot be negative") }
      return [.string(try guest(handle, "read").read(disk: slot, offset: start, count: length))]
    }

    // The guest, real: programs run inside it through its host's guest agent. The library is
    // not held while they run (`RunningGuest` keeps only what the host needs).
    vm.method("exec") { handle, arguments in
      let command = try self.guestCommand(arguments)
      let result = try self.engine.run(command, inGuestOf: try self.current(handle).name)
      return [
        try self.table([
          "stdout": .string([UInt8](result.standardOutput)), "stderr": .string([UInt8](result.standardError)),
          "status": .integer(Int64(result.status)),
        ])
      ]
    }
    vm.method("waitReady") { handle, arguments in
      try arguments.checkOptions(1, allowed: ["timeout"])
      let timeout = try arguments.option(1, "timeout", as: Double.self) ?? GuestCommand.defaultTimeout
      guard timeout > 0 else { throw arguments.error(1, "field 'timeout': give more than 0 seconds") }
      try self.engine.waitUntilReady(guestOf: try self.current(handle).name, timeout: timeout)
      return [try self.wrapVM(handle)]
    }

    // The guest's recent console lines (`vm:console()` or `vm:console(50)`), as one string.
    vm.method("console") { handle, arguments in
      let lines = arguments.isNil(1) ? 20 : try arguments.int(1)
      guard lines > 0 else { throw arguments.error(1, "give a number of lines from 1 up, not \(lines)") }
      return [.text(try self.engine.recentConsole(of: try self.current(handle).name, lines: lines))]
    }

    defineVMList(state: state)

    let functions = state.newTable()
    functions["create"] = .function(state.function(named: "create") { arguments in [try self.createVM(arguments)] })
    functions["get"] = .function(
      state.function(named: "get") { arguments in
        [try self.wrapVM(try self.engine.vm(named: try arguments.string(1)))]
      })
    functions["exists"] = .function(
      state.function(named: "exists") { arguments in
        let name = try arguments.string(1)
        return [.boolean(try self.engine.vms().contains { $0.name.lowercased() == name.lowercased() })]
      })
    module["vm"] = .table(functions)
    module["vms"] = .function(
      state.function(named: "vms") { _ in [try self.list(.vms, try self.engine.vms().map { try self.wrapVM($0) })] })
  }

  /// `vm:exec("shell line" [, {timeout=, input=}])` or `vm:exec({"program", "arg", …} [, options])`.
  private func guestCommand(_ arguments: LuaArguments) throws -> GuestCommand {
    try arguments.checkOptions(2, allowed: ["timeout", "input"])
    let timeout = try arguments.option(2, "timeout", as: Double.self) ?? GuestCommand.defaultTimeout
    guard timeout > 0 else { throw arguments.error(2, "field 'timeout': give more than 0 seconds") }
    var input: Data? = nil
    if !arguments.isNil(2) {
      switch try arguments.field(2, "input") {
      case .nil: break
      case .string(let bytes): input = Data(bytes)
      case let other: throw arguments.error(2, "field 'input': string expected, got \(other.typeName)")
      }
    }
    switch arguments[1] {
    case .string:
      return .shell(try arguments.string(1), input: input, timeout: timeout)
    case .table(let table):
      let words = try table.array().enumerated().map { index, word -> String in
        guard let text = word.stringValue else {
          throw arguments.error(1, "item \(index + 1) of the command: string expected, got \(word.typeName)")
        }
        return text
      }
      guard let program = words.first else {
        throw arguments.error(1, "the command is empty; give {\"program\", \"argument\", …} or a shell line")
      }
      return GuestCommand(path: program, arguments: Array(words.dropFirst()), input: input, timeout: timeout)
    default:
      throw arguments.error(
        1, "a shell line (string) or {\"program\", \"argument\", …} expected, got \(arguments.typeName(1))")
    }
  }

  /// `vmlab.vm.create{name=, disks={"8G", "2G"}, additions=, host=}` or `{name=, from=path|Disk, linked=}`
  /// or `{name=, host="qemu", image="tiny", disks={"1G"}}` (disk 1 a linked clone of the image's root
  /// disk, `disks` the extra ones), with `memory=` (a size), `cpus=` and `accelerator=` ("auto",
  /// "kvm", "tcg"). `host=` takes a host kind ("virtual-server", "hypervisor") or the host that
  /// runs the VM ("simulated", "qemu", the default simulated); `hostKind=` gives the kind beside a host.
  private func createVM(_ arguments: LuaArguments) throws -> LuaValue {
    try arguments.checkOptions(
      1,
      allowed: [
        "name", "disks", "additions", "host", "hostKind", "image", "from", "linked", "memory", "cpus", "accelerator",
      ])
    _ = try arguments.table(1)
    let name = try arguments.requiredString(1, "name")
    let additions = try arguments.flag(1, "additions")
    // `host` was the host kind before VMs ran anywhere but the simulated host: a kind still means
    // that, a host's name chooses the host.
    var host: HostKind?
    var hostName: String?
    if let text = try arguments.option(1, "host", as: String.self) {
      if let kind = HostKind(rawValue: text) {
        host = kind
      } else if try engine.hostNames.contains(text) {
        hostName = text
      } else {
        let kinds = HostKind.allCases.map { "\"\($0.rawValue)\"" }
        let hosts = try engine.hostNames.map { "\"\($0)\"" }
        throw arguments.error(
          1,
          "field 'host': a host (\(hosts.joined(separator: ", "))) or a host kind (\(kinds.joined(separator: ", "))) expected, got \"\(text)\""
        )
      }
    }
    if let text = try arguments.option(1, "hostKind", as: String.self) {
      guard let kind = HostKind(rawValue: text) else {
        let kinds = HostKind.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " or ")
        throw arguments.error(1, "field 'hostKind': \(kinds) expected, got \"\(text)\"")
      }
      guard host == nil else { throw arguments.error(1, "field 'host' gives the host kind already; give one of them") }
      host = kind
    }
    var hardware = Hardware()
    let memory = try arguments.field(1, "memory")
    if !memory.isNil { hardware.memory = try byteCount(memory, what: "field 'memory' of VM '\(name)'") }
    if let cpus = try arguments.option(1, "cpus", as: Int.self) { hardware.cpus = cpus }
    if let text = try arguments.option(1, "accelerator", as: String.self) {
      guard let accelerator = Hardware.Accelerator(rawValue: text) else {
        let names = Hardware.Accelerator.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        throw arguments.error(1, "field 'accelerator': \(names) expected, got \"\(text)\"")
      }
      hardware.accelerator = accelerator
    }
    let from = try arguments.field(1, "from")
    let disks = try arguments.field(1, "disks")
    if let image = try arguments.option(1, "image", as: String.self) {
      guard from.isNil else {
        throw arguments.error(1, "'image' makes disk 1 from the image: give 'image' or 'from', not both")
      }
      guard !(try arguments.flag(1, "linked")) else {
        throw arguments.error(1, "'linked' goes with 'from', not 'image' (an image's VM is always a linked clone)")
      }
      let extra = try diskSizes(disks, vm: name, firstSlot: 2, arguments)
      return try wrapVM(
        try engine.createVM(
          name: name, image: image, extraDiskSizes: extra, hostKind: host,
          host: hostName ?? ImageTemplates.bootingHosts[0], hardware: hardware))
    }
    if !from.isNil {
      try requireFileAccess("vmlab.vm.create{from=}")
      guard disks.isNil else { throw arguments.error(1, "give either 'disks' or 'from', not both") }
      let source: String
      if let handle = diskClass?.payload(of: from) {
        source = try handle.usablePath()
      } else if let path = from.stringValue {
        source = absolutePath(path)
      } else {
        throw arguments.error(1, "field 'from': path or Disk expected, got \(from.typeName)")
      }
      let created = try engine.createVM(
        name: name, from: source, linked: try arguments.flag(1, "linked"), extraDiskSizes: [], templateName: nil,
        additions: additions, hostKind: host,
        host: hostName, hardware: hardware)
      return try wrapVM(created)
    }
    guard try !arguments.flag(1, "linked") else { throw arguments.error(1, "'linked' needs 'from' (the parent disk)") }
    let sizes = try diskSizes(disks, vm: name, firstSlot: 1, arguments)
    return try wrapVM(
      try engine.createVM(
        name: name, diskSizes: sizes, additions: additions, hostKind: host, host: hostName, hardware: hardware))
  }

  /// `disks={"8G", "2G"}` as byte counts; with an image they are disks 2, 3, … (may be absent).
  private func diskSizes(_ disks: LuaValue, vm name: String, firstSlot: Int, _ arguments: LuaArguments) throws
    -> [UInt64]
  {
    if disks.isNil && firstSlot > 1 { return [] }
    guard let sizes = disks.tableValue else {
      throw arguments.error(
        1, "field 'disks': a list of sizes (such as {\"8G\", \"2G\"}) expected, got \(disks.typeName)")
    }
    return try sizes.array().enumerated().map { index, value in
      try byteCount(value, what: "disk \(index + firstSlot) of VM '\(name)'")
    }
  }

  /// Methods of the list `vmlab.vms()` and `lab.vms` return: bulk checkpoint (one job per VM, run
  /// in parallel) and power.
  private func defineVMList(state: LuaState) {
    let list = state.listType(named: ListKind.vms.rawValue)
    list.method("checkpoint") { items, arguments in
      let request = try CheckpointRequest(arguments, position: 1)
      let names = try self.vmHandles(in: items, function: "checkpoint").map { try self.current($0).name }
      let jobs = try names.map {
        try self.engine.checkpointJob(vm: $0, name: request.name, description: request.description)
      }
      if request.async { return [try self.list(.jobs, try jobs.map { try self.queued($0) })] }
      let finished = try self.engine.wait(jobs: jobs.map(\.id))
      let failures = finished.filter { $0.status == .failed }
      if !failures.isEmpty {
        let details = failures.map { "\($0.target): \($0.error ?? "failed")" }.joined(separator: "; ")
        throw EngineError(
          "checkpoint '\(request.name)' failed for \(failures.count) of \(finished.count) VMs (the others were checkpointed): \(details)"
        )
      }
      return try self.checkpointList(names.map { try self.engine.checkpoint(vm: $0, named: request.name) })
    }
    for (method, operation) in [
      ("start", { try $0.start(vm: $1) }), ("shutdown", { try $0.shutDown(vm: $1) }),
      ("turnOff", { try $0.turnOff(vm: $1) }),
    ] as [(String, (any LabEngine, String) throws -> VirtualMachine)] {
      list.method(method) { items, _ in
        let engine = try self.engine
        for handle in try self.vmHandles(in: items, function: method) {
          _ = try operation(engine, try self.current(handle).name)
        }
        return [.table(items)]
      }
    }
  }

  // MARK: Handles

  /// The VM as it is now, or a clear error for a handle whose VM is gone.
  func current(_ handle: VMHandle) throws -> VirtualMachine {
    try current("VM", named: handle.name, id: handle.id, lookup: engine.vm(named:), id: \.id)
  }

  func wrapVM(_ vm: VirtualMachine) throws -> LuaValue {
    try defined(vmClass).wrap(VMHandle(id: vm.id, name: vm.name))
  }

  func wrapVM(_ handle: VMHandle) throws -> LuaValue {
    try defined(vmClass).wrap(handle)
  }

  /// A VM given as a VM object or by name, as its current name.
  func vmName(_ value: LuaValue, what: String) throws -> String {
    if let handle = vmClass?.payload(of: value) { return try current(handle).name }
    if let name = value.stringValue { return name }
    throw EngineError("\(what): VM or VM name expected, got \(typeName(value))")
  }

  func vmHandles(in items: LuaTable, function: String) throws -> [VMHandle] {
    try items.array().enumerated().map { index, value in
      guard let handle = vmClass?.payload(of: value) else {
        throw EngineError("\(function): item \(index + 1) of the list is a \(self.typeName(value)), not a VM")
      }
      return handle
    }
  }
}

/// The arguments of a checkpoint call: `("name")` or `{name=, description=, async=}`.
struct CheckpointRequest {
  var name: String
  var description: String
  var async: Bool

  init(_ arguments: LuaArguments, position: Int) throws {
    if let name = arguments[position].stringValue {
      self.name = name
      description = ""
      async = false
      return
    }
    guard arguments[position].tableValue != nil else {
      throw arguments.error(
        position, "checkpoint name or {name=, description=, async=} expected, got \(arguments.typeName(position))")
    }
    try arguments.checkOptions(position, allowed: ["name", "description", "async"])
    name = try arguments.requiredString(position, "name")
    description = try arguments.option(position, "description", as: String.self) ?? ""
    async = try arguments.flag(position, "async")
  }
}
