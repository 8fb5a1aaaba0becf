import Foundation
import VHD

extension Library {
  /// Proves that files and catalog agree: every disk the catalog references exists with the recorded
  /// unique id and parent, every slot and checkpoint points at a disk of its VM, no operation is half
  /// done, and no VHD file in a VM folder is unknown to the catalog. Returns the problems found.
  public func check() throws -> [String] {
    var problems: [String] = []
    let (disks, journal, vms) = try catalog.read { tx in
      (try tx.allDisks(), try tx.journalEntryCount(), try tx.vmsByName())
    }
    problems += unsettledOperations.map(\.description)
    if journal > unsettledOperations.count {
      problems.append(
        "\(journal - unsettledOperations.count) operation(s) are half done in the journal; reopen the library to finish them"
      )
    }
    problems += try catalog.integrityProblems().map { "catalog \(absolute("catalog.sqlite")): \($0)" }
    let byID = Dictionary(uniqueKeysWithValues: disks.map { ($0.id!, $0) })
    for disk in disks {
      let path = absolute(disk.path)
      guard FileManager.default.fileExists(atPath: path) else {
        problems.append("missing file: \(path) (disk \(disk.id!) of the catalog)")
        continue
      }
      do {
        let file = try VirtualDisk.open(path)
        defer { file.close() }
        if file.uniqueID.description != disk.uniqueID {
          problems.append("\(path): unique id \(file.uniqueID) but the catalog recorded \(disk.uniqueID)")
        }
        let expectedParent = disk.parentID.flatMap { byID[$0] }
        switch (file.header?.parentUniqueID, expectedParent) {
        case (.some(let id), .some(let parent)) where file.type == .differencing:
          if id.description != parent.uniqueID {
            problems.append(
              "\(path): its parent is \(id) but the catalog says \(absolute(parent.path)) (\(parent.uniqueID))")
          }
        case (_, .some(let parent)) where file.type != .differencing:
          problems.append("\(path): a \(file.type) disk, but the catalog gives it the parent \(absolute(parent.path))")
        case (_, .none) where file.type == .differencing:
          problems.append("\(path): a differencing disk the catalog records without a parent")
        default:
          break
        }
      } catch {
        problems.append("\(path): \(error)")
      }
    }
    let known = Set(disks.map(\.path))
    try catalog.read { tx in
      // Memory files: a saved VM's, and each online checkpoint's.
      var memoryFiles = Set<String>()
      for vm in vms { if let path = vm.savedMemoryPath { memoryFiles.insert(path) } }
      for path in try tx.checkpointMemoryPaths() { memoryFiles.insert(path) }
      for path in memoryFiles.sorted() where !FileManager.default.fileExists(atPath: absolute(path)) {
        problems.append("missing file: \(absolute(path)) (a saved state the catalog names)")
      }
      for vm in vms {
        let folder = vmFolder(vm.name)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: absolute(folder))) ?? []
        where name.hasSuffix(".vsv") && !memoryFiles.contains(folder + "/" + name) {
          problems.append("stray file: \(absolute(folder))/\(name) is a saved state the catalog does not name")
        }
      }
      for vm in vms {
        for slot in try tx.slots(ofVM: vm.id!) where byID[slot.leafID]?.vmID != vm.id || byID[slot.baseID] == nil {
          problems.append(
            "VM '\(vm.name)' disk \(slot.number): its leaf or base is not one of its disks in the catalog")
        }
        let folder = absolute(vmFolder(vm.name))
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where name.hasSuffix(".vhd") {
          if !known.contains(vmFolder(vm.name) + "/" + name) {
            problems.append("stray file: \(folder)/\(name) is not in the catalog")
          }
        }
      }
      let folders = (try? FileManager.default.contentsOfDirectory(atPath: absolute("vms"))) ?? []
      let names = Set(vms.map(\.nameKey))
      for folder in folders where !names.contains(NameRules.key(folder)) {
        problems.append("stray folder: \(absolute("vms/" + folder)) belongs to no VM in the catalog")
      }
      let orphans = try tx.danglingFrozenDiskCount()
      if orphans > 0 { problems.append("\(orphans) checkpoint disk(s) point at disks the catalog does not have") }
    }
    return problems
  }
}
