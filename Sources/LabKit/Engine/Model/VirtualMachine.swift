import Foundation

/// A VM as the engine reports it: what the catalog held when it was read, not a live handle.
public struct VirtualMachine: Codable, Equatable, Sendable {
  public var id: Int64
  public var name: String
  public var state: PowerState
  public var additions: Bool
  public var hostKind: HostKind
  /// The name of the host that runs it (`simulated`, `qemu`).
  public var host: String
  public var hardware: Hardware
  /// When opening the library found it stopped although the catalog said it ran (its process
  /// died); nil once vmlab changes its power state.
  public var stoppedOutside: Date?
  public var created: Date
  /// Its disks in slot order: the leaf it writes to and the chain below it.
  public var disks: [VirtualMachineDisk]
  /// The checkpoint its current state descends from, if any.
  public var currentCheckpointID: Int64?
}

public struct VirtualMachineDisk: Codable, Equatable, Sendable {
  /// 1-based position of the disk in the VM.
  public var slot: Int
  /// The absolute path of the leaf the VM writes to.
  public var path: String
  /// Absolute paths from the leaf down to the base.
  public var chain: [String]
}

extension Library {
  func vmRecord(_ tx: CatalogTransaction, named name: String) throws -> VMRecord {
    guard let record = try tx.vm(named: name) else {
      throw LabKitError.notFound("VM", name, hint: "`vmlab vm list` shows the VMs in \(root)")
    }
    return record
  }

  /// The disk rows from `diskID` down to its base.
  func chain(_ tx: CatalogTransaction, from diskID: Int64) throws -> [DiskRecord] {
    var result: [DiskRecord] = []
    var next: Int64? = diskID
    while let id = next, let disk = try tx.disk(id: id) {
      result.append(disk)
      next = disk.parentID
      if result.count > 10_000 { throw LabKitError(.inconsistent, "the catalog has a disk loop at \(disk.path)") }
    }
    return result
  }

  /// The VM as the engine reports it, read from its record and its disks in one transaction.
  func reportedVM(_ tx: CatalogTransaction, _ record: VMRecord) throws -> VirtualMachine {
    let disks = try tx.slots(ofVM: record.id!).map { slot -> VirtualMachineDisk in
      let chain = try self.chain(tx, from: slot.leafID)
      return VirtualMachineDisk(
        slot: slot.number, path: absolute(chain[0].path), chain: chain.map { absolute($0.path) })
    }
    return VirtualMachine(
      id: record.id!, name: record.name, state: record.state, additions: record.additions, hostKind: record.hostKind,
      host: record.host, hardware: record.hardware, stoppedOutside: record.stoppedOutside, created: record.created,
      disks: disks, currentCheckpointID: record.currentCheckpointID)
  }

  public func vm(named name: String) throws -> VirtualMachine {
    try catalog.read { tx in try reportedVM(tx, try vmRecord(tx, named: name)) }
  }

  /// Every VM, by name.
  public func vms() throws -> [VirtualMachine] {
    try catalog.read { tx in
      try tx.vmsByName().map { try reportedVM(tx, $0) }
    }
  }
}
