import ArgumentParser
import Cluster
import Foundation

/// The `lab` commands with `--cluster`: labs of VMs on any hosts, checkpointed and restored on
/// every host at once through `ClusterLabs`, with each host's progress on stderr while waiting.
struct ClusterLabCommands {
  let cluster: ClusterOptions

  private func labs() throws -> ClusterLabs { ClusterLabs(url: try cluster.url()) }

  func create(_ name: String, vms: [String], add: Bool) throws {
    let labs = try labs()
    let lab = try runBlocking { try await labs.create(lab: name, vms: vms, add: add) }
    let hosts = lab.membersByHost.map { "\($0.host): \($0.vms.joined(separator: ", "))" }
    print("lab \(lab.name): \(hosts.isEmpty ? "no VMs" : hosts.joined(separator: "; "))")
  }

  func remove(_ name: String) throws {
    let labs = try labs()
    let lab = try runBlocking { try await labs.show(lab: name) }
    try runBlocking { try await labs.remove(lab: name) }
    print("removed lab \(lab.name) from the cluster; its VMs stay on their hosts")
  }

  func list(json: Bool) throws {
    let labs = try labs()
    let found = try runBlocking { try await labs.list() }
    if json { return try printJSON(found) }
    if found.isEmpty {
      return print("no labs in the cluster; create one with `vmlab --cluster URL lab create NAME VM…`")
    }
    var table = TextTable("NAME", "VMS", "HOSTS", "OPERATION")
    for lab in found {
      let hosts = lab.membersByHost.map { part in
        let state = lab.members.first { $0.host == part.host }?.hostState ?? ""
        return "\(part.host) \(part.vms.count)\(state == "alive" ? "" : " (\(state))")"
      }
      table.add(
        lab.name, String(lab.members.count), hosts.joined(separator: ", "), lab.operation.map(operationLine) ?? "-")
    }
    table.print()
  }

  func show(_ name: String, json: Bool) throws {
    let labs = try labs()
    let lab = try runBlocking { try await labs.show(lab: name) }
    if json { return try printJSON(lab) }
    print("lab \(lab.name), \(lab.members.count) VMs on \(lab.membersByHost.count) hosts")
    var table = TextTable("VM", "HOST", "HOST STATE")
    for member in lab.members {
      table.add(member.vm, member.host.isEmpty ? "-" : member.host, member.hostState)
    }
    table.print()
    guard let open = lab.operation else { return }
    print("\nopen operation: \(operationLine(open)), started \(shortDate(open.createdAt)) by \(open.createdBy)")
    var parts = TextTable("HOST", "PREPARE", "DECISION")
    for part in open.hosts {
      let prepared = part.prepareState.map { $0 == "done" ? "prepared" : $0 } ?? "-"
      let decided: String
      if open.decision == nil {
        decided = "-"
      } else if let state = part.decideState {
        decided = state == "done" ? "carried out" : "\(state) (owed)"
      } else {
        decided = open.hostsOwingTheDecision.contains(part) ? "owed, not queued yet" : "not needed"
      }
      parts.add("\(part.host) (\(part.hostState))", prepared, decided)
    }
    parts.print()
  }

  /// Runs a checkpoint or restore, printing each host's progress as it changes; exits 1 with the
  /// reason when it did not commit everywhere.
  func operate(
    json: Bool,
    _ body:
      @escaping @Sendable (ClusterLabs, @escaping @Sendable (LabOperationStatus) -> Void) async throws ->
      LabOperationStatus
  ) throws {
    let labs = try labs()
    let reporter = ProgressReporter()
    do {
      let done = try runBlocking { try await body(labs) { reporter.show($0) } }
      if json { return try printJSON(done) }
      printParts(done)
    } catch let failure as LabOperationFailure {
      if json, let operation = failure.operation { try printJSON(operation) }
      throw failure
    }
  }

  private func printParts(_ operation: LabOperationStatus) {
    let decision = operation.decision == "commit" ? "committed" : "rolled back"
    print("lab \(operation.lab): \(operation.summary) \(decision) on \(operation.hosts.count) hosts")
    var table = TextTable("HOST", "VMS", "RESULT")
    for part in operation.hosts {
      table.add(part.host, part.vms.joined(separator: ", "), part.decideResult ?? part.decideState ?? "-")
    }
    table.print()
  }

  private func operationLine(_ operation: LabOperationStatus) -> String {
    let state: String
    if let decision = operation.decision {
      let owing = operation.hostsOwingTheDecision.map(\.host)
      state =
        owing.isEmpty ? "decided (\(decision))" : "decided (\(decision)), owed by \(owing.joined(separator: ", "))"
    } else {
      state = "preparing"
    }
    return "\(operation.summary) \(state)"
  }
}

/// Prints a line on stderr whenever a host's part of the operation changes.
private final class ProgressReporter: @unchecked Sendable {
  private let lock = NSLock()
  private var last: [String: String] = [:]

  func show(_ status: LabOperationStatus) {
    var lines: [String] = []
    lock.withLock {
      for part in status.hosts {
        let now = describe(part, decision: status.decision)
        if last[part.host] != now {
          last[part.host] = now
          lines.append("\(part.host): \(now)")
        }
      }
    }
    if !lines.isEmpty { FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8)) }
  }

  private func describe(_ part: LabOperationStatus.HostPart, decision: String?) -> String {
    if let state = part.decideState {
      let verb = decision == "commit" ? "commit" : "roll-back"
      return state == "done" ? "\(verb) done" : "\(verb) \(state)"
    }
    switch part.prepareState {
    case "done": return "prepared \(part.vms.count) VM\(part.vms.count == 1 ? "" : "s")"
    case "failed": return "prepare failed: \(part.prepareError ?? "")"
    case let state?: return "prepare \(state)\(part.hostState == "alive" ? "" : " (host \(part.hostState))")"
    case nil: return "waiting"
    }
  }
}

/// `--timeout SECONDS` of a lab operation across hosts: how long every host has to prepare (and
/// then to carry out the decision) before the operation is rolled back or reported owed.
struct ClusterLabTimeout: ParsableArguments {
  @Option(
    help: ArgumentHelp(
      "With --cluster: seconds every host has to prepare before all are rolled back (default 300).",
      valueName: "seconds"))
  var timeout: Double?

  func seconds() throws -> Double {
    guard let timeout else { return 300 }
    guard timeout > 0, timeout.isFinite else {
      throw ValidationError("--timeout must be a number of seconds more than 0, not \(timeout)")
    }
    return timeout
  }
}
