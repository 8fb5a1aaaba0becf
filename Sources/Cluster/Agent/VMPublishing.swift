import Foundation
import LabKit

// What an agent publishes of its library (`VMPublication`): after every step that changes VMs, the
// VMs the step names; at start and at every reconciliation, the whole library. Scripts run with
// `--cluster` read these instead of asking the host.

extension VMSummary {
  /// The VM as `library` holds it now, with its checkpoints and the space each holds.
  static func of(_ name: String, in library: Library) throws -> VMSummary {
    try summaries(of: [try library.vm(named: name)], checkpoints: try library.checkpoints(vm: name), in: library)[0]
  }

  /// `vms` with their checkpoints, taken from `checkpoints` (any VM's, in creation order).
  static func summaries(of vms: [VirtualMachine], checkpoints: [Checkpoint], in library: Library) throws
    -> [VMSummary]
  {
    let byVM = Dictionary(grouping: checkpoints) { NameRules.key($0.vm) }
    return try vms.map { vm in
      let own = byVM[NameRules.key(vm.name)] ?? []
      return VMSummary(vm: vm, checkpoints: own, spaces: try own.map { try library.space(of: $0.id) })
    }
  }
}

extension VMPublication {
  /// Every VM of `library`.
  static func whole(_ library: Library) throws -> VMPublication {
    let vms = try library.vms()
    return VMPublication(
      summaries: try VMSummary.summaries(of: vms, checkpoints: try library.checkpoints(), in: library), whole: true)
  }

  /// The VMs `names` as `library` holds them now; a name it no longer holds is published as gone.
  /// The library is read in two catalog reads (its VMs, its checkpoints) whatever the number of
  /// VMs: a lab's decide step publishes its host's whole share of the class.
  static func of(_ names: [String], in library: Library) throws -> VMPublication {
    var publication = VMPublication(summaries: [], whole: false)
    let held = Dictionary(try library.vms().map { (NameRules.key($0.name), $0) }) { first, _ in first }
    var seen: Set<String> = []
    var found: [VirtualMachine] = []
    for name in names where seen.insert(NameRules.key(name)).inserted {
      if let vm = held[NameRules.key(name)] { found.append(vm) } else { publication.removed.append(name) }
    }
    if !found.isEmpty {
      publication.summaries = try VMSummary.summaries(of: found, checkpoints: try library.checkpoints(), in: library)
    }
    return publication
  }

  /// The VMs a step of this kind may change (or describes), from its arguments; nil for a step
  /// that names no VM (images, templates, a description of the whole library) or names one this
  /// agent would refuse.
  static func vmsChanged(by step: ClaimedStep) -> [String]? {
    guard let kind = StepKind(rawValue: step.kind) else { return nil }
    let arguments = Data(step.arguments.utf8)
    let decoder = JSONDecoder()
    let names: [String]?
    switch kind {
    case .createVM: names = (try? decoder.decode(CreateVMStep.self, from: arguments)).map { [$0.name] }
    case .vmOperation: names = (try? decoder.decode(VMOperationStep.self, from: arguments)).map { [$0.vm] }
    case .startVMs: names = (try? decoder.decode(VMsStep.self, from: arguments))?.vms
    case .checkpointVMs: names = (try? decoder.decode(CheckpointVMsStep.self, from: arguments))?.vms
    case .restoreVMs: names = (try? decoder.decode(RestoreVMsStep.self, from: arguments))?.vms
    // A prepare step's VMs are published by the decide step that follows it (or, should none come,
    // by the next reconciliation): no client reads a lab's VMs between the phases, and publishing
    // them after both steps doubled what publishing cost the agents in every lab operation.
    case .prepareCheckpoint, .prepareRestore: names = nil
    case .decide: names = (try? decoder.decode(DecideStep.self, from: arguments))?.vms
    // What a host describes is published too, so the next read finds it without a step.
    case .describeVMs: names = (try? decoder.decode(DescribeVMsStep.self, from: arguments))?.vms
    case .buildImage, .pullTemplate: names = nil
    }
    // Names from the database are checked as names a user typed before the library sees them.
    guard let names, !names.isEmpty, names.allSatisfy({ (try? NameRules.validate($0, as: "VM")) != nil }) else {
      return nil
    }
    return names
  }
}
