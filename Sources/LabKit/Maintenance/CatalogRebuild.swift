import Foundation
import VHD

/// Fills an empty catalog from a library's files: one VM folder at a time, each in its own
/// transaction, so a folder that cannot be read is reported and skipped without touching the others.
struct CatalogRebuild {
  let root: String
  let catalog: Catalog
  /// The old catalog's settings, when it could still be read.
  let settings: [String: String]

  private var defaultHostKind: HostKind {
    settings["hostKind"].flatMap(HostKind.init(rawValue:)) ?? .virtualServer
  }

  func absolute(_ relative: String) -> String { root + "/" + relative }

  func run() throws -> RepairReport {
    var report = RepairReport(vms: [], checkpoints: 0, labs: [], notes: [], problems: [], previousCatalog: nil)
    try catalog.write { tx in
      for (key, value) in settings { try tx.setSetting(key, to: value) }
    }
    let folders: [String]
    do {
      folders = try FileManager.default.contentsOfDirectory(atPath: absolute("vms")).sorted()
    } catch {
      throw LabKitError(
        .failed, "cannot list the VM folders in \(absolute("vms")): \(error.localizedDescription); nothing was changed")
    }
    for folder in folders {
      let path = absolute("vms/" + folder)
      var isFolder: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else {
        report.problems.append("\(path) is not a folder, so not a VM; it was left as it is")
        continue
      }
      do {
        try NameRules.validate(folder, as: "VM")
        let outcome = try rebuildVM(folder: folder)
        report.vms.append(folder)
        report.checkpoints += outcome.checkpoints
        report.notes += outcome.notes
        report.problems += outcome.problems
      } catch {
        report.problems.append("VM folder \(path) was not rebuilt (\(error)); its files were left as they are")
      }
    }
    let labs = try rebuildLabs(vms: report.vms)
    report.labs = labs.names
    report.problems += labs.problems
    return report
  }

  struct Outcome {
    var checkpoints = 0
    var notes: [String] = []
    var problems: [String] = []
  }

  /// From the manifest when there is a usable one, else from the file names.
  private func rebuildVM(folder: String) throws -> Outcome {
    let manifestPath = absolute("vms/\(folder)/vm.json")
    guard FileManager.default.fileExists(atPath: manifestPath) else { return try rebuildFromFiles(folder: folder) }
    do {
      let data = try Data(contentsOf: URL(fileURLWithPath: manifestPath))
      let manifest = try Library.manifestDecoder.decode(VMManifest.self, from: data)
      guard manifest.name.lowercased() == folder.lowercased() else {
        throw LabKitError(.inconsistent, "it names the VM '\(manifest.name)'")
      }
      return try rebuild(from: manifest)
    } catch {
      var outcome = try rebuildFromFiles(folder: folder)
      outcome.notes.insert(
        "\(manifestPath) could not be used (\(error)); VM '\(folder)' was rebuilt from its file names", at: 0)
      return outcome
    }
  }

  /// What a file says of itself, or why it cannot be read.
  private func identity(_ relativePath: String) -> Result<(id: String, parent: String?, type: DiskType), Error> {
    Result {
      let disk = try VirtualDisk.open(absolute(relativePath), options: OpenOptions(verifyChecksums: false))
      defer { disk.close() }
      return (
        disk.uniqueID.description, disk.type == .differencing ? disk.header?.parentUniqueID.description : nil,
        disk.type
      )
    }
  }

  /// The manifest is the record: every disk, slot and checkpoint it names comes back, and a file
  /// that is missing or unreadable keeps its row (with the unique id the manifest recorded), so the
  /// VM stays whole in the catalog, `library check` names the damage, and a restore can replace a
  /// damaged leaf. Only the problem list says what is wrong.
  private func rebuild(from manifest: VMManifest) throws -> Outcome {
    var outcome = Outcome()
    let listed = Dictionary(manifest.disks.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
    // Parents before children; a parent the manifest does not list (a template it names by path
    // only) counts as placed.
    var ordered: [VMManifest.Disk] = []
    var placed = Set<String>()
    var pending = manifest.disks
    while !pending.isEmpty {
      let ready = pending.filter { disk in disk.parent.map { placed.contains($0) || listed[$0] == nil } ?? true }
      guard !ready.isEmpty else {
        throw LabKitError(
          .inconsistent,
          "its disks name each other as parents in a loop (\(pending.map(\.path).joined(separator: ", ")))")
      }
      ordered += ready
      placed.formUnion(ready.map(\.path))
      pending.removeAll { placed.contains($0.path) }
    }
    return try catalog.write { tx in
      var vm = VMRecord(
        id: nil, name: manifest.name, hostKind: manifest.hostKind, state: manifest.state, additions: manifest.additions,
        created: manifest.created, currentCheckpointID: nil, savedMemoryPath: nil,
        host: manifest.host ?? HostRegistry.defaultName)
      if let hardware = manifest.hardware { vm.hardware = hardware }
      if manifest.state == .saved {
        if let saved = manifest.savedMemoryPath, FileManager.default.fileExists(atPath: absolute(saved)) {
          vm.savedMemoryPath = saved
        } else {
          vm.state = .stopped
          outcome.problems.append(
            "VM '\(manifest.name)' was saved, but its saved state \(manifest.savedMemoryPath.map(absolute) ?? "(none)") is missing; it is off now"
          )
        }
      }
      try tx.insert(&vm)
      var ids: [String: Int64] = [:]
      for disk in ordered {
        if let existing = try tx.disk(atPath: disk.path) {
          ids[disk.path] = existing.id  // a template shared with another VM
          continue
        }
        var uniqueID = disk.uniqueID
        let file = absolute(disk.path)
        if !FileManager.default.fileExists(atPath: file) {
          outcome.problems.append(
            "VM '\(manifest.name)': \(file) is missing (vm.json lists it); the catalog keeps its place")
        } else {
          switch identity(disk.path) {
          case .success(let found):
            if found.id != disk.uniqueID {
              outcome.notes.append(
                "\(file) has the unique id \(found.id), vm.json recorded \(disk.uniqueID); the file's is kept")
            }
            uniqueID = found.id
          case .failure(let error):
            outcome.problems.append(
              "VM '\(manifest.name)': \(file) cannot be read (\(error)); the catalog keeps its place, and restoring a checkpoint replaces a damaged leaf"
            )
          }
        }
        var record = DiskRecord(
          id: nil, path: disk.path, uniqueID: uniqueID, parentID: disk.parent.flatMap { ids[$0] },
          vmID: disk.role == .template ? nil : vm.id, slot: disk.slot, role: disk.role, checkpointID: nil,
          sourceUniqueID: disk.sourceUniqueID)
        if disk.parent != nil && record.parentID == nil {
          outcome.problems.append(
            "VM '\(manifest.name)': the parent \(disk.parent.map(absolute) ?? "") of \(file) is not in the library")
        }
        try tx.insert(&record)
        ids[disk.path] = record.id
      }
      for slot in manifest.slots {
        guard let base = ids[slot.base], let leaf = ids[slot.leaf] else {
          throw LabKitError(.inconsistent, "its disk \(slot.number) names a base or leaf that vm.json does not list")
        }
        try tx.insert(SlotRecord(vmID: vm.id!, number: slot.number, baseID: base, leafID: leaf))
      }
      var checkpointIDs: [String: Int64] = [:]
      for checkpoint in manifest.checkpoints {
        let states = checkpoint.frozenDisks.compactMap { ids[$0] }
        guard states.count == manifest.slots.count else {
          outcome.problems.append(
            "checkpoint '\(checkpoint.name)' of VM '\(manifest.name)' names disks vm.json does not list; it was left out"
          )
          continue
        }
        var record = CheckpointRecord(
          id: nil, vmID: vm.id!, name: checkpoint.name, description: checkpoint.description,
          created: checkpoint.created,
          stamp: checkpoint.stamp, parentID: checkpoint.parentStamp.flatMap { checkpointIDs[$0] },
          memoryPath: checkpoint.memoryPath)
        try tx.insert(&record)
        checkpointIDs[checkpoint.stamp] = record.id
        for (index, state) in states.enumerated() {
          try tx.insert(
            CheckpointDiskRecord(checkpointID: record.id!, slot: manifest.slots[index].number, frozenDiskID: state))
        }
      }
      for disk in manifest.disks {
        if let stamp = disk.checkpointStamp, let id = ids[disk.path], let checkpoint = checkpointIDs[stamp] {
          try tx.setCheckpoint(ofDisk: id, to: checkpoint)
        }
      }
      vm.currentCheckpointID = manifest.currentCheckpointStamp.flatMap { checkpointIDs[$0] }
      try tx.update(vm)
      outcome.checkpoints = checkpointIDs.count
      return outcome
    }
  }

  /// The labs of `labs.json`, with the members that were rebuilt; a member that was not is named.
  private func rebuildLabs(vms: [String]) throws -> (names: [String], problems: [String]) {
    let path = absolute("labs.json")
    guard FileManager.default.fileExists(atPath: path) else { return ([], []) }
    let labs: LabsManifest
    do {
      labs = try Library.manifestDecoder.decode(LabsManifest.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    } catch {
      return (
        [],
        ["\(path) could not be read (\(error)); the labs were not rebuilt (create them again with `vmlab lab create`)"]
      )
    }
    var names: [String] = []
    var problems: [String] = []
    let known = Dictionary(vms.map { ($0.lowercased(), $0) }, uniquingKeysWith: { first, _ in first })
    try catalog.write { tx in
      for lab in labs.labs {
        guard (try? NameRules.validate(lab.name, as: "lab")) != nil else {
          problems.append("\(path) names a lab '\(lab.name)' that is not a valid name; it was left out")
          continue
        }
        var record = LabRecord(id: nil, name: lab.name, created: lab.created)
        try tx.insert(&record)
        names.append(lab.name)
        for (position, member) in lab.vms.enumerated() {
          guard known[member.lowercased()] != nil,
            let vmID = try tx.vm(named: member)?.id
          else {
            problems.append("lab '\(lab.name)' lost its member '\(member)', whose VM folder was not rebuilt")
            continue
          }
          try tx.addMember(vm: vmID, toLab: record.id!, position: position)
        }
      }
    }
    return (names, problems)
  }

  /// Without a manifest: bases by name, differencing disks by parent id, checkpoints by file name.
  private func rebuildFromFiles(folder: String) throws -> Outcome {
    var notes = [
      "VM '\(folder)' had no vm.json: rebuilt from its file names; checkpoints are named by their time stamps"
    ]
    var problems: [String] = []
    let names: [String]
    do {
      names = try FileManager.default.contentsOfDirectory(atPath: absolute("vms/" + folder))
        .filter { $0.hasSuffix(".vhd") }.sorted()
    } catch {
      throw LabKitError(.failed, "cannot list \(absolute("vms/" + folder)): \(error.localizedDescription)")
    }
    struct Found {
      var path: String
      var id: String
      var parent: String?
      var type: DiskType
      var modified: Date
    }
    var found: [Found] = []
    for name in names {
      let path = "vms/\(folder)/\(name)"
      let identity: (id: String, parent: String?, type: DiskType)
      switch self.identity(path) {
      case .success(let found): identity = found
      case .failure(let error):
        problems.append("VM '\(folder)': \(absolute(path)) cannot be read (\(error)); it was left out")
        continue
      }
      let modified =
        (try? FileManager.default.attributesOfItem(atPath: absolute(path))[.modificationDate] as? Date)
        ?? Date.distantPast
      found.append(Found(path: path, id: identity.id, parent: identity.parent, type: identity.type, modified: modified))
    }
    let templates = ((try? FileManager.default.contentsOfDirectory(atPath: absolute("templates"))) ?? []).filter {
      $0.hasSuffix(".vhd")
    }
    var templateIDs: [String: String] = [:]
    for name in templates {
      if case .success(let identity) = identity("templates/" + name) { templateIDs[identity.id] = "templates/" + name }
    }
    // Slot bases: NAME-diskN.vhd.
    var bases: [(slot: Int, disk: Found)] = []
    for disk in found {
      let stem = ((disk.path as NSString).lastPathComponent as NSString).deletingPathExtension
      if stem.hasPrefix(folder + "-disk"), let slot = Int(stem.dropFirst(folder.count + 5)) {
        bases.append((slot, disk))
      }
    }
    bases.sort { $0.slot < $1.slot }
    guard !bases.isEmpty else {
      throw LabKitError(.inconsistent, "it has no vm.json and no readable base disk named \(folder)-diskN.vhd")
    }
    return try catalog.write { tx in
      var vm = VMRecord(
        id: nil, name: folder, hostKind: defaultHostKind, state: .stopped, additions: false, created: Date(),
        currentCheckpointID: nil, savedMemoryPath: nil)
      try tx.insert(&vm)
      var ids: [String: Int64] = [:]  // unique id → disk row
      var pathsByID: [String: Found] = Dictionary(uniqueKeysWithValues: found.map { ($0.id, $0) })
      func insert(_ disk: Found, slot: Int?, role: DiskRole) throws -> Int64 {
        if let id = ids[disk.id] { return id }
        var parentID: Int64? = nil
        if let parent = disk.parent {
          if let template = templateIDs[parent] {
            if let existing = try tx.disk(atPath: template) {
              parentID = existing.id
            } else {
              var record = DiskRecord(
                id: nil, path: template, uniqueID: parent, parentID: nil, vmID: nil, slot: nil, role: .template,
                checkpointID: nil)
              try tx.insert(&record)
              parentID = record.id
            }
          } else if let parentDisk = pathsByID[parent] {
            parentID = try insert(parentDisk, slot: slot, role: .layer)
          }
        }
        var record = DiskRecord(
          id: nil, path: disk.path, uniqueID: disk.id, parentID: parentID, vmID: vm.id, slot: slot, role: role,
          checkpointID: nil)
        try tx.insert(&record)
        ids[disk.id] = record.id
        return record.id!
      }
      for (slot, disk) in bases {
        _ = try insert(disk, slot: slot, role: disk.parent == nil ? .base : .clone)
      }
      // Every differencing disk, slot taken from its base.
      var slotOf: [String: Int] = Dictionary(uniqueKeysWithValues: bases.map { ($0.disk.id, $0.slot) })
      var remaining = found.filter { ids[$0.id] == nil }
      while let next = remaining.first(where: { $0.parent.map { ids[$0] != nil } ?? false }) {
        remaining.removeAll { $0.id == next.id }
        let slot = next.parent.flatMap { slotOf[$0] }
        slotOf[next.id] = slot
        _ = try insert(next, slot: slot, role: .layer)
      }
      for orphan in remaining {
        problems.append("\(absolute(orphan.path)) has no parent in the folder and was left out")
      }
      pathsByID = [:]
      // Checkpoints: a group of files with one stamp whose parents no earlier group shares.
      let baseIDs = Set(bases.map(\.disk.id))
      let diffs = found.filter { ids[$0.id] != nil && $0.parent != nil && !baseIDs.contains($0.id) }
      var groups: [String: [Found]] = [:]
      for disk in diffs {
        if let parsed = CheckpointFileName(parsing: (disk.path as NSString).lastPathComponent) {
          groups[parsed.stamp, default: []].append(disk)
        }
      }
      var seenParents: Set<[String]> = []
      var checkpointsByState: [Int64: Int64] = [:]
      var count = 0
      for stamp in groups.keys.sorted() {
        let files = groups[stamp]!.sorted { (slotOf[$0.id] ?? 0) < (slotOf[$1.id] ?? 0) }
        let parents = files.compactMap(\.parent)
        guard files.count == bases.count, seenParents.insert(parents).inserted else { continue }
        var record = CheckpointRecord(
          id: nil, vmID: vm.id!, name: "checkpoint \(stamp)", description: "recovered from file names",
          created: CheckpointFileName.date(fromStamp: stamp) ?? Date(), stamp: stamp, parentID: nil,
          memoryPath: nil)
        try tx.insert(&record)
        count += 1
        for (index, file) in files.enumerated() {
          let state = ids[file.parent!]!
          try tx.insert(CheckpointDiskRecord(checkpointID: record.id!, slot: bases[index].slot, frozenDiskID: state))
          checkpointsByState[state] = record.id
          try tx.markLayer(ids[file.id]!, madeBy: record.id!)
        }
      }
      // Current leaves: per slot, the childless disk written most recently.
      let parentIDs = try tx.parentDiskIDs()
      var leaves: [Int: Found] = [:]
      var strandedByStamp: [String: [Found]] = [:]
      for (slot, base) in bases {
        let candidates = found.filter { slotOf[$0.id] == slot && ids[$0.id] != nil && !parentIDs.contains(ids[$0.id]!) }
        let leaf = candidates.max { $0.modified < $1.modified } ?? base
        leaves[slot] = leaf
        try tx.insert(SlotRecord(vmID: vm.id!, number: slot, baseID: ids[base.id]!, leafID: ids[leaf.id]!))
        // Any other childless disk is a checkpoint's frozen disk whose own files a restore deleted
        // (a disk that only the current line needed is deleted with it): its checkpoint is found
        // from the state alone.
        for disk in candidates where disk.id != leaf.id && checkpointsByState[ids[disk.id]!] == nil {
          if let parsed = CheckpointFileName(parsing: (disk.path as NSString).lastPathComponent) {
            strandedByStamp[parsed.stamp, default: []].append(disk)
          }
        }
      }
      var stamps = Set(groups.keys)
      for (_, files) in strandedByStamp.sorted(by: { $0.key < $1.key }) where files.count == bases.count {
        let files = files.sorted { (slotOf[$0.id] ?? 0) < (slotOf[$1.id] ?? 0) }
        // Taken when its state stopped being written; its own stamp went with its files.
        var created = files.map(\.modified).max() ?? Date()
        var stamp = CheckpointFileName.stamp(for: created)
        while stamps.contains(stamp) {
          created = created.addingTimeInterval(0.001)
          stamp = CheckpointFileName.stamp(for: created)
        }
        stamps.insert(stamp)
        var record = CheckpointRecord(
          id: nil, vmID: vm.id!, name: "checkpoint \(stamp)",
          description: "recovered from its frozen disks (its own files were gone)", created: created, stamp: stamp,
          parentID: nil, memoryPath: nil)
        try tx.insert(&record)
        count += 1
        for (index, file) in files.enumerated() {
          try tx.insert(
            CheckpointDiskRecord(checkpointID: record.id!, slot: bases[index].slot, frozenDiskID: ids[file.id]!))
          checkpointsByState[ids[file.id]!] = record.id
        }
      }
      // The current checkpoint: the nearest below the first slot's leaf.
      var cursor: Int64? = leaves[bases[0].slot].flatMap { ids[$0.id] }
      while let id = cursor, vm.currentCheckpointID == nil {
        vm.currentCheckpointID = checkpointsByState[id]
        cursor = try tx.disk(id: id)?.parentID
      }
      // Each checkpoint's parent: the nearest checkpoint below its state.
      for checkpoint in try tx.checkpoints(ofVM: vm.id!) {
        guard let state = try tx.frozenDisks(ofCheckpoint: checkpoint.id!).first else { continue }
        var cursor = try tx.disk(id: state.frozenDiskID)?.parentID
        while let id = cursor {
          if let parent = checkpointsByState[id] {
            try tx.setParent(ofCheckpoint: checkpoint.id!, to: parent)
            break
          }
          cursor = try tx.disk(id: id)?.parentID
        }
      }
      try tx.update(vm)
      return Outcome(checkpoints: count, notes: notes, problems: problems)
    }
  }
}
