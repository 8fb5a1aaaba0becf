/// The part of a hypervisor vmlab drives: running VMs, their power state and their saved running
/// state. The engine owns disks, checkpoints, memory files and the catalog; a driver only runs
/// VMs on the files the engine names. Drivers are registered by the layer above LabKit (the vmlab
/// executable, a test) in a `HostRegistry`; each VM names its host.
public protocol HostDriver: AnyObject, Sendable {
  /// What this host can do; the engine asks instead of assuming.
  var capabilities: HostCapabilities { get }
  /// Starts the VM from power off on its current disks.
  func start(_ vm: HostedVM) throws
  /// Asks the guest to shut down (needs `guestShutdown` and guest additions); returns when it is off.
  func shutDown(vm: String) throws
  /// Cuts the power.
  func turnOff(vm: String) throws
  /// Writes the memory and devices of a running VM to `file`, a path the engine chose
  /// and journals; the VM is off afterwards. A real VM's memory is gigabytes: a driver streams it
  /// to the file, never through the engine's memory. Needs `savedState`.
  func saveMemoryAndStop(vm: String, to file: String) throws
  /// Starts the VM from the memory saved in `file` (written by `saveMemoryAndStop`), on the disks given.
  func resume(_ vm: HostedVM, from file: String) throws
  /// What the host sees of the VM now, asked when a library opens so that the catalog follows what
  /// really runs.
  func powerState(of vm: String) throws -> HostPowerState
  /// Flushes and freezes the guest's file systems (needs `fileSystemFreeze`), so that a checkpoint
  /// taken while it runs holds consistent files.
  func freezeFileSystems(vm: String) throws
  /// Thaws what `freezeFileSystems` froze.
  func thawFileSystems(vm: String) throws

  // An online checkpoint without restarting the VM (needs `pauseAndSwitch`): pause, save the
  // memory while paused, switch the disks to the new leaves, continue.

  /// Stops the guest's CPUs and puts every write it made on stable storage; it stays in memory.
  func pause(vm: String) throws
  /// Writes the paused VM's memory and devices to `file` (streamed, like `saveMemoryAndStop`); it stays paused.
  func saveMemory(vm: String, to file: String) throws
  /// Makes the paused VM write to these leaves (absolute, slot order) from now on, all together.
  func switchDisks(vm: String, to leaves: [String]) throws
  /// Lets a paused VM run again.
  func continueRunning(vm: String) throws
}
