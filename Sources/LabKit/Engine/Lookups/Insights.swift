import Foundation
import VHD

/// The byte ranges of one disk that changed since a checkpoint.
public struct DiskChanges: Codable, Equatable, Sendable {
  public struct Range: Codable, Equatable, Sendable {
    public var offset: UInt64
    public var length: UInt64
  }

  public var slot: Int
  public var ranges: [Range]
  public var changedBytes: UInt64
}

extension Library {
  /// What changed on each of a VM's disks since a checkpoint (what did a student touch?): the sector
  /// ranges its current disks hold that differ in origin from the checkpoint's frozen disks.
  public func changes(since id: Int64) throws -> [DiskChanges] {
    let owner = try catalog.read { tx in try tx.vm(id: try checkpointRecord(tx, id: id).vmID).name
    }
    return try withVMLock(owner) {
      let perSlot: [(Int, [String])] = try catalog.read { tx in
        let vm = try vmRecord(tx, named: owner)
        return try tx.slots(ofVM: vm.id!).map { slot in
          let state = try tx.frozenDisk(ofCheckpoint: id, slot: slot.number)
          let current = try chain(tx, from: slot.leafID)
          let then = try chain(tx, from: state.frozenDiskID)
          let thenIDs = Set(then.map { $0.id! })
          let currentIDs = Set(current.map { $0.id! })
          // Disks above the common ancestor on either side hold everything that differs.
          let above = current.prefix { !thenIDs.contains($0.id!) } + then.prefix { !currentIDs.contains($0.id!) }
          return (slot.number, above.map { absolute($0.path) })
        }
      }
      return try perSlot.map { slot, files in
        let ranges = try DiskChain.changedRanges(of: files)
        return DiskChanges(
          slot: slot, ranges: ranges.map { .init(offset: $0.lowerBound, length: UInt64($0.count)) },
          changedBytes: ranges.reduce(0) { $0 + UInt64($1.count) })
      }
    }
  }

  /// Bytes a checkpoint holds: the data of its frozen differencing disks (the changes made between the
  /// checkpoint before it and this one) and its saved memory.
  public func space(of id: Int64) throws -> UInt64 {
    let paths: [String] = try catalog.read { tx in
      let record = try checkpointRecord(tx, id: id)
      let states = try tx.frozenDisks(ofCheckpoint: id)
      let disks = try states.compactMap { try tx.disk(id: $0.frozenDiskID) }
        .filter { $0.role == .layer }
      return disks.map { absolute($0.path) } + [record.memoryPath].compactMap { $0.map(absolute) }
    }
    var total: UInt64 = 0
    for path in paths {
      if path.hasSuffix(".vhd") {
        let disk = try VirtualDisk.open(path)
        total += try disk.allocatedBytes()
        disk.close()
      } else {
        total += UInt64((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
      }
    }
    return total
  }

  /// Writes each disk of a checkpoint, as it was at that moment, to a standalone VHD in `folder`
  /// (`<vm>-disk<N>.vhd`, dynamic unless `type` says fixed). Returns the paths.
  @discardableResult
  public func exportCheckpoint(_ id: Int64, to folder: String, type: DiskType = .dynamic) throws -> [String] {
    let checkpoint = try self.checkpoint(id: id)
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    var written: [String] = []
    do {
      for (index, state) in checkpoint.disks.enumerated() {
        let chain = try DiskChain.open(state)
        defer { chain.close() }
        let path = URL(fileURLWithPath: folder).appendingPathComponent("\(checkpoint.vm)-disk\(index + 1).vhd").path
        try chain.flatten(to: path, type: type).close()
        written.append(path)
      }
    } catch {
      written.forEach { removeFileIfPresent($0) }
      throw error
    }
    return written
  }
}
