import ArgumentParser
import Cluster
import Foundation
import LabKit

/// The VMs a per-VM command names with `--cluster`, found in the database before anything is
/// queued: an unknown VM or a VM whose host is not alive stops the command with nothing queued,
/// and the command's engine (`ClusterEngine`, whose `vm-operation` steps do the work on the VM's
/// host) shows each host's progress on stderr while it waits.
struct ClusterVMTarget {
  let cluster: ClusterOptions

  /// Where each of `names` is, in the order given. Every VM is checked before any is changed, so a
  /// typo or a dead host among several changes none.
  ///
  /// A VM on a dead or stopped host is refused rather than queued for when its agent comes back:
  /// the command could not wait for it, and a VM started (or restored) hours later, in another
  /// class, would surprise whoever uses it then. Run the command again once the host is alive.
  func locate(_ names: [String]) throws -> [PlacedVMStatus] {
    let (placed, hosts) = try cluster.withDatabase { db in (try await db.placedVMs(), try await db.hosts()) }
    let url = try cluster.url()
    return try names.map { name in
      guard let vm = placed.first(where: { NameRules.key($0.name) == NameRules.key(name) }) else {
        throw LabKitError(.notFound, Self.unknown(name, hosts: hosts, url: url))
      }
      guard vm.hostState == .alive else {
        let age = hosts.first { $0.name == vm.host }.map {
          String(format: " (last heartbeat %.0f s ago)", $0.heartbeatAge)
        }
        throw ClusterError(
          .failed,
          "VM '\(vm.name)' is on host \(vm.host), which is \(vm.hostState.rawValue)\(age ?? ""): nothing was queued; its disks are on that host only, so start its agent there (`vmlab agent --host-name \(vm.host) …`) and run the command again"
        )
      }
      return vm
    }
  }

  /// The message for a VM no host holds: which hosts were searched, and how to list the VMs.
  static func unknown(_ name: String, hosts: [HostStatus], url: ClusterURL) -> String {
    let searched =
      hosts.isEmpty
      ? "the cluster has no hosts yet"
      : "searched hosts "
        + hosts.map { $0.state == .alive ? $0.name : "\($0.name) (\($0.state.rawValue))" }.joined(
          separator: ", ")
    return "no VM '\(name)' in cluster \(url) (\(searched)); `vmlab --cluster URL vm list` shows the cluster's VMs"
  }

  /// An engine on the cluster whose waits print each host's progress (`vmlab: VM web on host h2:
  /// running`, as `vm create --cluster` shows it) on stderr, once per change. The caller closes it.
  func engine() throws -> ClusterEngine {
    let engine = try ClusterEngine(url: try cluster.url())
    let shown = ShownProgress()
    engine.stepProgress = { job in
      for step in job.steps {
        let line = "vmlab: VM \(job.target) on host \(step.host): \(step.state)"
        if shown.isNew(line) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
      }
    }
    return engine
  }

  /// Runs `body` with an engine, closed afterwards whatever happens.
  func withEngine<T>(_ body: (ClusterEngine) throws -> T) throws -> T {
    let engine = try engine()
    defer { engine.close() }
    return try body(engine)
  }

  /// The refusal of a command that needs the files of `vm`, which are on its host: where to run it.
  func unavailable(_ command: String, vm: String) -> ClusterError {
    guard !vm.isEmpty else {
      return ClusterError(
        .usage,
        "\(command) is not available with --cluster: it needs the VM's files, which are on its host; run it there with vmlab --library PATH (`vmlab --cluster URL vm list` shows which host holds each VM)"
      )
    }
    let found = try? cluster.withDatabase { db in (try await db.placedVMs(), try await db.hosts()) }
    guard let found, let holder = found.0.first(where: { NameRules.key($0.name) == NameRules.key(vm) }) else {
      return ClusterError(
        .usage,
        "\(command) is not available with --cluster: it needs the files of VM '\(vm)', which are on its host (no host of the cluster holds a VM of that name; `vmlab --cluster URL vm list` shows where each VM is); run it there with vmlab --library PATH"
      )
    }
    let library = found.1.first { $0.name == holder.host }?.library ?? "PATH"
    return ClusterError(
      .usage,
      "\(command) is not available with --cluster: it needs the files of VM '\(holder.name)', which are on host \(holder.host); run it on host \(holder.host) with vmlab --library \(library)"
    )
  }
}

/// A command that needs a host's own files (a VM's console, its disks, files on this machine):
/// given `--cluster` it refuses, naming the host to run it on. With only `VMLAB_CLUSTER` set it
/// works on this machine's library, as before.
protocol NeedsHostFiles {}

extension NeedsHostFiles {
  /// Refuses when `--cluster` came before the command, naming the host that holds `vm` (the
  /// command has no `--cluster` option of its own, so it is never taken from the environment).
  func refuseCluster(_ command: String, vm: String) throws {
    guard LeadingOptions.current.cluster != nil else { return }
    throw ClusterVMTarget(cluster: try ClusterOptions.parse([])).unavailable(command, vm: vm)
  }
}
