import Foundation
import LabKit

/// What an agent can be asked to do on its own library: the engine operations a lab needs per host.
public enum StepKind: String, Sendable, Codable, CaseIterable {
  /// Arguments `CreateVMStep`.
  case createVM = "create-vm"
  /// Arguments `VMsStep`.
  case startVMs = "start-vms"
  /// Arguments `CheckpointVMsStep`.
  case checkpointVMs = "checkpoint-vms"
  /// Arguments `RestoreVMsStep`.
  case restoreVMs = "restore-vms"
  /// Arguments `PrepareCheckpointStep`: phase one of a lab checkpoint across hosts.
  case prepareCheckpoint = "prepare-checkpoint"
  /// Arguments `PrepareRestoreStep`: phase one of a lab restore across hosts.
  case prepareRestore = "prepare-restore"
  /// Arguments `DecideStep`: phase two, the coordinator's decision carried out on this host.
  case decide = "decide"
  /// Arguments `ImageStep`: build the image into the agent's library (it is then registered).
  case buildImage = "build-image"
  /// Arguments `ImageStep`: copy the image's template from a host that has it, verified.
  case pullTemplate = "pull-template"
  /// Arguments `DescribeVMsStep`: the VMs and their checkpoints as the library holds them, as
  /// JSON in the step's result (`VMSummary`), for a script run with `--cluster` that reads a VM
  /// its host has published nothing of (scripts otherwise read what agents publish).
  case describeVMs = "describe-vms"
  /// Arguments `VMOperationStep`: one engine call on one VM, its answer as JSON in the step's
  /// result (`VMOperationResult`).
  case vmOperation = "vm-operation"
}

/// `create-vm`: a new VM with empty dynamic disks of these sizes (bytes), stopped; with `image`,
/// disk 1 is a linked clone of that image's root disk (pulled from another host first when this
/// host's library does not have it) and `disks` are the extra disks.
public struct CreateVMStep: Codable, Sendable, Equatable {
  public var name: String
  public var disks: [UInt64]
  /// The host in the agent's vmlab that runs it (`simulated`, `qemu`); default `simulated`.
  public var host: String?
  /// `virtual-server` or `hypervisor`; default the library's.
  public var hostKind: String?
  public var additions: Bool?
  /// Bytes, a whole number of MiB; default 1 GiB.
  public var memory: UInt64?
  /// A built image (`vmlab image list`); needs a host that boots guests (`qemu`).
  public var image: String?
  /// Virtual CPUs; default 1.
  public var cpus: Int?

  /// The memory of a VM whose step names none.
  public static let defaultMemory = Hardware.defaultMemory

  public init(
    name: String, disks: [UInt64], host: String? = nil, hostKind: String? = nil, additions: Bool? = nil,
    memory: UInt64? = nil, image: String? = nil, cpus: Int? = nil
  ) {
    self.name = name
    self.disks = disks
    self.host = host
    self.hostKind = hostKind
    self.additions = additions
    self.memory = memory
    self.image = image
    self.cpus = cpus
  }
}

/// `start-vms`: these VMs run (ones already running are left so).
public struct VMsStep: Codable, Sendable, Equatable {
  public var vms: [String]

  public init(vms: [String]) { self.vms = vms }
}

/// `checkpoint-vms`: a checkpoint `name` of each VM (one that already has it, from an earlier
/// attempt of this step, is not checkpointed again).
public struct CheckpointVMsStep: Codable, Sendable, Equatable {
  public var vms: [String]
  public var name: String
  public var description: String?

  public init(vms: [String], name: String, description: String? = nil) {
    self.vms = vms
    self.name = name
    self.description = description
  }
}

/// `restore-vms`: every VM back to its checkpoint `checkpoint`, as one journaled operation.
public struct RestoreVMsStep: Codable, Sendable, Equatable {
  public var vms: [String]
  public var checkpoint: String

  public init(vms: [String], checkpoint: String) {
    self.vms = vms
    self.checkpoint = checkpoint
  }
}

/// `prepare-checkpoint`: phase one of checkpoint `name` of these VMs (`Library.prepareCheckpoint`).
/// The id of the operation the library prepared is recorded under the step's fence; an attempt
/// after the first takes over the operation an earlier attempt prepared on exactly these VMs.
public struct PrepareCheckpointStep: Codable, Sendable, Equatable {
  /// The lab operation it belongs to (for the agent's log).
  public var operation: Int64
  public var vms: [String]
  public var name: String
  public var description: String
  public var disksOnly: Bool

  public init(operation: Int64, vms: [String], name: String, description: String = "", disksOnly: Bool = false) {
    self.operation = operation
    self.vms = vms
    self.name = name
    self.description = description
    self.disksOnly = disksOnly
  }
}

/// `prepare-restore`: phase one of a restore of these VMs to their checkpoint `checkpoint`, or each
/// one's most recent when it is nil (`Library.prepareRestore`).
public struct PrepareRestoreStep: Codable, Sendable, Equatable {
  public var operation: Int64
  public var vms: [String]
  public var checkpoint: String?

  public init(operation: Int64, vms: [String], checkpoint: String?) {
    self.operation = operation
    self.vms = vms
    self.checkpoint = checkpoint
  }
}

/// `decide`: commits or rolls back the operation this host's library prepared
/// (`Library.decidePrepared`). Without `prepared` (the host's prepare never reported one: it was
/// dead, late or failed) only a roll-back is asked, of whatever operation waits on exactly `vms`.
public struct DecideStep: Codable, Sendable, Equatable {
  public var operation: Int64
  /// `checkpoint` or `restore`: the kind of operation the library prepared.
  public var kind: String
  public var vms: [String]
  public var prepared: Int64?
  public var commit: Bool

  public init(operation: Int64, kind: String, vms: [String], prepared: Int64?, commit: Bool) {
    self.operation = operation
    self.kind = kind
    self.vms = vms
    self.prepared = prepared
    self.commit = commit
  }
}

/// `build-image` and `pull-template`: one image by name.
public struct ImageStep: Codable, Sendable, Equatable {
  public var image: String

  public init(image: String) { self.image = image }
}
