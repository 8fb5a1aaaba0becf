import Cluster
import Foundation
import LabKit

/// `vmlab --cluster URL vm list`: every VM of the cluster with its host, as the host's agent last
/// published it (one query; no host is asked).
struct ClusterVMList {
  var json: Bool
  var cluster: ClusterOptions

  /// A line of the listing; `state`, `disks` and `checkpoints` are absent for a VM its host has not
  /// published.
  struct Listed: Encodable {
    var name: String
    var host: String
    var hostState: HostStatus.State
    var placedAt: Date
    var state: String?
    var disks: Int?
    var checkpoints: Int?
    var publishedAt: Date?

    init(_ vm: PublishedVM) {
      name = vm.name
      host = vm.host
      hostState = vm.hostState
      placedAt = vm.placedAt
      state = vm.summary?.vm.state.rawValue
      disks = vm.summary?.vm.disks.count
      checkpoints = vm.summary?.checkpoints.count
      publishedAt = vm.publishedAt
    }
  }

  func run() throws {
    let vms = try cluster.withDatabase { db in try await db.publishedVMs() }
    if json { return try printJSON(vms.map(Listed.init)) }
    if vms.isEmpty {
      return print("no VMs in the cluster; create one with `vmlab --cluster URL vm create NAME --disk 8G`")
    }
    var table = TextTable("NAME", "STATE", "DISKS", "CHECKPOINTS", "HOST", "HOST STATE")
    for vm in vms {
      guard let summary = vm.summary else {
        table.add(vm.name, "not published", "-", "-", vm.host, vm.hostState.rawValue)
        continue
      }
      // A host that is not alive cannot say what its VMs do now, only what they did.
      let state = stateText(summary.vm) + (vm.hostState == .alive ? "" : " (last known)")
      table.add(
        vm.name, state, String(summary.vm.disks.count), String(summary.checkpoints.count), vm.host,
        vm.hostState.rawValue)
    }
    table.print()
    let away = vms.filter { $0.hostState != .alive }
    if !away.isEmpty {
      print(
        "\n\(away.count) VM\(away.count == 1 ? "" : "s") on hosts that are not alive: \(away.map(\.name).joined(separator: ", ")); they wait for their host (disks are local)"
      )
    }
    let unpublished = vms.filter { $0.summary == nil }
    if !unpublished.isEmpty {
      print(
        "\(unpublished.count) VM\(unpublished.count == 1 ? "" : "s") not published by \(unpublished.count == 1 ? "its host" : "their hosts") yet: `vmlab --cluster URL vm show NAME` asks the host"
      )
    }
  }
}
