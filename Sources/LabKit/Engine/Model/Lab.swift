import Foundation

/// A named group of VMs, checkpointed and restored as one.
public struct Lab: Codable, Equatable, Sendable {
  public var id: Int64
  public var name: String
  public var created: Date
  /// Member VM names, in the order they were added.
  public var vms: [String]

  public init(id: Int64, name: String, created: Date, vms: [String]) {
    self.id = id
    self.name = name
    self.created = created
    self.vms = vms
  }
}

/// What a lab operation did to one VM.
public struct LabMemberResult: Codable, Equatable, Sendable {
  public var vm: String
  public var checkpoint: String
  public var checkpointID: Int64
  public var action: PowerAction
  public var state: PowerState
  public var seconds: Double
  /// The operation was done for this VM, but its host failed to start it again: why.
  public var hostFailure: String? = nil

  public init(
    vm: String, checkpoint: String, checkpointID: Int64, action: PowerAction, state: PowerState, seconds: Double,
    hostFailure: String? = nil
  ) {
    self.vm = vm
    self.checkpoint = checkpoint
    self.checkpointID = checkpointID
    self.action = action
    self.state = state
    self.seconds = seconds
    self.hostFailure = hostFailure
  }
}
