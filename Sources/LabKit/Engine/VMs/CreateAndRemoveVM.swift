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
          uniqueIDs = try createEmptyDisks(paths, sizes: diskSizes, firstNumber: 1)
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
          extraIDs = try createEmptyDisks(extraPaths, sizes: extraDiskSizes, firstNumber: 2)
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
  /// Makes new empty disks of these sizes and gives their unique ids, in order; the fault steps
  /// number them from `firstNumber`, the first one's slot.
  private func createEmptyDisks(_ paths: [String], sizes: [UInt64], firstNumber: Int) throws -> [String] {
    try zip(paths, sizes).enumerated().map { index, disk in
      try fault("create-vm:disk\(index + firstNumber)")
      let made = try VirtualDisk.create(at: absolute(disk.0), size: disk.1)
      defer { made.close() }
      return made.uniqueID.description
    }
  }

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
      currentCheckpointID: nil, savedMemoryPath: nil, host: host)
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
        let memoryFiles = try tx.checkpoints(ofVM: record.id!).compactMap(\.memoryPath)
        return (record, disks.map(\.path) + memoryFiles + [record.savedMemoryPath].compactMap { $0 })
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
}
