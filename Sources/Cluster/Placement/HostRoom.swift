import Foundation

/// The room a host has for new VMs, as placement sees it: what its last heartbeat reported, less
/// what was asked of it since (VMs being created, or made after that heartbeat), and, on a host
/// whose agent offers only part of the machine (`--offer-memory`, `--offer-disk`), no more than
/// the offer less what its VMs were given.
public struct HostRoom: Sendable, Equatable {
  public var name: String
  public var state: HostStatus.State
  public var memoryFree: Int64
  public var diskFree: Int64

  public init(name: String, state: HostStatus.State, memoryFree: Int64, diskFree: Int64) {
    self.name = name
    self.state = state
    self.memoryFree = memoryFree
    self.diskFree = diskFree
  }

  /// What the database knows of one host, from which its room follows.
  public struct Ledger: Sendable, Equatable {
    /// Free memory and disk at the last heartbeat.
    public var measuredMemory: Int64
    public var measuredDisk: Int64
    /// The agent's offer, if it made one.
    public var offeredMemory: Int64?
    public var offeredDisk: Int64?
    /// VMs being created (steps queued or running), and VMs made after the last heartbeat.
    public var sinceHeartbeat: [PlacementNeed] = []
    /// VMs being created, and every VM created on the host through the cluster that is still there.
    public var committed: [PlacementNeed] = []

    public init(measuredMemory: Int64, measuredDisk: Int64, offeredMemory: Int64? = nil, offeredDisk: Int64? = nil) {
      self.measuredMemory = measuredMemory
      self.measuredDisk = measuredDisk
      self.offeredMemory = offeredMemory
      self.offeredDisk = offeredDisk
    }
  }

  public init(name: String, state: HostStatus.State, ledger: Ledger) {
    var memory = ledger.measuredMemory - ledger.sinceHeartbeat.reduce(0) { $0 + $1.memory }
    var disk = ledger.measuredDisk - ledger.sinceHeartbeat.reduce(0) { $0 + $1.disk }
    if let offered = ledger.offeredMemory {
      memory = min(memory, offered - ledger.committed.reduce(0) { $0 + $1.memory })
    }
    if let offered = ledger.offeredDisk {
      disk = min(disk, offered - ledger.committed.reduce(0) { $0 + $1.disk })
    }
    self.init(name: name, state: state, memoryFree: max(0, memory), diskFree: max(0, disk))
  }
}
