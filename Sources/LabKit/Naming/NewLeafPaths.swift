import Foundation

/// Where the new differencing disks of an operation go (checkpoint, restore, lab operations): in
/// the VM's folder, named after each slot's base with one time stamp for the whole operation
/// (`CheckpointFileName`), a stamp no file or checkpoint of the VMs uses yet.
extension Library {
  /// Paths for a VM's new leaves, one per slot, under a stamp no file or checkpoint of the VM uses
  /// yet (see `CheckpointFileName`).
  func newLeafPaths(vm: VMRecord, slots: [SlotRecord]) throws -> (stamp: String, paths: [String]) {
    let made = try newLeafPaths(for: [(vm, slots)])
    return (made.stamp, made.paths[0])
  }

  /// The same for several VMs under one stamp (an operation on several VMs is one moment), from
  /// `date` on.
  func newLeafPaths(for vms: [(vm: VMRecord, slots: [SlotRecord])], from date: Date = Date()) throws
    -> (stamp: String, paths: [[String]])
  {
    let stems = try catalog.read { tx in try vms.map { try baseStems(tx, vmID: $0.vm.id!) } }
    let stamp = try freshStamp(vms: zip(vms, stems).map { ($0.vm, $1) }, from: date)
    let paths = zip(vms, stems).map { item, stems in
      item.slots.indices.map {
        "\(vmFolder(item.vm.name))/"
          + CheckpointFileName(base: stems[$0], stamp: stamp, slot: item.slots[$0].number).fileName
      }
    }
    return (stamp, paths)
  }

  /// One stamp, from `date` on, that no file or checkpoint of any of these VMs uses yet (a lab's
  /// checkpoint gives all its VMs the same one).
  func freshStamp(vms: [(vm: VMRecord, bases: [String])], from date: Date) throws -> String {
    var date = date
    while true {
      let stamp = CheckpointFileName.stamp(for: date)
      let taken = try catalog.read { tx in
        try tx.isStampTaken(stamp, byAnyOf: vms.map { $0.vm.id! })
      }
      let fileTaken = vms.contains { vm, bases in
        bases.enumerated().contains { index, base in
          FileManager.default.fileExists(
            atPath: absolute(
              vmFolder(vm.name) + "/" + CheckpointFileName(base: base, stamp: stamp, slot: index + 1).fileName))
        }
      }
      if !taken && !fileTaken { return stamp }
      date = date.addingTimeInterval(0.001)
    }
  }

  /// The base file stem of each slot (`web01-disk1`), which new differencing disks are named after.
  func baseStems(_ tx: CatalogTransaction, vmID: Int64) throws -> [String] {
    try tx.slots(ofVM: vmID).map { slot in
      let base = try tx.existingDisk(id: slot.baseID)
      return ((base.path as NSString).lastPathComponent as NSString).deletingPathExtension
    }
  }
}
