import Foundation

extension Library {
  /// Creates a VM that boots a built image of this library (`templates/<image>/`): disk 1 is a
  /// linked clone of the image's root disk, `extraDiskSizes` add empty disks after it, the boot is
  /// the image's kernel and initrd with the VM's name as the guest's host name, and the guest has
  /// additions (its agent answers). The command line and Lua both come here, so they agree.
  @discardableResult
  public func createVM(
    name: String, image: String, extraDiskSizes: [UInt64] = [], hostKind: HostKind? = nil, host: String,
    hardware: Hardware = Hardware()
  ) throws -> VirtualMachine {
    // The image first: an unknown one lists the built ones, whatever the host.
    let setup = try ImageTemplates(library: root).vmSetup(image: image, vm: name)
    guard ImageTemplates.bootingHosts.contains(host) else {
      throw LabKitError(
        .invalidArgument,
        "VM '\(name)': image '\(image)' boots a real guest, which the \(host) host cannot run; give --host \(ImageTemplates.bootingHosts.joined(separator: " or --host "))"
      )
    }
    var hardware = hardware
    hardware.boot = setup.boot
    return try createVM(
      name: name, from: setup.rootDisk, linked: true, extraDiskSizes: extraDiskSizes,
      templateName: setup.templateName, additions: true, hostKind: hostKind, host: host, hardware: hardware)
  }
}
