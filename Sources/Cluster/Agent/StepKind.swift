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
  /// Arguments `ImageStep`: build the image into the agent's library (it is then registered).
  case buildImage = "build-image"
  /// Arguments `ImageStep`: copy the image's template from a host that has it, verified.
  case pullTemplate = "pull-template"
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

/// `build-image` and `pull-template`: one image by name.
public struct ImageStep: Codable, Sendable, Equatable {
  public var image: String

  public init(image: String) { self.image = image }
}
