/// What a host needs to run a VM: its name, its folder, the disks it writes to and its hardware.
public struct HostedVM: Equatable, Sendable {
  public var name: String
  /// The VM's folder, absolute (where a host keeps its sockets and logs).
  public var folder: String
  /// The leaf of each disk, absolute, in slot order: the files the guest writes to.
  public var disks: [String]
  public var hardware: Hardware

  public init(name: String, folder: String, disks: [String], hardware: Hardware) {
    self.name = name
    self.folder = folder
    self.disks = disks
    self.hardware = hardware
  }
}
