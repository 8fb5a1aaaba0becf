import ArgumentParser
import Cluster
import Foundation
import LabKit
import VHD

/// `vmlab --cluster URL vm create NAME …`: one VM on the host placement chooses (or `--host-name`),
/// made by that host's agent in its library.
struct ClusterVMCreate {
  var create: VMCreate
  var cluster: ClusterOptions

  /// The local flags that name files on this machine cannot reach another host's library.
  func refuseLocalOnly() throws {
    var given: [String] = []
    if create.from != nil { given.append("--from") }
    if create.linked { given.append("--linked") }
    if create.kernel != nil { given.append("--kernel") }
    if create.initrd != nil { given.append("--initrd") }
    if create.commandLine != nil { given.append("--append") }
    if create.accelerator != .auto { given.append("--accelerator") }
    guard given.isEmpty else {
      throw ValidationError(
        "\(given.joined(separator: ", ")) \(given.count == 1 ? "is" : "are") not taken with --cluster (\(given.contains("--accelerator") && given.count == 1 ? "each host picks its own" : "paths on this machine do not reach the chosen host's library")); use --disk or --image"
      )
    }
  }

  func run() throws {
    try refuseLocalOnly()
    let step = CreateVMStep(
      name: create.name, disks: create.disks.map(\.bytes), host: create.host.rawValue,
      hostKind: create.hostKind?.rawValue, additions: create.image == nil ? create.additions : nil,
      memory: create.memory.bytes, image: create.image, cpus: create.cpus)
    let host = create.hostName
    let shown = ShownProgress()
    let name = create.name
    let placed = try cluster.withDatabase { db in
      try await ClusterPlacement(db).createVMs([step], host: host, kind: "create-vm") { job in
        guard let step = job.steps.first else { return }
        // A line when the step changes state or another tenth is done (a pull of its image).
        let line = "vmlab: VM \(name) on host \(step.host): \(step.state)"
        let tenth = step.state == "running" && step.progress > 0 ? " (\(Int(step.progress * 10) * 10)%)" : ""
        if shown.isNew(line + tenth) { FileHandle.standardError.write(Data((line + tenth + "\n").utf8)) }
      }
    }
    for vm in placed {
      print("created VM \(vm.vm) on host \(vm.host): \(vm.message)")
    }
    for (index, size) in create.disks.enumerated() {
      if let note = sizeRoundingNote(requested: size.bytes, actual: DiskGeometry.rounding(size: size.bytes).size) {
        print("disk \(index + (create.image == nil ? 1 : 2)): \(note)")
      }
    }
  }
}
