/// What a host reports of a VM, compared with the catalog when a library opens.
public enum HostPowerState: String, Sendable, Equatable {
  /// Its guest runs (or is paused inside a running process).
  case running
  /// Nothing runs for it: never started, stopped, or its process died.
  case off
  /// The host cannot tell (the simulated host knows only the VMs this process started): the
  /// catalog stays the truth.
  case unknown
}
