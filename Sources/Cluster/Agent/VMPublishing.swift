import Foundation
import LabKit

// What an agent publishes of its library (`VMPublication`): after every step that changes VMs, the
// VMs the step names; at start and at every reconciliation, the whole library. Scripts run with
// `--cluster` read these instead of asking the host.

extension VMSummary {
  /// The VM as `library` holds it now, with its checkpoints and the space each holds.
  static func of(_ name: String, in library: Library) throws -> VMSummary {
    let checkpoints = try library.checkpoints(vm: name)
    return VMSummary(
      vm: try library.vm(named: name), checkpoints: checkpoints,
      spaces: try checkpoints.map { try library.space(of: $0.id) })
  }
}

extension VMPublication {
  /// Every VM of `library`.
  static func whole(_ library: Library) throws -> VMPublication {
    VMPublication(summaries: try library.vms().map { try VMSummary.of($0.name, in: library) }, whole: true)
  }

  /// The VMs `names` as `library` holds them now; a name it no longer holds is published as gone.
  static func of(_ names: [String], in library: Library) throws -> VMPublication {
    var publication = VMPublication(summaries: [], whole: false)
    let held = Set(try library.vms().map { NameRules.key($0.name) })
    var seen: Set<String> = []
    for name in names where seen.insert(NameRules.key(name)).inserted {
      if held.contains(NameRules.key(name)) {
        publication.summaries.append(try VMSummary.of(name, in: library))
      } else {
        publication.removed.append(name)
      }
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
    case .prepareCheckpoint: names = (try? decoder.decode(PrepareCheckpointStep.self, from: arguments))?.vms
    case .prepareRestore: names = (try? decoder.decode(PrepareRestoreStep.self, from: arguments))?.vms
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
