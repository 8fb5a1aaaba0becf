import Foundation
import VHD

extension Library {
  /// The description of the VM that `exportVM` writes beside the disk files, and `importVM` reads.
  public static let exportManifestName = "vm.json"

  /// Exports a VM to a folder so that `importVM` brings it back as it was: every disk file of the
  /// VM (each checkpoint's, and the template a linked clone reads), its checkpoints' running
  /// states, and `vm.json` naming the disks in slot order, the checkpoints (names, descriptions,
  /// tree, the current one), the guest additions and the host kind. Each child is re-pointed at its
  /// copied parent, so the folder stands alone.
  ///
  /// With `flatten`, one standalone VHD per disk (`<vm>-disk<N>.vhd`) holding what the VM reads now,
  /// and no checkpoints. Returns the files written; on failure nothing is left of them.
  @discardableResult
  public func exportVM(_ name: String, to folder: String, flatten: Bool) throws -> [String] {
    try withVMLock(name) {
      guard var manifest = try self.manifest(vm: name) else {
        throw LabKitError.notFound("VM", name, hint: "`vmlab vm list` shows the VMs")
      }
      let target = URL(fileURLWithPath: folder).standardizedFileURL.path
      // Sources (library-relative) and the names they get in the folder.
      var copies: [(source: String, name: String)] = []
      if flatten {
        let vm = try self.vm(named: name)
        manifest.disks = vm.disks.map {
          VMManifest.Disk(
            path: "\(vm.name)-disk\($0.slot).vhd", uniqueID: "", parent: nil, slot: $0.slot, role: .base,
            checkpointStamp: nil)
        }
        manifest.slots = vm.disks.map {
          VMManifest.Slot(number: $0.slot, base: "\(vm.name)-disk\($0.slot).vhd", leaf: "\(vm.name)-disk\($0.slot).vhd")
        }
        manifest.checkpoints = []
        manifest.currentCheckpointStamp = nil
        manifest.savedMemoryPath = nil
      } else {
        var names: [String: String] = [:]
        var taken: Set<String> = [Library.exportManifestName.lowercased()]
        func exportName(_ source: String) -> String {
          if let name = names[source] { return name }
          let file = (source as NSString).lastPathComponent
          var candidate = file
          var number = 2
          while taken.contains(candidate.lowercased()) {
            candidate = "\((file as NSString).deletingPathExtension)-\(number).\((file as NSString).pathExtension)"
            number += 1
          }
          taken.insert(candidate.lowercased())
          names[source] = candidate
          copies.append((source, candidate))
          return candidate
        }
        for index in manifest.disks.indices {
          manifest.disks[index].path = exportName(manifest.disks[index].path)
          manifest.disks[index].parent = manifest.disks[index].parent.map(exportName)
        }
        for index in manifest.slots.indices {
          manifest.slots[index].base = exportName(manifest.slots[index].base)
          manifest.slots[index].leaf = exportName(manifest.slots[index].leaf)
        }
        for index in manifest.checkpoints.indices {
          manifest.checkpoints[index].frozenDisks = manifest.checkpoints[index].frozenDisks.map(exportName)
          manifest.checkpoints[index].memoryPath = manifest.checkpoints[index].memoryPath.map(exportName)
        }
        manifest.savedMemoryPath = manifest.savedMemoryPath.map(exportName)
      }
      // Refused before anything is written: an export never replaces files.
      let outputs = (flatten ? manifest.disks.map(\.path) : copies.map(\.name)) + [Library.exportManifestName]
      for output in outputs where FileManager.default.fileExists(atPath: target + "/" + output) {
        throw LabKitError(
          .alreadyExists, "\(target)/\(output) already exists; export into an empty (or new) folder")
      }
      do {
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
      } catch {
        throw LabKitError(.failed, "cannot create the export folder \(target): \(describeFileError(error))")
      }
      var written: [String] = []
      do {
        if flatten {
          for disk in try self.vm(named: name).disks {
            let path = "\(target)/\(name)-disk\(disk.slot).vhd"
            let chain = try DiskChain.open(disk.path)
            defer { chain.close() }
            written.append(path)
            let flat = try chain.flatten(to: path, type: .dynamic)
            if let index = manifest.disks.firstIndex(where: { $0.slot == disk.slot }) {
              manifest.disks[index].uniqueID = flat.uniqueID.description
            }
            flat.close()
          }
        } else {
          for copy in copies {
            written.append(target + "/" + copy.name)
            try FileManager.default.copyItem(atPath: absolute(copy.source), toPath: target + "/" + copy.name)
          }
          for disk in manifest.disks {
            guard let parent = disk.parent else { continue }
            let child = try VirtualDisk.open(target + "/" + disk.path, writable: true)
            defer { child.close() }
            try child.setParent(target + "/" + parent)
          }
        }
        manifest.state = manifest.state == .saved && manifest.savedMemoryPath != nil ? .saved : .stopped
        written.append(target + "/" + Library.exportManifestName)
        try Library.manifestEncoder.encode(manifest).write(
          to: URL(fileURLWithPath: target + "/" + Library.exportManifestName))
      } catch {
        written.forEach { removeFileIfPresent($0) }
        if error is CocoaError {
          throw LabKitError(.failed, "cannot export VM '\(name)' to \(target): \(describeFileError(error))")
        }
        throw error
      }
      return written
    }
  }
}
