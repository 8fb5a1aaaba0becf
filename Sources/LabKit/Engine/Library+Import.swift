import Foundation
import GRDB
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
    let names = try FileManager.default.contentsOfDirectory(atPath: source).sorted()
    let undo = names.filter { $0.lowercased().hasSuffix(".vud") }
    if !undo.isEmpty && undoDisks == nil {
      throw LabKitError(
        .invalidArgument,
        "\(source) has Virtual Server undo disks (\(undo.joined(separator: ", "))): choose to discard them (their changes are dropped) or to merge them into their disks first"
      )
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
      let chain = try DiskChain.open(source + "/" + leaf, options: options)
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
      return try journaled(
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
        commit: { db in
          var record = VMRecord(
            id: nil, name: name, hostKind: try storedHostKind(db), state: .stopped, additions: additions,
            created: Date(),
            currentCheckpointID: nil, savedStatePath: nil)
          try record.insert(db)
          var rows: [String: Int64] = [:]
          for (slotIndex, chain) in chains.enumerated() {
            let local = chain.map { "\(target)/" + ($0 as NSString).lastPathComponent }
            for (depth, path) in local.enumerated().reversed() where rows[path] == nil {
              var disk = DiskRecord(
                id: nil, path: path, uniqueID: identities[path]!,
                parentID: depth + 1 < local.count ? rows[local[depth + 1]] : nil,
                vmID: record.id, slot: slotIndex + 1, role: depth == local.count - 1 ? .base : .imported,
                checkpointID: nil)
              try disk.insert(db)
              rows[path] = disk.id
            }
            try SlotRecord(vmID: record.id!, number: slotIndex + 1, baseID: rows[local.last!]!, leafID: rows[local[0]]!)
              .insert(db)
          }
          return try snapshot(db, record)
        })
    }
  }

  /// Exports a VM's current disks to a folder: with their chains (every file, children re-pointed at
  /// the copied parents) or flattened to one standalone VHD per disk (`<vm>-disk<N>.vhd`).
  @discardableResult
  public func exportVM(_ name: String, to folder: String, flatten: Bool) throws -> [String] {
    try withVMLock(name) {
      let vm = try self.vm(named: name)
      let target = URL(fileURLWithPath: folder).standardizedFileURL.path
      try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
      var written: [String] = []
      do {
        for disk in vm.disks {
          if flatten {
            let path = "\(target)/\(vm.name)-disk\(disk.slot).vhd"
            let chain = try DiskChain.open(disk.path)
            defer { chain.close() }
            try chain.flatten(to: path, type: .dynamic).close()
            written.append(path)
            continue
          }
          let copies = disk.chain.map { "\(target)/" + ($0 as NSString).lastPathComponent }
          for (source, copy) in zip(disk.chain, copies) where !written.contains(copy) {
            guard !FileManager.default.fileExists(atPath: copy) else {
              throw LabKitError(.alreadyExists, "\(copy) already exists; export into an empty folder")
            }
            try FileManager.default.copyItem(atPath: source, toPath: copy)
            written.append(copy)
          }
          for (child, parent) in zip(copies, copies.dropFirst()) {
            let copy = try VirtualDisk.open(child, writable: true)
            defer { copy.close() }
            try copy.setParent(parent)
          }
        }
      } catch {
        written.forEach { removeFileIfPresent($0) }
        throw error
      }
      return written
    }
  }
}
