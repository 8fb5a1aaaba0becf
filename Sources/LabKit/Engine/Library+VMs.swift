import Foundation
import VHD

extension Library {
  /// Creates a VM with new dynamic disks of the given sizes, stopped, on the host named `host`
  /// (default `simulated`) with the given hardware.
  @discardableResult
  public func createVM(
    name: String, diskSizes: [UInt64], additions: Bool = false, hostKind: HostKind? = nil, host: String? = nil,
    hardware: Hardware = Hardware()
  ) throws -> VirtualMachine {
    try NameRules.validate(name, as: "VM")
    let (host, hardware) = try checkedHostAndHardware(host, hardware, vm: name)
    guard !diskSizes.isEmpty else {
      throw LabKitError(.invalidArgument, "VM '\(name)' needs at least one disk; give its size (for example 8G)")
    }
    return try withVMLock(name) {
      try ensureNewVM(name)
      let folder = vmFolder(name)
      let paths = diskSizes.indices.map { "\(folder)/\(name)-disk\($0 + 1).vhd" }
      var uniqueIDs: [String] = []
      let created = try journaled(
        "create-vm", vm: name, creates: paths + [folder], deletes: [],
        files: {
          try FileManager.default.createDirectory(atPath: absolute(folder), withIntermediateDirectories: true)
          for (index, size) in diskSizes.enumerated() {
            try fault("create-vm:disk\(index + 1)")
            let disk = try VirtualDisk.create(at: absolute(paths[index]), size: size)
            uniqueIDs.append(disk.uniqueID.description)
            disk.close()
          }
        },
        commit: { tx in
          let record = try insertVM(
            tx, name: name, additions: additions, hostKind: hostKind, host: host, hardware: hardware)
          for (index, path) in paths.enumerated() {
            try insertSlot(tx, vm: record, number: index + 1, path: path, uniqueID: uniqueIDs[index])
          }
          return try reportedVM(tx, record)
        })
      writeManifests(vms: [name])
      return created
    }
  }

  /// Creates a VM from an existing VHD (or chain): copied into the VM's folder, or, with `linked`,
  /// as a linked clone — a small differencing disk over a shared read-only template, which stays
  /// protected while any clone uses it. `extraDiskSizes` adds new empty dynamic disks after it
  /// (disk 2, 3, …); `templateName` names the template a first linked clone makes (default: the
  /// source's file name), e.g. `tiny-root` for an image's root disk.
  @discardableResult
  public func createVM(
    name: String, from sourcePath: String, linked: Bool = false, extraDiskSizes: [UInt64] = [],
    templateName: String? = nil, additions: Bool = false, hostKind: HostKind? = nil,
    host: String? = nil, hardware: Hardware = Hardware()
  ) throws -> VirtualMachine {
    try NameRules.validate(name, as: "VM")
    let (host, hardware) = try checkedHostAndHardware(host, hardware, vm: name)
    let source = try DiskChain.open(sourcePath)
    let sourceID = source.leaf.uniqueID
    defer { source.close() }
    return try withVMLock(name) {
      try ensureNewVM(name)
      let folder = vmFolder(name)
      let diskPath = "\(folder)/\(name)-disk1.vhd"
      let extraPaths = extraDiskSizes.indices.map { "\(folder)/\(name)-disk\($0 + 2).vhd" }
      var extraIDs: [String] = []
      let existingTemplate: DiskRecord? =
        linked
        ? try catalog.read { tx in
          try tx.template(madeFrom: sourceID.description)
        } : nil
      let templatePath =
        linked && existingTemplate == nil
        ? try newTemplatePath(for: templateName.map { "\($0).vhd" } ?? source.leaf.path) : nil
      var templateID = sourceID.description
      var diskID = ""
      let created = try journaled(
        "create-vm", vm: name, creates: [diskPath, folder] + extraPaths + (templatePath.map { [$0] } ?? []),
        deletes: [],
        files: {
          try FileManager.default.createDirectory(atPath: absolute(folder), withIntermediateDirectories: true)
          if linked {
            let parent = existingTemplate?.path ?? templatePath!
            if let templatePath {
              let template = try source.flatten(to: absolute(templatePath), type: .dynamic)
              templateID = template.uniqueID.description
              template.close()
            }
            let clone = try VirtualDisk.createDifferencing(at: absolute(diskPath), parent: absolute(parent))
            diskID = clone.uniqueID.description
            clone.close()
          } else {
            let copy = try source.flatten(to: absolute(diskPath), type: source.base.type == .fixed ? .fixed : .dynamic)
            diskID = copy.uniqueID.description
            copy.close()
          }
          for (index, size) in extraDiskSizes.enumerated() {
            try fault("create-vm:disk\(index + 2)")
            let disk = try VirtualDisk.create(at: absolute(extraPaths[index]), size: size)
            extraIDs.append(disk.uniqueID.description)
            disk.close()
          }
        },
        commit: { tx in
          let record = try insertVM(
            tx, name: name, additions: additions, hostKind: hostKind, host: host, hardware: hardware)
          var parentID: Int64? = nil
          if linked {
            if let existingTemplate {
              parentID = existingTemplate.id
            } else {
              var template = DiskRecord(
                id: nil, path: templatePath!, uniqueID: templateID, parentID: nil, vmID: nil, slot: nil,
                role: .template,
                checkpointID: nil, sourceUniqueID: sourceID.description)
              try tx.insert(&template)
              parentID = template.id
            }
          }
          try insertSlot(
            tx, vm: record, number: 1, path: diskPath, uniqueID: diskID, parentID: parentID,
            role: linked ? .clone : .base)
          for (index, path) in extraPaths.enumerated() {
            try insertSlot(tx, vm: record, number: index + 2, path: path, uniqueID: extraIDs[index])
          }
          return try reportedVM(tx, record)
        })
      writeManifests(vms: [name])
      return created
    }
  }

  /// A new VM's disk in slot `number`: its base and, until a checkpoint, its leaf.
  private func insertSlot(
    _ tx: CatalogTransaction, vm: VMRecord, number: Int, path: String, uniqueID: String, parentID: Int64? = nil,
    role: DiskRole = .base
  ) throws {
    var disk = DiskRecord(
      id: nil, path: path, uniqueID: uniqueID, parentID: parentID, vmID: vm.id, slot: number, role: role,
      checkpointID: nil)
    try tx.insert(&disk)
    try tx.insert(SlotRecord(vmID: vm.id!, number: number, baseID: disk.id!, leafID: disk.id!))
  }

  private func newTemplatePath(for source: String) throws -> String {
    let stem = ((source as NSString).lastPathComponent as NSString).deletingPathExtension
    let safe = String(stem.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "-" }.prefix(48))
    var candidate = "templates/\(safe.isEmpty ? "template" : safe).vhd"
    var number = 2
    func taken(_ path: String) throws -> Bool {
      try FileManager.default.fileExists(atPath: absolute(path))
        || catalog.read { tx in try tx.disk(atPath: path) != nil }
    }
    while try taken(candidate) {
      candidate = "templates/\(safe)-\(number).vhd"
      number += 1
    }
    return candidate
  }

  func ensureNewVM(_ name: String) throws {
    if try catalog.read({ tx in try tx.hasVM(named: name) }) {
      throw LabKitError(.alreadyExists, "VM '\(name)' already exists; choose another name or remove it first")
    }
    if FileManager.default.fileExists(atPath: absolute(vmFolder(name))) {
      throw LabKitError(
        .conflict,
        "the folder \(absolute(vmFolder(name))) exists but no VM '\(name)' is in the catalog; run `vmlab library repair` or move the folder away"
      )
    }
  }

  private func insertVM(
    _ tx: CatalogTransaction, name: String, additions: Bool, hostKind: HostKind?, host: String, hardware: Hardware
  ) throws -> VMRecord {
    var record = VMRecord(
      id: nil, name: name, hostKind: try hostKind ?? storedHostKind(tx), state: .stopped, additions: additions,
      created: Date(),
      currentCheckpointID: nil, savedStatePath: nil, host: host)
    record.hardware = hardware
    try tx.insert(&record)
    return record
  }

  /// A new VM's host (registered in this process) and hardware (within bounds, boot files present),
  /// checked before anything is made.
  private func checkedHostAndHardware(_ host: String?, _ hardware: Hardware, vm: String) throws -> (String, Hardware) {
    let host = host ?? HostRegistry.defaultName
    try checkHost(host, vm: vm)
    return (host, try hardware.validated(for: vm))
  }

  /// Removes a stopped VM with its checkpoints and files. Templates it shared stay.
  public func removeVM(named name: String) throws {
    try withVMLock(name) {
      let (record, files) = try catalog.read { tx -> (VMRecord, [String]) in
        let record = try vmRecord(tx, named: name)
        let disks = try tx.disks(ofVM: record.id!)
        let states = try tx.checkpoints(ofVM: record.id!).compactMap(\.runningStatePath)
        return (record, disks.map(\.path) + states + [record.savedStatePath].compactMap { $0 })
      }
      guard record.state == .stopped else {
        throw LabKitError(
          .invalidState, "VM '\(record.name)' is \(record.state); shut it down or turn it off before removing it")
      }
      let folder = vmFolder(record.name)
      try journaled(
        "remove-vm", vm: record.name, creates: [], deletes: files + [folder + "/vm.json", folder], files: {},
        commit: { tx in try tx.removeVM(id: record.id!) })
      writeManifests(vms: [record.name])
    }
  }

  // MARK: Power

  /// Starts a stopped VM, or resumes a saved one.
  @discardableResult
  public func start(vm name: String) throws -> VirtualMachine {
    try withVMLock(name) {
      var record = try catalog.read { tx in try vmRecord(tx, named: name) }
      let vm = try self.vm(named: record.name)
      let driver = try driver(record)
      let hosted = hosted(record, disks: vm.disks.map(\.path))
      switch record.state {
      case .running:
        return vm
      case .stopped:
        try driver.start(hosted)
      case .saved:
        guard let statePath = record.savedStatePath else {
          throw LabKitError(
            .inconsistent,
            "VM '\(record.name)' is saved but the catalog names no saved state; turn it off to discard it, or run `vmlab library check`"
          )
        }
        try driver.resume(hosted, from: absolute(statePath))
      }
      try recordPower(&record, .running, step: "start:recorded")
      try? writeManifest(vm: record.name)
      return try self.vm(named: record.name)
    }
  }

  /// Shuts a running VM down through its guest additions.
  @discardableResult
  public func shutDown(vm name: String) throws -> VirtualMachine {
    try withVMLock(name) {
      var record = try catalog.read { tx in try vmRecord(tx, named: name) }
      if record.state == .saved {
        // Its guest is not running, so it cannot shut down; saying nothing left the user believing it had.
        throw LabKitError(
          .invalidState,
          "VM '\(record.name)' is saved, not running, so its guest cannot shut down; start it to resume it (then shut it down), or turn it off to discard the saved state"
        )
      }
      guard record.state == .running else { return try vm(named: record.name) }
      guard record.additions else {
        throw LabKitError(
          .invalidState, "VM '\(record.name)' has no guest additions to shut it down gracefully; turn it off instead")
      }
      let driver = try driver(record)
      guard driver.capabilities.contains(.guestShutdown) else {
        throw LabKitError(
          .invalidState,
          "VM '\(record.name)' runs on the host '\(record.host)', which cannot shut a guest down gracefully; turn it off instead"
        )
      }
      try driver.shutDown()
      record.state = .stopped
      try catalog.write { tx in try tx.update(record) }
      try? writeManifest(vm: record.name)
      return try vm(named: record.name)
    }
  }

  /// Turns a VM off (a running one loses what it had not written; a saved one its saved state).
  @discardableResult
  public func turnOff(vm name: String) throws -> VirtualMachine {
    try withVMLock(name) {
      var record = try catalog.read { tx in try vmRecord(tx, named: name) }
      guard record.state != .stopped else { return try vm(named: record.name) }
      try driver(record).turnOff()
      try recordPower(&record, .stopped, step: "turn-off:recorded")
      try? writeManifest(vm: record.name)
      return try vm(named: record.name)
    }
  }

  /// Saves a running VM's state and stops it; `start` resumes it.
  @discardableResult
  public func save(vm name: String) throws -> VirtualMachine {
    try withVMLock(name) {
      var record = try catalog.read { tx in try vmRecord(tx, named: name) }
      guard record.state == .running else {
        throw LabKitError(.invalidState, "VM '\(record.name)' is \(record.state); only a running VM can be saved")
      }
      let driver = try driver(record)
      guard driver.capabilities.contains(.savedState) else {
        throw LabKitError(
          .invalidState,
          "VM '\(record.name)' runs on the host '\(record.host)', which cannot save a VM's running state; shut it down or turn it off instead"
        )
      }
      let path = "\(vmFolder(record.name))/saved.vsv"
      // The host streams the state into the file the journal names: a failure or a kill before the
      // commit removes it, and the catalog names it only once it is whole.
      try journaled(
        "save", vm: record.name, creates: [path], deletes: [],
        files: {
          try driver.saveState(to: absolute(path))
          try fault("save:written")
        },
        commit: { tx in
          record.savedStatePath = path
          record.state = .saved
          try tx.update(record)
        })
      writeManifests(vms: [record.name])
      return try vm(named: record.name)
    }
  }

  /// Records a VM's new power state, which leaves any saved state behind. The saved state's file
  /// goes only after the commit that stops naming it, so the catalog never names a missing file
  /// (rule 1); `step` is the fault-injection point between the two.
  private func recordPower(_ record: inout VMRecord, _ state: PowerState, step: String) throws {
    let discarded = record.savedStatePath
    record.savedStatePath = nil
    record.state = state
    try catalog.write { tx in try tx.update(record) }
    try fault(step)
    if let discarded { removeFileIfPresent(absolute(discarded)) }
  }

  /// Stops a running VM so that an operation can change its disks: gracefully when it has guest
  /// additions, otherwise by turning it off. Returns what was done. With `discardingRun` (a restore
  /// that brings back a checkpoint's saved memory) the running guest is thrown away whole, so its
  /// power is cut at once: a graceful shutdown would only make the user wait seconds per VM.
  func stopForOperation(_ record: inout VMRecord, discardingRun: Bool = false) throws -> PowerAction {
    guard record.state != .stopped else { return .none }
    let driver = try driver(record)
    if record.state == .saved {
      try driver.turnOff()
      try recordPower(&record, .stopped, step: "stop:recorded")
      return .savedStateDiscarded
    }
    let action: PowerAction
    if record.additions && driver.capabilities.contains(.guestShutdown) && !discardingRun {
      try driver.shutDown()
      action = .shutDown
    } else {
      try driver.turnOff()
      action = .turnedOff
    }
    record.state = .stopped
    return action
  }

  // MARK: Guest I/O (the simulated host's stand-in for a guest)

  /// Writes bytes at an offset of a VM's disk, as its guest would: only while the VM runs.
  /// (`SimulatedGuest` is the public way in, for VMs of a host that simulates its guests.)
  func guestWrite(vm name: String, disk slot: Int, offset: UInt64, bytes: [UInt8]) throws {
    try withVMLock(name) {
      let vm = try self.vm(named: name)
      guard vm.state == .running else {
        throw LabKitError(
          .invalidState, "VM '\(vm.name)' is \(vm.state); its guest writes only while it runs (start it)")
      }
      let chain = try DiskChain.open(try diskPath(vm, slot), writable: true)
      defer { chain.close() }
      try chain.write(bytes, at: offset)
    }
  }

  /// The most one `diskRead` returns: the bytes are held in memory (a Lua string, a buffer), so a
  /// length typed wrong (`1T`) must be an error, not an attempt to allocate it.
  static let maximumReadLength = 64 << 20

  /// Reads bytes at an offset of a VM's disk as it is now (through its chain): at most
  /// `maximumReadLength` bytes, and none past the end of the disk.
  func diskRead(vm name: String, disk slot: Int, offset: UInt64, count: Int) throws -> [UInt8] {
    try withVMLock(name) {
      let vm = try self.vm(named: name)
      let chain = try DiskChain.open(try diskPath(vm, slot))
      defer { chain.close() }
      try checkRead(vm, slot, chain, offset: offset, length: count < 0 ? nil : UInt64(count))
      guard count <= Library.maximumReadLength else {
        throw LabKitError(
          .invalidArgument,
          "cannot read \(count) bytes of VM '\(vm.name)' disk \(slot) at once: the limit is \(Library.maximumReadLength) bytes (\(ByteCount.format(UInt64(Library.maximumReadLength)))); read it in pieces"
        )
      }
      return try chain.read(at: offset, count: count)
    }
  }

  /// Copies `length` bytes at an offset of a VM's disk (through its chain) to `output`, a piece at a
  /// time, so any length within the disk works without holding it in memory.
  func diskRead(vm name: String, disk slot: Int, offset: UInt64, length: UInt64, to output: FileHandle) throws {
    try withVMLock(name) {
      let vm = try self.vm(named: name)
      let chain = try DiskChain.open(try diskPath(vm, slot))
      defer { chain.close() }
      try checkRead(vm, slot, chain, offset: offset, length: length)
      var position = offset
      let end = offset + length
      while position < end {
        let count = Int(min(UInt64(Library.maximumReadLength), end - position))
        try output.write(contentsOf: try chain.read(at: position, count: count))
        position += UInt64(count)
      }
    }
  }

  /// A read must lie inside the disk (`length` nil: a negative length was asked for).
  private func checkRead(_ vm: VirtualMachine, _ slot: Int, _ chain: DiskChain, offset: UInt64, length: UInt64?)
    throws
  {
    let what = "VM '\(vm.name)' disk \(slot)"
    guard let length else {
      throw LabKitError(
        .invalidArgument, "cannot read a negative number of bytes of \(what); give a length of 0 or more")
    }
    guard offset <= chain.size, length <= chain.size - offset else {
      throw LabKitError(
        .invalidArgument,
        "cannot read \(length) bytes at offset \(offset) of \(what): the disk is \(chain.size) bytes (\(ByteCount.format(chain.size))); read within it"
      )
    }
  }

  private func diskPath(_ vm: VirtualMachine, _ slot: Int) throws -> String {
    guard let disk = vm.disks.first(where: { $0.slot == slot }) else {
      throw LabKitError(.notFound, "VM '\(vm.name)' has no disk \(slot); it has disks 1 to \(vm.disks.count)")
    }
    return disk.path
  }
}
