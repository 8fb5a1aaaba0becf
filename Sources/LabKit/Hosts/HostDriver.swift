/// The part of a hypervisor vmlab drives: power state and guest shutdown. The engine owns disks,
/// checkpoints and the catalog; a driver only runs VMs. The simulated host stands in until a real
/// driver comes.
public protocol HostDriver: AnyObject, Sendable {
  /// Starts the VM on its current disks (their leaf paths, slot order).
  func start(vm: String, disks: [String]) throws
  /// Asks the guest to shut down (needs guest additions); returns when it is off.
  func shutDown(vm: String) throws
  /// Cuts the power.
  func turnOff(vm: String) throws
  /// Saves the running state (memory, devices) and returns it; the VM is then off.
  func saveState(vm: String) throws -> [UInt8]
  /// Starts the VM from a saved running state.
  func resume(vm: String, disks: [String], state: [UInt8]) throws
}
