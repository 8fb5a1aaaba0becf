import Foundation

/// A VM-level checkpoint: the VM's data (every disk) at one moment.
public struct Checkpoint: Codable, Equatable, Sendable {
  public var id: Int64
  public var vm: String
  public var name: String
  public var description: String
  public var created: Date
  /// The UTC time stamp its disk files carry (see `CheckpointFileName`).
  public var stamp: String
  /// The checkpoint it was taken after, in the VM's checkpoint tree.
  public var parentID: Int64?
  /// Taken online: the VM's memory was saved with it and comes back on restore.
  public var online: Bool
  /// The frozen disks (absolute paths, slot order) that hold the VM's data at that moment.
  public var disks: [String]
  /// The VM's current state descends from this checkpoint.
  public var isCurrent: Bool
}

/// What a checkpoint or restore did to the VM's power.
public struct CheckpointResult: Codable, Equatable, Sendable {
  public var checkpoint: Checkpoint
  public var action: PowerAction
  public var vmState: PowerState
  /// How long the guest was paused (stop to continue), for an online checkpoint taken without
  /// restarting the VM (`HostCapabilities.pauseAndSwitch`); nil otherwise.
  public var pauseSeconds: Double? = nil
}
