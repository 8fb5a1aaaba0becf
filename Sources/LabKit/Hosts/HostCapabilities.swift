/// What a host can do. The engine asks before it relies on any of these: a host without
/// `guestShutdown` has its VMs turned off where others would shut them down, and without
/// `onlineCheckpoint` a running VM is stopped for a checkpoint even on a hypervisor-kind VM.
public struct HostCapabilities: OptionSet, Sendable, Hashable {
  public let rawValue: Int
  public init(rawValue: Int) { self.rawValue = rawValue }

  /// A running VM can be checkpointed without stopping: its running state is saved with the
  /// checkpoint (needs `savedState` too).
  public static let onlineCheckpoint = HostCapabilities(rawValue: 1 << 0)
  /// A VM's running state can be written to a file and resumed from it (`vm save`).
  public static let savedState = HostCapabilities(rawValue: 1 << 1)
  /// A guest with additions can be asked to shut down gracefully.
  public static let guestShutdown = HostCapabilities(rawValue: 1 << 2)
  /// The guest's file systems can be frozen and thawed around an online checkpoint.
  public static let fileSystemFreeze = HostCapabilities(rawValue: 1 << 3)

  /// A running VM can be paused, its running state saved while paused, its disks switched to new
  /// leaves and continued, so an online checkpoint pauses it for moments instead of restarting it.
  public static let pauseAndSwitch = HostCapabilities(rawValue: 1 << 4)

  public static let all: HostCapabilities = [
    .onlineCheckpoint, .savedState, .guestShutdown, .fileSystemFreeze, .pauseAndSwitch,
  ]

  /// The capability names, for messages and `vm show`.
  public var names: [String] {
    [
      (HostCapabilities.onlineCheckpoint, "online checkpoint"), (.savedState, "saved state"),
      (.guestShutdown, "guest shutdown"), (.fileSystemFreeze, "file-system freeze"),
      (.pauseAndSwitch, "pause and switch disks"),
    ].filter { contains($0.0) }.map(\.1)
  }
}
