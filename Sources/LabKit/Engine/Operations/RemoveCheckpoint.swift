import Foundation
import VHD

extension Library {
  /// Removes one checkpoint anywhere in the tree, the finer operation: later checkpoints stay and
  /// restore exactly as before. Its frozen disks are merged into their single child when they have
  /// one, deleted when nothing reads them, and kept while other disks share them.
  @discardableResult
  public func remove(checkpoint id: Int64, whatIf: Bool = false) throws -> OperationPlan {
    try changeChain(
      checkpoint: id, operation: "remove-checkpoint", refusedAs: "removed", whatIf: whatIf, plan: removalPlan)
  }

  private func removalPlan(_ tx: CatalogTransaction, checkpointID id: Int64) throws -> (
    OperationPlan, RedoPlan, [String]
  ) {
    let target = try checkpointRecord(tx, id: id)
    let vm = try tx.vm(id: target.vmID)
    let leaves = Set(try tx.slots(ofVM: vm.id!).map(\.leafID))
    var absorbs: [RedoPlan.Absorb] = []
    var deleteDisks: [Int64] = []
    var bytes: UInt64 = 0
    func isStateOfAnother(_ diskID: Int64) throws -> Bool {
      try tx.checkpointCount(keepingDisk: diskID, except: id) > 0
    }
    for state in try tx.frozenDisks(ofCheckpoint: id) {
      var disk = try tx.existingDisk(id: state.frozenDiskID)
      guard disk.role == .layer, !leaves.contains(disk.id!),
        try !isStateOfAnother(disk.id!)
      else { continue }
      let children = try tx.children(ofDisk: disk.id!)
      if children.count == 1, let parentID = disk.parentID, let grandparent = try tx.disk(id: parentID) {
        let file = try VirtualDisk.open(absolute(disk.path))
        bytes += try file.allocatedBytes()
        file.close()
        absorbs.append(
          RedoPlan.Absorb(
            childID: children[0].id!, childPath: children[0].path, parentID: disk.id!, grandparentID: parentID,
            grandparentPath: grandparent.path))
        deleteDisks.append(disk.id!)
      } else if children.isEmpty {
        // Nothing reads it: delete it, and the disks below that existed only for it.
        deleteDisks.append(disk.id!)
        while let parentID = disk.parentID, let parent = try tx.disk(id: parentID),
          parent.role == .layer, !leaves.contains(parentID),
          try !isStateOfAnother(parentID),
          try tx.childCount(ofDisk: parentID) == 1
        {
          deleteDisks.append(parentID)
          disk = parent
        }
      }
    }
    let deletes =
      try deleteDisks.map { try tx.existingDisk(id: $0).path }
      + [target.memoryPath].compactMap { $0 }
    let plan = OperationPlan(
      operation: "remove", vm: vm.name, checkpointsRemoved: [target.name], alsoAffected: [],
      filesRemoved: deletes.map(absolute), filesCreated: [], bytesMerged: bytes, powerAction: .none, applied: false)
    let redo = RedoPlan(
      vmID: vm.id!, removeCheckpoints: [id], folds: [], absorbs: absorbs, deleteDisks: deleteDisks,
      newCurrentCheckpointID: target.parentID, changesCurrent: vm.currentCheckpointID == id)
    return (plan, redo, deletes)
  }
}
