import Foundation
import GRDB
import VHD

/// What `library repair` rebuilt.
public struct RepairReport: Codable, Equatable, Sendable {
  public var vms: [String]
  public var checkpoints: Int
  public var labs: [String]
  /// Findings: files it could not place, VMs rebuilt without their manifest, and so on.
  public var notes: [String]
}

extension Library {
  /// Rebuilds the catalog from the files alone: each VM folder's disks (bases by name, differencing
  /// disks linked by their parent's unique id), its checkpoints (from `vm.json` when present, else by
  /// parsing the file names back), the templates linked clones use, and the labs (`labs.json`).
  @discardableResult
  public func repair() throws -> RepairReport {
    var report = RepairReport(vms: [], checkpoints: 0, labs: [], notes: [])
    let folders = ((try? FileManager.default.contentsOfDirectory(atPath: absolute("vms"))) ?? []).sorted()
    let decoder = Library.manifestDecoder
    try catalog.write { db in
      try db.execute(sql: "PRAGMA defer_foreign_keys = ON")
      for table in ["labMember", "lab", "checkpointDisk", "checkpoint", "slot", "disk", "vm", "journal"] {
        try db.execute(sql: "DELETE FROM \(table)")
      }
    }
    for folder in folders {
      let path = absolute("vms/" + folder)
      var isFolder: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else { continue }
      do {
        try NameRules.validate(folder, as: "VM")
        let manifest = (try? Data(contentsOf: URL(fileURLWithPath: path + "/vm.json")))
          .flatMap { try? decoder.decode(VMManifest.self, from: $0) }
        let rebuilt = try manifest.map { try rebuild(from: $0, folder: folder) } ?? rebuildFromFiles(folder: folder)
        report.vms.append(folder)
        report.checkpoints += rebuilt.checkpoints
        report.notes += rebuilt.notes
      } catch {
        report.notes.append("VM folder \(path) was not rebuilt: \(error)")
      }
    }
    if let data = try? Data(contentsOf: URL(fileURLWithPath: absolute("labs.json"))),
      let labs = try? decoder.decode(LabsManifest.self, from: data)
    {
      for lab in labs.labs {
        let members = lab.vms.filter { report.vms.contains($0) }
        if let made = try? createLab(name: lab.name, vms: members) { report.labs.append(made.name) }
      }
    }
    for vm in report.vms { try? writeManifest(vm: vm) }
    return report
  }

  /// Reads a file's identity: unique id and (for differencing disks) the parent's.
  private func identity(_ relativePath: String) throws -> (id: String, parent: String?, type: DiskType) {
    let disk = try VirtualDisk.open(absolute(relativePath), options: OpenOptions(verifyChecksums: false))
    defer { disk.close() }
    return (
      disk.uniqueID.description, disk.type == .differencing ? disk.header?.parentUniqueID.description : nil, disk.type
    )
  }

  private func rebuild(from manifest: VMManifest, folder: String) throws -> (checkpoints: Int, notes: [String]) {
    var notes: [String] = []
    return try catalog.write { db in
      var vm = VMRecord(
        id: nil, name: manifest.name, hostKind: manifest.hostKind, state: .stopped, additions: manifest.additions,
        created: manifest.created, currentCheckpointID: nil, savedStatePath: nil)
      if manifest.state == .saved, let saved = manifest.savedStatePath,
        FileManager.default.fileExists(atPath: absolute(saved))
      {
        vm.state = .saved
        vm.savedStatePath = saved
      }
      try vm.insert(db)
      // Disks, parents first.
      var ids: [String: Int64] = [:]
      var pending = manifest.disks
      while !pending.isEmpty {
        let listed = Set(manifest.disks.map(\.path))
        let ready = pending.filter { disk in disk.parent.map { ids[$0] != nil || !listed.contains($0) } ?? true }
        guard !ready.isEmpty else { throw LabKitError(.inconsistent, "vm.json of '\(manifest.name)' has a disk loop") }
        for disk in ready {
          pending.removeAll { $0.path == disk.path }
          guard FileManager.default.fileExists(atPath: absolute(disk.path)) else {
            notes.append("\(absolute(disk.path)) is listed in \(manifest.name)/vm.json but missing")
            continue
          }
          let identity = try identity(disk.path)
          if let existing = try DiskRecord.filter(Column("path") == disk.path).fetchOne(db) {
            ids[disk.path] = existing.id  // a template shared with another VM
            continue
          }
          var record = DiskRecord(
            id: nil, path: disk.path, uniqueID: identity.id, parentID: disk.parent.flatMap { ids[$0] },
            vmID: disk.role == .template ? nil : vm.id, slot: disk.slot, role: disk.role, checkpointID: nil,
            sourceUniqueID: disk.sourceUniqueID)
          try record.insert(db)
          ids[disk.path] = record.id
        }
      }
      for slot in manifest.slots {
        guard let base = ids[slot.base], let leaf = ids[slot.leaf] else {
          throw LabKitError(.inconsistent, "VM '\(manifest.name)' disk \(slot.number) lost its base or leaf file")
        }
        try SlotRecord(vmID: vm.id!, number: slot.number, baseID: base, leafID: leaf).insert(db)
      }
      var checkpointIDs: [String: Int64] = [:]
      for checkpoint in manifest.checkpoints {
        let states = checkpoint.states.compactMap { ids[$0] }
        guard states.count == manifest.slots.count else {
          notes.append("checkpoint '\(checkpoint.name)' of '\(manifest.name)' lost a disk and was dropped")
          continue
        }
        var record = CheckpointRecord(
          id: nil, vmID: vm.id!, name: checkpoint.name, description: checkpoint.description,
          created: checkpoint.created,
          stamp: checkpoint.stamp, parentID: checkpoint.parentStamp.flatMap { checkpointIDs[$0] },
          runningStatePath: checkpoint.runningStatePath)
        try record.insert(db)
        checkpointIDs[checkpoint.stamp] = record.id
        for (index, state) in states.enumerated() {
          try CheckpointDiskRecord(checkpointID: record.id!, slot: manifest.slots[index].number, stateID: state).insert(
            db)
        }
      }
      for disk in manifest.disks {
        if let stamp = disk.checkpointStamp, let id = ids[disk.path], let checkpoint = checkpointIDs[stamp] {
          try db.execute(sql: "UPDATE disk SET checkpointID = ? WHERE id = ?", arguments: [checkpoint, id])
        }
      }
      vm.currentCheckpointID = manifest.currentCheckpointStamp.flatMap { checkpointIDs[$0] }
      try vm.update(db)
      return (checkpointIDs.count, notes)
    }
  }

  /// Without a manifest: bases by name, differencing disks by parent id, checkpoints by file name.
  private func rebuildFromFiles(folder: String) throws -> (checkpoints: Int, notes: [String]) {
    var notes = [
      "VM '\(folder)' had no vm.json: rebuilt from its file names; checkpoints are named by their time stamps"
    ]
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: absolute("vms/" + folder))) ?? [])
      .filter { $0.hasSuffix(".vhd") }.sorted()
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
      let identity = try identity(path)
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
      if let identity = try? identity("templates/" + name) { templateIDs[identity.id] = "templates/" + name }
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
    guard !bases.isEmpty else { throw LabKitError(.inconsistent, "no base disk named \(folder)-diskN.vhd") }
    return try catalog.write { db in
      var vm = VMRecord(
        id: nil, name: folder, hostKind: try storedHostKind(db), state: .stopped, additions: false, created: Date(),
        currentCheckpointID: nil, savedStatePath: nil)
      try vm.insert(db)
      var ids: [String: Int64] = [:]  // unique id → disk row
      var pathsByID: [String: Found] = Dictionary(uniqueKeysWithValues: found.map { ($0.id, $0) })
      func insert(_ disk: Found, slot: Int?, role: DiskRole) throws -> Int64 {
        if let id = ids[disk.id] { return id }
        var parentID: Int64? = nil
        if let parent = disk.parent {
          if let template = templateIDs[parent] {
            if let existing = try DiskRecord.filter(Column("path") == template).fetchOne(db) {
              parentID = existing.id
            } else {
              var record = DiskRecord(
                id: nil, path: template, uniqueID: parent, parentID: nil, vmID: nil, slot: nil, role: .template,
                checkpointID: nil)
              try record.insert(db)
              parentID = record.id
            }
          } else if let parentDisk = pathsByID[parent] {
            parentID = try insert(parentDisk, slot: slot, role: .working)
          }
        }
        var record = DiskRecord(
          id: nil, path: disk.path, uniqueID: disk.id, parentID: parentID, vmID: vm.id, slot: slot, role: role,
          checkpointID: nil)
        try record.insert(db)
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
        _ = try insert(next, slot: slot, role: .working)
      }
      for orphan in remaining { notes.append("\(absolute(orphan.path)) has no parent in the folder and was left out") }
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
          runningStatePath: nil)
        try record.insert(db)
        count += 1
        for (index, file) in files.enumerated() {
          let state = ids[file.parent!]!
          try CheckpointDiskRecord(checkpointID: record.id!, slot: bases[index].slot, stateID: state).insert(db)
          checkpointsByState[state] = record.id
          try db.execute(
            sql: "UPDATE disk SET role = 'checkpoint', checkpointID = ? WHERE id = ?",
            arguments: [record.id, ids[file.id]])
        }
      }
      // Current leaves: per slot, the childless disk written most recently.
      let parentIDs = Set(try Int64.fetchAll(db, sql: "SELECT parentID FROM disk WHERE parentID IS NOT NULL"))
      var leaves: [Int: Found] = [:]
      var strandedByStamp: [String: [Found]] = [:]
      for (slot, base) in bases {
        let candidates = found.filter { slotOf[$0.id] == slot && ids[$0.id] != nil && !parentIDs.contains(ids[$0.id]!) }
        let leaf = candidates.max { $0.modified < $1.modified } ?? base
        leaves[slot] = leaf
        try SlotRecord(vmID: vm.id!, number: slot, baseID: ids[base.id]!, leafID: ids[leaf.id]!).insert(db)
        // Any other childless disk is a checkpoint's frozen state whose own files a restore deleted
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
          parentID: nil, runningStatePath: nil)
        try record.insert(db)
        count += 1
        for (index, file) in files.enumerated() {
          try CheckpointDiskRecord(checkpointID: record.id!, slot: bases[index].slot, stateID: ids[file.id]!).insert(db)
          checkpointsByState[ids[file.id]!] = record.id
        }
      }
      // The current checkpoint: the nearest below the first slot's leaf.
      var cursor: Int64? = leaves[bases[0].slot].flatMap { ids[$0.id] }
      while let id = cursor, vm.currentCheckpointID == nil {
        vm.currentCheckpointID = checkpointsByState[id]
        cursor = try DiskRecord.fetchOne(db, key: id)?.parentID
      }
      // Each checkpoint's parent: the nearest checkpoint below its state.
      for checkpoint in try CheckpointRecord.filter(Column("vmID") == vm.id!).fetchAll(db) {
        let state = try CheckpointDiskRecord.filter(Column("checkpointID") == checkpoint.id!).order(Column("slot"))
          .fetchOne(db)!
        var cursor = try DiskRecord.fetchOne(db, key: state.stateID)?.parentID
        while let id = cursor {
          if let parent = checkpointsByState[id] {
            try db.execute(sql: "UPDATE checkpoint SET parentID = ? WHERE id = ?", arguments: [parent, checkpoint.id])
            break
          }
          cursor = try DiskRecord.fetchOne(db, key: id)?.parentID
        }
      }
      try vm.update(db)
      return (count, notes)
    }
  }
}
