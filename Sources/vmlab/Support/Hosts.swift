import LabKit

/// The hosts this vmlab runs VMs on. The engine never constructs a host: they are registered
/// here, once per process, and every library the process opens uses them.
enum Hosts {
  static let registry: HostRegistry = {
    let registry = HostRegistry()
    registry.register(SimulatedHost.fromEnvironment(), as: "simulated")
    return registry
  }()

  /// Refuses a host that is named but not built yet, with what to use instead.
  static func check(_ name: String) throws {
    if name == "qemu" && registry.driver(named: name) == nil {
      throw LabKitError(
        .invalidArgument,
        "the QEMU host is not built yet in this vmlab; create the VM with --host simulated (the default) for now")
    }
  }
}
