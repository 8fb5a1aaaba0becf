import Foundation

/// The guest of a VM on a simulating host: writes at byte offsets of its disks as the guest would,
/// and reads its disks back. Not part of the engine's contract: a real host's guests write for
/// themselves, and asking for this on a VM of such a host is an error that says so.
public struct SimulatedGuest {
  public let library: Library
  public let vm: String

  /// The guest of VM `vm`, which must run on a simulating host.
  public init(library: Library, vm: String) throws {
    let record = try library.catalog.read { tx in try library.vmRecord(tx, named: vm) }
    guard try library.driver(record).driver is SimulatingHost else {
      throw LabKitError(
        .invalidState,
        "VM '\(record.name)' runs on the host '\(record.host)', which does not write or read a guest's disks at byte offsets (only the simulated host does); work inside the guest instead"
      )
    }
    self.library = library
    self.vm = record.name
  }

  /// Writes bytes at an offset of disk `slot` (1-based), as the guest would: only while the VM runs.
  public func write(disk slot: Int, offset: UInt64, bytes: [UInt8]) throws {
    try library.guestWrite(vm: vm, disk: slot, offset: offset, bytes: bytes)
  }

  /// Reads bytes of disk `slot` as it is now (through its chain), at most
  /// `SimulatedGuest.maximumReadLength`.
  public func read(disk slot: Int, offset: UInt64, count: Int) throws -> [UInt8] {
    try library.diskRead(vm: vm, disk: slot, offset: offset, count: count)
  }

  /// Copies `length` bytes of disk `slot` to `output`, a piece at a time.
  public func read(disk slot: Int, offset: UInt64, length: UInt64, to output: FileHandle) throws {
    try library.diskRead(vm: vm, disk: slot, offset: offset, length: length, to: output)
  }

  /// The most one `read(disk:offset:count:)` returns.
  public static var maximumReadLength: Int { Library.maximumReadLength }
}
