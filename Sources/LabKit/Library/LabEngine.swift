import Foundation
import VHD

/// What the `vmlab` module asks of the engine: every call a script can make on VMs, checkpoints,
/// labs and jobs. One library (`Library`, SQLite and its VHD files) answers it today; the
/// protocol is the seam where a cluster of libraries (PostgreSQL and an agent per host) answers
/// the same calls, so a lab script runs unchanged in both modes. Each requirement means what the
/// `Library` method of the same name means.
public protocol LabEngine: AnyObject {
  /// Where the engine keeps its state, as `vmlab.library().path` shows it.
  var root: String { get }
  var defaultHostKind: HostKind { get }
  /// The names of the hosts VMs can run on (`simulated`, `qemu`).
  var hostNames: [String] { get }

  // MARK: VMs

  func vms() throws -> [VirtualMachine]
  func vm(named name: String) throws -> VirtualMachine
  /// The cluster host that holds the VM; nil for one library, whose VMs are all on this machine.
  func clusterHost(of vm: String) throws -> String?
  func createVM(
    name: String, diskSizes: [UInt64], additions: Bool, hostKind: HostKind?, host: String?, hardware: Hardware
  ) throws -> VirtualMachine
  func createVM(
    name: String, image: String, extraDiskSizes: [UInt64], hostKind: HostKind?, host: String, hardware: Hardware
  ) throws -> VirtualMachine
  func createVM(
    name: String, from sourcePath: String, linked: Bool, extraDiskSizes: [UInt64], templateName: String?,
    additions: Bool, hostKind: HostKind?, host: String?, hardware: Hardware
  ) throws -> VirtualMachine
  func removeVM(named name: String) throws
  func start(vm name: String) throws -> VirtualMachine
  func shutDown(vm name: String) throws -> VirtualMachine
  func turnOff(vm name: String) throws -> VirtualMachine
  func save(vm name: String) throws -> VirtualMachine
  func accelerator(of vm: String) throws -> String
  func recentConsole(of vm: String, lines: Int) throws -> String
  /// The simulated guest's view of its disks (only the simulated host has one).
  func simulatedGuest(of vm: String) throws -> SimulatedGuest
  /// Runs `command` in the VM's real guest, through its host's guest agent.
  func run(_ command: GuestCommand, inGuestOf vm: String) throws -> GuestCommandResult
  /// Waits until the VM's real guest answers, at most `timeout` seconds.
  func waitUntilReady(guestOf vm: String, timeout: Double) throws

  // MARK: Checkpoints

  func checkpoint(id: Int64) throws -> Checkpoint
  func checkpoint(vm name: String, named reference: String) throws -> Checkpoint
  func checkpoints(vm name: String?) throws -> [Checkpoint]
  func mostRecentCheckpoints(vm name: String?) throws -> [Checkpoint]
  func checkpoint(vm name: String, name checkpointName: String, description: String, disksOnly: Bool) throws
    -> CheckpointResult
  func space(of id: Int64) throws -> UInt64
  func changes(since id: Int64) throws -> [DiskChanges]
  func exportCheckpoint(_ id: Int64, to folder: String, type: DiskType) throws -> [String]
  func restore(checkpoint id: Int64, whatIf: Bool) throws -> (plan: OperationPlan, result: CheckpointResult?)
  func restorePlans(checkpoints ids: [Int64]) throws -> [OperationPlan]
  func restore(checkpoints ids: [Int64], all: Bool, confirm: String) throws -> [RestoreOutcome]
  func merge(checkpoint id: Int64, whatIf: Bool) throws -> OperationPlan
  func merge(
    checkpoints ids: [Int64], all: Bool, whatIf: Bool, confirm: String, approve: ([OperationPlan]) throws -> Void
  ) throws -> [OperationPlan]
  func remove(checkpoint id: Int64, whatIf: Bool) throws -> OperationPlan

  // MARK: Labs

  func labs() throws -> [Lab]
  func lab(named name: String) throws -> Lab
  func createLab(name: String, vms names: [String]) throws -> Lab
  func addToLab(_ name: String, vms names: [String]) throws -> Lab
  func removeLab(named name: String) throws
  func labCheckpointNames(_ name: String) throws -> [String]
  func checkpointLab(_ name: String, checkpoint checkpointName: String, description: String) throws
    -> [LabMemberResult]
  func restoreLab(_ name: String, checkpoint checkpointName: String?) throws -> [LabMemberResult]

  // MARK: Jobs (operations run in the background, in parallel across VMs)

  func job(id: Int64) throws -> Job
  func jobs(limit: Int) throws -> [Job]
  func wait(job id: Int64) throws -> Job
  func wait(jobs ids: [Int64]) throws -> [Job]
  func checkpointJob(vm name: String, name checkpointName: String, description: String) throws -> Job
  func restoreJob(checkpoint id: Int64) throws -> Job
  func restoreJobs(checkpoints ids: [Int64], all: Bool, confirm: String) throws -> [Job]
  func mergeJob(checkpoint id: Int64) throws -> Job
  func mergeJobs(checkpoints ids: [Int64], all: Bool, confirm: String) throws -> [Job]
  func checkpointLabJob(_ name: String, checkpoint checkpointName: String, description: String) throws -> Job
}

/// One library is the engine of a script run without `--cluster`.
extension Library: LabEngine {
  public var hostNames: [String] { hosts.names }

  public func clusterHost(of vm: String) throws -> String? { nil }

  public func simulatedGuest(of vm: String) throws -> SimulatedGuest {
    try SimulatedGuest(library: self, vm: vm)
  }

  public func run(_ command: GuestCommand, inGuestOf vm: String) throws -> GuestCommandResult {
    try RunningGuest(library: self, vm: vm).run(command)
  }

  public func waitUntilReady(guestOf vm: String, timeout: Double) throws {
    try RunningGuest(library: self, vm: vm).waitUntilReady(timeout: timeout)
  }
}
