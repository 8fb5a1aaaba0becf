import Foundation
import LabKit

/// `describe-vms`: these VMs (all of the library's when nil) with their checkpoints.
public struct DescribeVMsStep: Codable, Sendable, Equatable {
  public var vms: [String]?

  public init(vms: [String]?) { self.vms = vms }
}

/// One VM as its host's library holds it, with its checkpoints; ids are the library's own.
public struct VMSummary: Codable, Sendable, Equatable {
  public var vm: VirtualMachine
  public var checkpoints: [Checkpoint]
  /// The bytes each checkpoint holds on its own (`Library.space(of:)`), in `checkpoints` order.
  public var spaces: [UInt64]
}

/// `vm-operation`: one call of the engine on one VM of the agent's library.
public struct VMOperationStep: Codable, Sendable, Equatable {
  public enum Operation: String, Codable, Sendable {
    case start, shutDown = "shut-down", turnOff = "turn-off", save, remove
    /// A checkpoint named `name` (with `description`, `disksOnly`).
    case checkpoint
    /// Restore, merge or remove the checkpoint `checkpoint` (the library's id).
    case restore, merge, removeCheckpoint = "remove-checkpoint"
    /// Run `command` in the real guest; wait until the guest answers (`timeout` seconds).
    case exec, waitReady = "wait-ready"
  }

  public var vm: String
  public var operation: Operation
  public var name: String?
  public var description: String?
  public var disksOnly: Bool?
  public var checkpoint: Int64?
  public var command: GuestCommandStep?
  public var timeout: Double?

  public init(
    vm: String, operation: Operation, name: String? = nil, description: String? = nil, disksOnly: Bool? = nil,
    checkpoint: Int64? = nil, command: GuestCommandStep? = nil, timeout: Double? = nil
  ) {
    self.command = command
    self.timeout = timeout
    self.vm = vm
    self.operation = operation
    self.name = name
    self.description = description
    self.disksOnly = disksOnly
    self.checkpoint = checkpoint
  }
}

/// A command for the guest as a step carries it (`GuestCommand`).
public struct GuestCommandStep: Codable, Sendable, Equatable {
  public var path: String
  public var arguments: [String]
  public var input: Data?
  public var timeout: Double

  public init(_ command: GuestCommand) {
    path = command.path
    arguments = command.arguments
    input = command.input
    timeout = command.timeout
  }
}

/// What a command left in the guest, as a step answers it (`GuestCommandResult`).
public struct GuestOutput: Codable, Sendable, Equatable {
  public var standardOutput: Data
  public var standardError: Data
  public var status: Int32
}

/// What a `vm-operation` step answers: the VM afterwards (nil once removed) and what the call
/// returns besides.
public struct VMOperationResult: Codable, Sendable, Equatable {
  public var summary: VMSummary?
  public var checkpoint: CheckpointResult?
  public var plan: OperationPlan?
  public var guest: GuestOutput?
}

// The agent's side: the calls run through LabKit's public API on the agent's own library.
extension StepRunner {
  func describeVMs(_ arguments: DescribeVMsStep) throws -> Outcome {
    let names = try arguments.vms.map(checked) ?? library.vms().map(\.name)
    let summaries = try names.map { try summary(of: $0) }
    return Outcome(message: try Self.json(summaries))
  }

  func vmOperation(_ arguments: VMOperationStep) throws -> Outcome {
    let name = try checked([arguments.vm])[0]
    var result = VMOperationResult()
    guard stillHeld() else { throw LeaseLost() }
    switch arguments.operation {
    case .start: _ = try library.start(vm: name)
    case .shutDown: _ = try library.shutDown(vm: name)
    case .turnOff: _ = try library.turnOff(vm: name)
    case .save: _ = try library.save(vm: name)
    case .remove:
      try library.removeVM(named: name)
      return Outcome(message: try Self.json(result))
    case .checkpoint:
      let checkpointName = arguments.name ?? ""
      try NameRules.validateCheckpoint(checkpointName)
      result.checkpoint = try library.checkpoint(
        vm: name, name: checkpointName, description: arguments.description ?? "",
        disksOnly: arguments.disksOnly ?? false)
    case .restore:
      let (plan, done) = try library.restore(checkpoint: try checkpointID(arguments, of: name), whatIf: false)
      result.plan = plan
      result.checkpoint = done
    case .merge: result.plan = try library.merge(checkpoint: try checkpointID(arguments, of: name), whatIf: false)
    case .removeCheckpoint:
      result.plan = try library.remove(checkpoint: try checkpointID(arguments, of: name), whatIf: false)
    case .exec:
      guard let step = arguments.command else {
        throw ClusterError(.usage, "step 'exec' of VM '\(name)' names no command")
      }
      let command = GuestCommand(path: step.path, arguments: step.arguments, input: step.input, timeout: step.timeout)
      let done = try library.run(command, inGuestOf: name)
      result.guest = GuestOutput(
        standardOutput: done.standardOutput, standardError: done.standardError, status: done.status)
    case .waitReady:
      try library.waitUntilReady(guestOf: name, timeout: arguments.timeout ?? GuestCommand.defaultTimeout)
    }
    result.summary = try summary(of: name)
    return Outcome(message: try Self.json(result))
  }

  /// The checkpoint the step names, which must be one of its VM's (a step cannot reach another).
  private func checkpointID(_ arguments: VMOperationStep, of vm: String) throws -> Int64 {
    guard let id = arguments.checkpoint else {
      throw ClusterError(.usage, "step '\(arguments.operation.rawValue)' of VM '\(vm)' names no checkpoint")
    }
    guard try library.checkpoints(vm: vm).contains(where: { $0.id == id }) else {
      throw ClusterError(.notFound, "VM '\(vm)' has no checkpoint \(id) on this host")
    }
    return id
  }

  private func summary(of name: String) throws -> VMSummary { try VMSummary.of(name, in: library) }

  static func json<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    return String(decoding: try encoder.encode(value), as: UTF8.self)
  }
}
