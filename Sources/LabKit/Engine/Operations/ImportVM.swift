import Foundation
import VHD

/// What to do with Virtual Server undo disks (`.vud`) found beside an imported VM's disks.
public enum UndoDiskChoice: String, Codable, Sendable, CaseIterable {
  /// Drop the changes they hold.
  case discard
  /// Merge them into their disks first.
  case merge
}

extension Library {
  /// Imports a VM from a folder of VHD files written elsewhere: each chain in the folder (a leaf and
  /// its parents) becomes one of the VM's disks, copied into the library. Differencing disks are
  /// kept as plain chains, never taken for checkpoints, whatever their names. Parents are only
  /// followed inside the folder unless `allowParentsOutside` is set. Undo disks need a choice.
  @discardableResult
  public func importVM(
    name: String, from folder: String, undoDisks: UndoDiskChoice? = nil, additions: Bool = false,
    allowParentsOutside: Bool = false
  ) throws -> VirtualMachine {
    try NameRules.validate(name, as: "VM")
    let source = URL(fileURLWithPath: folder).standardizedFileURL.path
    let names = try folderContents(source, what: "the folder to import").sorted(by: naturalOrder)
    let undo = names.filter { $0.lowercased().hasSuffix(".vud") }
    if !undo.isEmpty && undoDisks == nil {
      throw LabKitError(
        .invalidArgument,
        "\(source) has Virtual Server undo disks (\(undo.joined(separator: ", "))): choose --undo-disks discard (their changes are dropped) or --undo-disks merge (merged into their disks first)"
      )
    }
    if names.contains(Library.exportManifestName) {
      guard undo.isEmpty else {
        throw LabKitError(
          .invalidArgument,
          "\(source) holds a vmlab export (\(Library.exportManifestName)) and undo disks (\(undo.joined(separator: ", "))); a vmlab export has none: move them away"
        )
      }
      return try importExport(name: name, from: source, additions: additions)
    }
    let options = OpenOptions(parentSearchRoot: allowParentsOutside ? nil : source)
    let vhds = names.filter { $0.lowercased().hasSuffix(".vhd") }
    guard !vhds.isEmpty else { throw LabKitError(.notFound, "no .vhd files in \(source)") }
    // Leaves: disks no other disk of the folder names as its parent (undo disks aside).
    var parentIDs: Set<UniqueID> = []
    var ids: [String: UniqueID] = [:]
    for file in vhds {
      let disk = try VirtualDisk.open(source + "/" + file, options: options)
      ids[file] = disk.uniqueID
      if let parent = disk.header?.parentUniqueID, disk.type == .differencing { parentIDs.insert(parent) }
      disk.close()
    }
    let leaves = vhds.filter { !parentIDs.contains(ids[$0]!) }
    var chains: [[String]] = []  // absolute source paths, leaf first
    for leaf in leaves {
      let chain: DiskChain
      do {
        chain = try DiskChain.open(source + "/" + leaf, options: options)
      } catch let error as VHDError where error.problem == .missingParent && !allowParentsOutside {
        throw LabKitError(
          .invalidArgument,
          "\(error); to follow parents outside \(source), pass --allow-parents-outside (only for files you trust)")
      }
      chains.append(chain.paths)
      chain.close()
    }
    var undoFor: [Int: String] = [:]
    if undoDisks == .merge {
      for file in undo {
        let disk = try VirtualDisk.open(source + "/" + file, options: options)
        defer { disk.close() }
        guard let parent = disk.header?.parentUniqueID,
          let slot = chains.firstIndex(where: { ids[($0[0] as NSString).lastPathComponent] == parent })
        else {
          throw LabKitError(.invalidArgument, "the undo disk \(file) belongs to none of the disks in \(source)")
        }
        undoFor[slot] = file
      }
    }

    return try withVMLock(name) {
      try ensureNewVM(name)
      let target = vmFolder(name)
      let copies = Array(Set(chains.joined())).sorted().map { "\(target)/" + ($0 as NSString).lastPathComponent }
      let undoCopies = undoFor.values.map { "\(target)/\($0)" }
      var identities: [String: String] = [:]
      let imported = try journaled(
        "import-vm", vm: name, creates: copies + undoCopies + [target], deletes: [],
        files: {
          try FileManager.default.createDirectory(atPath: absolute(target), withIntermediateDirectories: true)
          for path in Set(chains.joined()).sorted() {
            try FileManager.default.copyItem(
              atPath: path, toPath: absolute("\(target)/" + (path as NSString).lastPathComponent))
          }
          for file in undoFor.values {
            try FileManager.default.copyItem(atPath: source + "/" + file, toPath: absolute("\(target)/\(file)"))
          }
          // Point every copied child at its copied parent, so nothing leads back to the source folder.
          for chain in chains {
            for (child, parent) in zip(chain, chain.dropFirst()) {
              let copy = try VirtualDisk.open(
                absolute("\(target)/" + (child as NSString).lastPathComponent), writable: true)
              defer { copy.close() }
              try? copy.setParent(absolute("\(target)/" + (parent as NSString).lastPathComponent))
            }
          }
          for file in undoFor.values {
            let undoCopy = absolute("\(target)/\(file)")
            try? VirtualDisk.open(undoCopy, writable: true).setParent(
              absolute(
                "\(target)/" + (chains[undoFor.first { $0.value == file }!.key][0] as NSString).lastPathComponent))
            try DiskChain.merge(child: undoCopy, options: OpenOptions(parentSearchRoot: absolute(target)))
          }
          for copy in copies {
            let disk = try VirtualDisk.open(absolute(copy))
            identities[copy] = disk.uniqueID.description
            disk.close()
          }
        },
        commit: { tx in
          var record = VMRecord(
            id: nil, name: name, hostKind: try storedHostKind(tx), state: .stopped, additions: additions,
            created: Date(),
            currentCheckpointID: nil, savedMemoryPath: nil)
          try tx.insert(&record)
          var rows: [String: Int64] = [:]
          for (slotIndex, chain) in chains.enumerated() {
            let local = chain.map { "\(target)/" + ($0 as NSString).lastPathComponent }
            for (depth, path) in local.enumerated().reversed() where rows[path] == nil {
              var disk = DiskRecord(
                id: nil, path: path, uniqueID: identities[path]!,
                parentID: depth + 1 < local.count ? rows[local[depth + 1]] : nil,
                vmID: record.id, slot: slotIndex + 1, role: depth == local.count - 1 ? .base : .imported,
                checkpointID: nil)
              try tx.insert(&disk)
              rows[path] = disk.id
            }
            try tx.insert(
              SlotRecord(vmID: record.id!, number: slotIndex + 1, baseID: rows[local.last!]!, leafID: rows[local[0]]!))
          }
          return try reportedVM(tx, record)
        })
      writeManifests(vms: [name])
      return imported
    }
  }

  /// Imports a folder written by `exportVM`: its `vm.json` names the disks in slot order, the
  /// checkpoints and the VM's settings, and the VM comes back as it was exported (stopped, or saved
  /// when it was saved). Every name in the manifest must be a file of the folder, and every file
  /// the disk it claims to be, before anything is copied.
  private func importExport(name: String, from source: String, additions: Bool) throws -> VirtualMachine {
    let manifestPath = source + "/" + Library.exportManifestName
    let manifest: VMManifest
    do {
      manifest = try Library.manifestDecoder.decode(
        VMManifest.self, from: try Data(contentsOf: URL(fileURLWithPath: manifestPath)))
    } catch {
      throw LabKitError(
        .invalidArgument,
        "\(manifestPath) is not a vmlab export description (\(describeFileError(error))); move it away to import the disks as plain chains"
      )
    }
    func bad(_ problem: String) -> LabKitError {
      LabKitError(.invalidArgument, "\(manifestPath) \(problem); export the VM again")
    }
    // Names from the file are names, never paths (DESIGN.md rule 4).
    func checkedFile(_ file: String) throws -> String {
      guard !file.isEmpty, !file.contains("/"), file != ".", file != "..", !file.hasPrefix(".") else {
        throw bad("names '\(file)', which is not a file name")
      }
      guard FileManager.default.fileExists(atPath: source + "/" + file) else {
        throw bad("names \(file), which is not in the folder")
      }
      return file
    }
    let disksByName = Dictionary(manifest.disks.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
    guard disksByName.count == manifest.disks.count else { throw bad("lists a disk twice") }
    let slots = manifest.slots.sorted { $0.number < $1.number }
    guard !slots.isEmpty, slots.map(\.number) == Array(1...slots.count) else {
      throw bad("does not number its disks 1 to \(max(1, slots.count))")
    }
    for disk in manifest.disks {
      _ = try checkedFile(disk.path)
      if let parent = disk.parent, disksByName[parent] == nil {
        throw bad("gives \(disk.path) a parent it does not list")
      }
    }
    for reference in slots.flatMap({ [$0.base, $0.leaf] }) + manifest.checkpoints.flatMap(\.frozenDisks)
    where disksByName[reference] == nil {
      throw bad("names the disk \(reference) but does not list it")
    }
    let stamps = Set(manifest.checkpoints.map(\.stamp))
    for checkpoint in manifest.checkpoints {
      try NameRules.validateCheckpoint(checkpoint.name)
      guard checkpoint.frozenDisks.count == slots.count else {
        throw bad(
          "gives checkpoint '\(checkpoint.name)' \(checkpoint.frozenDisks.count) disks for \(slots.count) slots")
      }
      if let parent = checkpoint.parentStamp, !stamps.contains(parent) {
        throw bad("gives checkpoint '\(checkpoint.name)' a parent it does not list")
      }
      _ = try checkpoint.memoryPath.map(checkedFile)
    }
    let savedState = manifest.state == .saved ? try manifest.savedMemoryPath.map(checkedFile) : nil
    // Each leaf's chain opens inside the folder and is made of the disks the manifest says.
    var identities: [String: String] = [:]
    for disk in manifest.disks {
      let opened = try VirtualDisk.open(source + "/" + disk.path)
      identities[disk.path] = opened.uniqueID.description
      let parentID = opened.type == .differencing ? opened.header?.parentUniqueID.description : nil
      opened.close()
      if !disk.uniqueID.isEmpty && disk.uniqueID != identities[disk.path] {
        throw bad("lists \(disk.path) with unique id \(disk.uniqueID), but the file has \(identities[disk.path]!)")
      }
      if (disk.parent == nil) != (parentID == nil) {
        throw bad(
          disk.parent == nil
            ? "lists \(disk.path) without a parent, but it is a differencing disk"
            : "gives \(disk.path) a parent, but it is not a differencing disk")
      }
    }
    for disk in manifest.disks {
      if let parent = disk.parent, let parentID = identities[parent] {
        let child = try VirtualDisk.open(source + "/" + disk.path)
        let expected = child.header?.parentUniqueID.description
        child.close()
        if expected != parentID {
          throw bad("gives \(disk.path) the parent \(parent), which is not the disk it was made over")
        }
      }
    }

    return try withVMLock(name) {
      try ensureNewVM(name)
      let target = vmFolder(name)
      let files =
        manifest.disks.map(\.path) + manifest.checkpoints.compactMap(\.memoryPath)
        + (savedState.map { [$0] } ?? [])
      let copies = files.map { "\(target)/\($0)" }
      let imported = try journaled(
        "import-vm", vm: name, creates: copies + [target], deletes: [],
        files: {
          try FileManager.default.createDirectory(atPath: absolute(target), withIntermediateDirectories: true)
          for file in files {
            do {
              try FileManager.default.copyItem(atPath: source + "/" + file, toPath: absolute("\(target)/\(file)"))
            } catch {
              throw LabKitError(.failed, "cannot copy \(source)/\(file) into the library: \(describeFileError(error))")
            }
          }
          for disk in manifest.disks {
            guard let parent = disk.parent else { continue }
            let copy = try VirtualDisk.open(absolute("\(target)/\(disk.path)"), writable: true)
            defer { copy.close() }
            try copy.setParent(absolute("\(target)/\(parent)"))
          }
        },
        commit: { tx in
          var vm = VMRecord(
            id: nil, name: name, hostKind: manifest.hostKind, state: savedState == nil ? .stopped : .saved,
            additions: manifest.additions || additions, created: manifest.created, currentCheckpointID: nil,
            savedMemoryPath: savedState.map { "\(target)/\($0)" }, host: manifest.host ?? HostRegistry.defaultName)
          if let hardware = manifest.hardware { vm.hardware = hardware }
          try tx.insert(&vm)
          // Disks, parents first.
          var ids: [String: Int64] = [:]
          var pending = manifest.disks
          while !pending.isEmpty {
            let ready = pending.filter { disk in disk.parent.map { ids[$0] != nil } ?? true }
            guard !ready.isEmpty else { throw bad("has a loop of parents") }
            for disk in ready {
              pending.removeAll { $0.path == disk.path }
              var record = DiskRecord(
                id: nil, path: "\(target)/\(disk.path)", uniqueID: identities[disk.path]!,
                parentID: disk.parent.flatMap { ids[$0] }, vmID: vm.id, slot: disk.slot,
                // A template comes as the VM's own disk: the clones of this library do not share it.
                role: disk.role == .template ? .imported : disk.role, checkpointID: nil)
              try tx.insert(&record)
              ids[disk.path] = record.id
            }
          }
          for slot in slots {
            try tx.insert(
              SlotRecord(vmID: vm.id!, number: slot.number, baseID: ids[slot.base]!, leafID: ids[slot.leaf]!))
          }
          var checkpointIDs: [String: Int64] = [:]
          var pendingCheckpoints = manifest.checkpoints
          while !pendingCheckpoints.isEmpty {
            let ready = pendingCheckpoints.filter { $0.parentStamp.map { checkpointIDs[$0] != nil } ?? true }
            guard !ready.isEmpty else { throw bad("has a loop of checkpoints") }
            for checkpoint in ready {
              pendingCheckpoints.removeAll { $0.stamp == checkpoint.stamp }
              var record = CheckpointRecord(
                id: nil, vmID: vm.id!, name: checkpoint.name, description: checkpoint.description,
                created: checkpoint.created, stamp: checkpoint.stamp,
                parentID: checkpoint.parentStamp.flatMap { checkpointIDs[$0] },
                memoryPath: checkpoint.memoryPath.map { "\(target)/\($0)" })
              try tx.insert(&record)
              checkpointIDs[checkpoint.stamp] = record.id
              for (index, state) in checkpoint.frozenDisks.enumerated() {
                try tx.insert(
                  CheckpointDiskRecord(checkpointID: record.id!, slot: slots[index].number, frozenDiskID: ids[state]!))
              }
            }
          }
          for disk in manifest.disks {
            if let stamp = disk.checkpointStamp, let checkpoint = checkpointIDs[stamp] {
              try tx.setCheckpoint(ofDisk: ids[disk.path]!, to: checkpoint)
            }
          }
          vm.currentCheckpointID = manifest.currentCheckpointStamp.flatMap { checkpointIDs[$0] }
          try tx.update(vm)
          return try reportedVM(tx, vm)
        })
      writeManifests(vms: [name])
      return imported
    }
  }
}
