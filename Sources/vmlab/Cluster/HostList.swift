import ArgumentParser
import Cluster
import Foundation

/// `vmlab --cluster URL host list`: the cluster's hosts, alive or not.
struct HostList: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "list", abstract: "List the hosts of a cluster: alive or not, capacity, VMs (needs --cluster).",
    discussion: """
      A host is alive while its agent heartbeats, dead after three missed heartbeats (killed, paused, \
      cut off, or its machine down), stopped after its agent stopped cleanly. Ages come from the \
      database's clock, so hosts' clocks do not matter. DIFFERENCES is what the agent's last \
      comparison of its library with the cluster's placements found (--json lists them; the agent's \
      log says more).
      """)

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var cluster: ClusterOptions

  func run() throws {
    let hosts = try cluster.withDatabase { db in try await db.hosts() }
    if json { return try printJSON(hosts) }
    if hosts.isEmpty {
      return print(
        "no hosts yet: run \(ClusterError.startAgent) on each host (the README's \"Many hosts\" section)"
      )
    }
    var table = TextTable(
      "HOST", "STATE", "HEARTBEAT", "VMS", "STEPS", "DIFFERENCES", "MEMORY FREE", "DISK FREE", "LIBRARY")
    for host in hosts {
      table.add(
        host.name, host.state.rawValue, String(format: "%.1f s ago", host.heartbeatAge), String(host.vmCount),
        host.runningSteps == 0 ? "-" : "\(host.runningSteps) running",
        host.differences.isEmpty
          ? "-" : "\(host.differences.count) (see agent log)",
        "\(binarySize(host.capacity.memoryFree)) of \(binarySize(host.capacity.memoryTotal))",
        "\(binarySize(host.capacity.diskFree)) of \(binarySize(host.capacity.diskTotal))", host.library)
    }
    table.print()
  }
}
