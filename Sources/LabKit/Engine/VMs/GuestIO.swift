import Foundation
import VHD

extension Library {
  // MARK: Guest I/O (the simulated host's stand-in for a guest)

  /// Writes bytes at an offset of a VM's disk, as its guest would: only while the VM runs.
  /// (`SimulatedGuest` is the public way in, for VMs of a host that simulates its guests.)
  func guestWrite(vm name: String, disk slot: Int, offset: UInt64, bytes: [UInt8]) throws {
    try withVMLock(name) {
      let vm = try self.vm(named: name)
      guard vm.state == .running else {
        throw LabKitError(
          .invalidState, "VM '\(vm.name)' is \(vm.state); its guest writes only while it runs (start it)")
      }
      let chain = try DiskChain.open(try diskPath(vm, slot), writable: true)
      defer { chain.close() }
      try chain.write(bytes, at: offset)
    }
  }

  /// The most one `diskRead` returns: the bytes are held in memory (a Lua string, a buffer), so a
  /// length typed wrong (`1T`) must be an error, not an attempt to allocate it.
  static let maximumReadLength = 64 << 20

  /// Reads bytes at an offset of a VM's disk as it is now (through its chain): at most
  /// `maximumReadLength` bytes, and none past the end of the disk.
  func diskRead(vm name: String, disk slot: Int, offset: UInt64, count: Int) throws -> [UInt8] {
    try withVMLock(name) {
      let vm = try self.vm(named: name)
      let chain = try DiskChain.open(try diskPath(vm, slot))
      defer { chain.close() }
      try checkRead(vm, slot, chain, offset: offset, length: count < 0 ? nil : UInt64(count))
      guard count <= Library.maximumReadLength else {
        throw LabKitError(
          .invalidArgument,
          "cannot read \(count) bytes of VM '\(vm.name)' disk \(slot) at once: the limit is \(Library.maximumReadLength) bytes (\(ByteCount.format(UInt64(Library.maximumReadLength)))); read it in pieces"
        )
      }
      return try chain.read(at: offset, count: count)
    }
  }

  /// Copies `length` bytes at an offset of a VM's disk (through its chain) to `output`, a piece at a
  /// time, so any length within the disk works without holding it in memory.
  func diskRead(vm name: String, disk slot: Int, offset: UInt64, length: UInt64, to output: FileHandle) throws {
    try withVMLock(name) {
      let vm = try self.vm(named: name)
      let chain = try DiskChain.open(try diskPath(vm, slot))
      defer { chain.close() }
      try checkRead(vm, slot, chain, offset: offset, length: length)
      var position = offset
      let end = offset + length
      while position < end {
        let count = Int(min(UInt64(Library.maximumReadLength), end - position))
        try output.write(contentsOf: try chain.read(at: position, count: count))
        position += UInt64(count)
      }
    }
  }

  /// A read must lie inside the disk (`length` nil: a negative length was asked for).
  private func checkRead(_ vm: VirtualMachine, _ slot: Int, _ chain: DiskChain, offset: UInt64, length: UInt64?)
    throws
  {
    let what = "VM '\(vm.name)' disk \(slot)"
    guard let length else {
      throw LabKitError(
        .invalidArgument, "cannot read a negative number of bytes of \(what); give a length of 0 or more")
    }
    guard offset <= chain.size, length <= chain.size - offset else {
      throw LabKitError(
        .invalidArgument,
        "cannot read \(length) bytes at offset \(offset) of \(what): the disk is \(chain.size) bytes (\(ByteCount.format(chain.size))); read within it"
      )
    }
  }

  private func diskPath(_ vm: VirtualMachine, _ slot: Int) throws -> String {
    guard let disk = vm.disks.first(where: { $0.slot == slot }) else {
      throw LabKitError(.notFound, "VM '\(vm.name)' has no disk \(slot); it has disks 1 to \(vm.disks.count)")
    }
    return disk.path
  }
}
