/// What a host reports of a VM, compared with the catalog when a library opens.
public enum HostPowerState: String, Sendable, Equatable {
  /// Its guest runs.
  case running
  /// Its process runs but the guest is paused (a crash in the middle of an online checkpoint):
  /// opening the library points its disks at the catalog's leaves and lets it continue.
  case paused
  /// Nothing runs for it: never started, stopped, or its process died.
  case off
  /// The host cannot tell (the simulated host knows only the VMs this process started): the
  /// catalog stays the truth.
  case unknown
}
