import Foundation
import LabKit

/// Runs one claimed step on the agent's library through LabKit's public API. It runs on a thread
/// of its own (the engine blocks); between the parts of a step it asks `stillHeld` and stops when
/// the lease is gone, so a stale agent starts nothing more for a step another claim now owns.
struct StepRunner {
  /// What a step did: the line for `job list`, and the VMs it placed in this host's library.
  struct Outcome: Sendable {
    var message: String
    var placed: [String] = []
    /// The id of the operation a prepare step left waiting in the library, to record in the
    /// cluster database under the step's fence.
    var prepared: Int64? = nil
    /// VMs whose committed restore left its replaced files and manifests for after the step's end
    /// is recorded (`Library.tidy(vms:)`): the decision is carried out once the commit is in the
    /// catalog, and the coordinator waits for the last host's word.
    var untidied: [String] = []
  }

  /// The lease was lost between two parts of a step; what was done so far is kept (each part is
  /// all or nothing in the library) and the next attempt skips it.
  struct LeaseLost: Error {}

  let library: Library
  let stillHeld: () -> Bool
  let progress: (Double) -> Void
  /// Closes the library and opens it again, so that its list of operations waiting for a decision
  /// is read afresh from the journal (a retried prepare or a decide without an id looks there).
  var reopen: (() throws -> Library)? = nil
  /// Pulls and builds templates; without it, image steps need the image in the library already.
  var templates: AgentTemplates? = nil
  /// What this agent's prepare steps left for their decide steps.
  var preparedOperations: PreparedOperations? = nil

  func run(_ step: ClaimedStep) throws -> Outcome {
    guard let kind = StepKind(rawValue: step.kind) else {
      throw ClusterError(
        .usage,
        "unknown step kind '\(step.kind)'; this agent runs \(StepKind.allCases.map(\.rawValue).joined(separator: ", "))"
      )
    }
    let arguments = Data(step.arguments.utf8)
    switch kind {
    case .createVM: return try createVM(try decode(CreateVMStep.self, arguments, kind))
    case .startVMs: return try startVMs(try decode(VMsStep.self, arguments, kind))
    case .checkpointVMs: return try checkpointVMs(try decode(CheckpointVMsStep.self, arguments, kind))
    case .restoreVMs: return try restoreVMs(try decode(RestoreVMsStep.self, arguments, kind))
    case .prepareCheckpoint:
      return try prepareCheckpoint(try decode(PrepareCheckpointStep.self, arguments, kind), attempt: step.attempt)
    case .prepareRestore:
      return try prepareRestore(try decode(PrepareRestoreStep.self, arguments, kind), attempt: step.attempt)
    case .decide: return try decide(try decode(DecideStep.self, arguments, kind))
    case .buildImage: return try buildImage(try decode(ImageStep.self, arguments, kind))
    case .pullTemplate: return try pullTemplate(try decode(ImageStep.self, arguments, kind))
    case .describeVMs: return try describeVMs(try decode(DescribeVMsStep.self, arguments, kind))
    case .vmOperation: return try vmOperation(try decode(VMOperationStep.self, arguments, kind))
    }
  }

  private func decode<T: Decodable>(_ type: T.Type, _ data: Data, _ kind: StepKind) throws -> T {
    do {
      return try JSONDecoder().decode(type, from: data)
    } catch {
      throw ClusterError(.usage, "step '\(kind.rawValue)' has arguments this agent cannot read: \(error)")
    }
  }

  /// Names from the database are checked as names a user typed (they become folder names).
  func checked(_ names: [String]) throws -> [String] {
    guard !names.isEmpty else { throw ClusterError(.usage, "the step names no VMs") }
    for name in names { try NameRules.validate(name, as: "VM") }
    return names
  }

  private func createVM(_ arguments: CreateVMStep) throws -> Outcome {
    try NameRules.validate(arguments.name, as: "VM")
    // A retried step whose earlier attempt made the VM before its lease ran out: the creation was
    // all or nothing, so the VM is whole, and this attempt only records it.
    if let existing = try? library.vm(named: arguments.name) {
      return Outcome(
        message: "VM '\(existing.name)' already in the library (an earlier attempt made it)", placed: [existing.name])
    }
    var hostKind: HostKind?
    if let kind = arguments.hostKind {
      guard let parsed = HostKind(rawValue: kind) else {
        throw ClusterError(.usage, "host kind '\(kind)' is not virtual-server or hypervisor")
      }
      hostKind = parsed
    }
    let hardware = Hardware(memory: arguments.memory ?? Hardware.defaultMemory, cpus: arguments.cpus ?? 1)
    if let image = arguments.image {
      try NameRules.validate(image, as: "image")
      var pulled = ""
      if let templates, (try? ImageTemplates(library: library.root).manifest(of: image)) == nil {
        pulled = try templates.ensure(image: image, progress: progress) + "; "
      }
      guard stillHeld() else { throw LeaseLost() }
      let vm = try library.createVM(
        name: arguments.name, image: image, extraDiskSizes: arguments.disks, hostKind: hostKind,
        host: arguments.host ?? ImageTemplates.bootingHosts[0], hardware: hardware)
      return Outcome(
        message: "\(pulled)created VM '\(vm.name)' from image '\(image)' (\(vm.host) host)", placed: [vm.name])
    }
    let vm = try library.createVM(
      name: arguments.name, diskSizes: arguments.disks, additions: arguments.additions ?? false,
      hostKind: hostKind, host: arguments.host, hardware: hardware)
    return Outcome(message: "created VM '\(vm.name)' on host \(vm.host)", placed: [vm.name])
  }

  private func startVMs(_ arguments: VMsStep) throws -> Outcome {
    let names = try checked(arguments.vms)
    var started: [String] = []
    for (index, name) in names.enumerated() {
      guard stillHeld() else { throw LeaseLost() }
      if try library.vm(named: name).state != .running {
        _ = try library.start(vm: name)
        started.append(name)
      }
      progress(Double(index + 1) / Double(names.count))
    }
    return Outcome(
      message: started.isEmpty ? "all \(names.count) VMs were running" : "started \(started.joined(separator: ", "))")
  }

  private func checkpointVMs(_ arguments: CheckpointVMsStep) throws -> Outcome {
    let names = try checked(arguments.vms)
    try NameRules.validateCheckpoint(arguments.name)
    var taken: [String] = []
    var had: [String] = []
    for (index, name) in names.enumerated() {
      guard stillHeld() else { throw LeaseLost() }
      if (try? library.checkpoint(vm: name, named: arguments.name)) != nil {
        had.append(name)
      } else {
        try library.checkpoint(vm: name, name: arguments.name, description: arguments.description ?? "")
        taken.append(name)
      }
      progress(Double(index + 1) / Double(names.count))
    }
    var message = "checkpoint '\(arguments.name)' of \(taken.isEmpty ? "no VM" : taken.joined(separator: ", "))"
    if !had.isEmpty { message += "; \(had.joined(separator: ", ")) had it already (an earlier attempt)" }
    return Outcome(message: message)
  }

  private func restoreVMs(_ arguments: RestoreVMsStep) throws -> Outcome {
    let names = try checked(arguments.vms)
    let ids = try names.map { try library.checkpoint(vm: $0, named: arguments.checkpoint).id }
    guard stillHeld() else { throw LeaseLost() }
    let outcomes = try library.restore(checkpoints: ids)
    progress(1)
    return Outcome(
      message: "restored \(outcomes.map(\.vm).joined(separator: ", ")) to checkpoint '\(arguments.checkpoint)'")
  }

  private func buildImage(_ arguments: ImageStep) throws -> Outcome {
    try NameRules.validate(arguments.image, as: "image")
    guard let templates else { throw ClusterError(.failed, "this agent cannot build images") }
    return Outcome(message: try templates.build(image: arguments.image))
  }

  private func pullTemplate(_ arguments: ImageStep) throws -> Outcome {
    try NameRules.validate(arguments.image, as: "image")
    guard let templates else { throw ClusterError(.failed, "this agent cannot pull templates") }
    return Outcome(message: try templates.ensure(image: arguments.image, progress: progress))
  }
}
