import ArgumentParser
import Cluster
import Foundation
import LabKit

/// `vmlab --cluster URL vm start|save|shutdown|turn-off|remove|show|exec NAME`: each a
/// `vm-operation` step on the VM's host (through `ClusterEngine`, as a script's calls are), its
/// output the local command's with the host's name added.
struct ClusterVMCommands {
  let target: ClusterVMTarget

  init(cluster: ClusterOptions) { target = ClusterVMTarget(cluster: cluster) }

  /// Changes the power of each VM in turn (all located first: an unknown VM or a dead host changes
  /// none); a VM with a guest agent that starts is waited for, up to `readyTimeout` seconds.
  func power(
    _ names: [String], readyTimeout: Double = 0,
    _ change: (ClusterEngine, String) throws -> VirtualMachine
  ) throws {
    let placed = try target.locate(names)
    try target.withEngine { engine -> Void in
      for vm in placed {
        let changed = try change(engine, vm.name)
        let hasAgent = Hosts.registry.driver(named: changed.host) is GuestAgentHost
        guard readyTimeout > 0, changed.additions, changed.state == .running, hasAgent else {
          print("\(changed.name) is \(changed.state.rawValue) on host \(vm.host)")
          continue
        }
        let started = Date()
        do {
          try engine.waitUntilReady(guestOf: changed.name, timeout: readyTimeout)
        } catch let error as ClusterError {
          // As locally: the VM is left running (a slow guest may still come up); say how to go on.
          throw ClusterError(
            error.kind,
            "\(error.message)\nVM '\(changed.name)' was left running on host \(vm.host) (its guest may still be starting): `vmlab --cluster URL vm turn-off \(changed.name)` stops it"
          )
        }
        print(
          "\(changed.name) is running on host \(vm.host); its guest agent answered after \(String(format: "%.1f", Date().timeIntervalSince(started))) s"
        )
      }
    }
  }

  func remove(_ names: [String]) throws {
    let placed = try target.locate(names)
    try target.withEngine { engine -> Void in
      for vm in placed {
        try engine.removeVM(named: vm.name)
        print("removed VM \(vm.name) from host \(vm.host)")
      }
    }
  }

  func show(_ name: String, json: Bool) throws {
    let host = try target.locate([name])[0].host
    let (vm, checkpoints) = try target.withEngine { engine in
      (try engine.vm(named: name), try engine.checkpoints(vm: name))
    }
    if json { return try printJSON(ClusterVMShowJSON(vm: vm, clusterHost: host, checkpoints: checkpoints)) }
    print(
      "VM \(vm.name) on cluster host \(host): \(stateText(vm)), \(vm.hostKind.rawValue) on the \(vm.host) host, additions \(vm.additions ? "yes" : "no")"
    )
    print("hardware: \(vm.hardware.summary)")
    print("created \(shortDate(vm.created))")
    for disk in vm.disks {
      print("disk \(disk.slot): \(disk.path) (on host \(host))")
      for parent in disk.chain.dropFirst() { print("    over \(parent)") }
    }
    print("checkpoints: \(checkpoints.count)")
    if let current = vm.currentCheckpointID, let checkpoint = checkpoints.first(where: { $0.id == current }) {
      print("current checkpoint: \(checkpoint.id) '\(checkpoint.name)'")
    }
  }

  /// Runs the program in the guest through the VM's host's agent; its output passes through and
  /// its status is vmlab's.
  func exec(_ name: String, _ command: GuestCommand) throws {
    let vm = try target.locate([name])[0]
    let result = try target.withEngine { engine in try engine.run(command, inGuestOf: vm.name) }
    FileHandle.standardOutput.write(result.standardOutput)
    FileHandle.standardError.write(result.standardError)
    if result.status != 0 { throw ExitCode(result.status) }
  }
}

/// `vm show --json --cluster`: the VM as its host's library holds it, the host, and its checkpoints.
struct ClusterVMShowJSON: Encodable {
  var vm: VirtualMachine
  var clusterHost: String
  var checkpoints: [Checkpoint]

  enum Keys: String, CodingKey { case clusterHost, checkpoints }

  func encode(to encoder: Encoder) throws {
    // The VM's own members at the top level, as `vm show --json` prints them locally.
    try vm.encode(to: encoder)
    var container = encoder.container(keyedBy: Keys.self)
    try container.encode(clusterHost, forKey: .clusterHost)
    try container.encode(checkpoints, forKey: .checkpoints)
  }
}
