import Foundation
import LabKit

/// The engine of a script run with `--cluster`: the same calls `Library` answers for one library,
/// answered over the cluster database and the agents. A VM's state and checkpoints are read, in one
/// query across every host, from what the agents publish after each step that changes a VM and at
/// every reconciliation (`vm_summary`); only a VM its live host has published nothing of (an agent
/// of an older vmlab) is asked of the host, by a `describe-vms` step. What changes a VM is a
/// `vm-operation` step on its host, which publishes the VM before the step is seen done; labs are
/// `ClusterLabs` (all or nothing across hosts); new VMs are placed by `ClusterPlacement`. What
/// needs the host's files is refused with the command to run there.
public final class ClusterEngine: LabEngine {
  public let url: ClusterURL
  let db: ClusterDatabase
  let clusterLabs: ClusterLabs
  /// Seconds to wait for one host's answer before the call fails (the step goes on).
  public var stepTimeout: Double = 600
  var ids = ClusterIDs()
  /// What the hosts published of their VMs, by VM key, until this engine changes something or
  /// `freshSeconds` pass: a script reads a VM's properties many times between two operations.
  var known: [String: KnownVM] = [:]
  /// When `known` was last filled with every VM (`knownAll`).
  var knownAt = Date.distantPast
  var knownAll = false
  static let freshSeconds = 1.0
  /// Lab checkpoints a script asked for as a job: they run when asked, and `wait` hands them back.
  var labJobs: [Int64: Job] = [:]
  /// Called with a step's job each time it is read while the engine waits for a host (the command
  /// line shows each host's progress with it).
  public var stepProgress: @Sendable (ClusterJob) -> Void = { _ in }

  /// Connects to the cluster; fails, naming the database, when no host's agent is alive (nothing
  /// a script asks could be done).
  public init(url: ClusterURL) throws {
    self.url = url
    db = try runBlocking { try await ClusterDatabase.connect(url) }
    clusterLabs = ClusterLabs(url: url)
    do {
      let db = self.db
      _ = try runBlocking { try await db.migrate() }
      let hosts = try runBlocking { try await db.hosts() }
      ids.learn(hosts: hosts.map(\.name))
      guard hosts.contains(where: { $0.state == .alive }) else {
        throw ClusterError(
          .failed,
          hosts.isEmpty
            ? "cluster \(url) has no hosts: start `vmlab agent --cluster URL --library PATH` on each host, then run the script again"
            : "no host of cluster \(url) is alive (\(hosts.map { "\($0.name): \($0.state.rawValue)" }.joined(separator: ", "))): start their agents (`vmlab agent`), then run the script again"
        )
      }
    } catch {
      close()
      throw error
    }
  }

  public func close() {
    let db = self.db
    try? runBlocking { await db.close() }
  }

  public var root: String { url.description }
  public var defaultHostKind: HostKind { .virtualServer }

  /// The hosts VMs can run on, as the live agents offer them.
  public var hostNames: [String] {
    let db = self.db
    let hosts = (try? runBlocking { try await db.hosts() }) ?? []
    let names = Set(hosts.filter { $0.state == .alive }.flatMap(\.capabilities))
    return names.isEmpty ? ["simulated"] : names.sorted()
  }

  /// Runs `body` against the database on Swift's pool while this thread waits.
  func database<T: Sendable>(_ body: @escaping @Sendable (ClusterDatabase) async throws -> T) throws -> T {
    let db = self.db
    return try runBlocking { try await body(db) }
  }

  /// Forgets what the hosts said, after this engine changed something.
  func forget() {
    known = [:]
    knownAll = false
  }

  // MARK: Steps on a VM's host

  /// Runs one step on `host` as a job of its own and returns its result, or throws its error.
  func run<Arguments: Encodable>(_ kind: StepKind, _ arguments: Arguments, on host: String, target: String) throws
    -> String
  {
    let request = try StepRequest(host: host, kind: kind, arguments)
    let (timeout, progress) = (stepTimeout, stepProgress)
    let job = try database { db in
      let id = try await db.submitJob(kind: "script-\(kind.rawValue)", target: target, steps: [request], maxAttempts: 1)
      var placement = ClusterPlacement(db)
      placement.timeout = timeout
      placement.pollSeconds = 0.02
      return try await placement.wait(for: id, progress: progress)
    }
    let step = job.steps[0]
    guard step.state == "done" else {
      throw ClusterError(.failed, "host \(host): \(step.error ?? "the step \(step.state)")")
    }
    return step.result ?? ""
  }

  func decode<T: Decodable>(_ type: T.Type, _ text: String, from host: String) throws -> T {
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    do {
      return try decoder.decode(type, from: Data(text.utf8))
    } catch {
      throw ClusterError(
        .failed, "host \(host) answered what this vmlab cannot read (\(error)); is its agent the same vmlab version?")
    }
  }

  /// The host holding each VM the cluster places, by VM key.
  func placements() throws -> [String: PlacedVMStatus] {
    Dictionary(try database { db in try await db.placedVMs() }.map { (NameRules.key($0.name), $0) }) { a, _ in a }
  }

  /// The host that holds `vm`; throws when none does or its agent is not alive.
  func host(of vm: String) throws -> String {
    guard let placed = try placements()[NameRules.key(vm)] else {
      throw LabKitError(
        .notFound, "no VM '\(vm)' in cluster \(url); `vmlab --cluster URL vm list` shows the cluster's VMs")
    }
    guard placed.hostState == .alive else {
      throw ClusterError(
        .failed,
        "VM '\(placed.name)' is on host \(placed.host), which is \(placed.hostState.rawValue); start its agent (`vmlab agent`) and try again"
      )
    }
    return placed.host
  }

  /// The VMs `names` (every VM when nil) as their hosts last published them, remembered; the VM of
  /// a host that is not alive comes with that host's state (`readable` refuses it).
  @discardableResult
  func load(_ names: [String]?) throws -> [KnownVM] {
    let published = try database { db in try await db.publishedVMs(names) }
    if let names {
      let placed = Set(published.map { NameRules.key($0.name) })
      for name in names where !placed.contains(NameRules.key(name)) {
        throw LabKitError(
          .notFound, "no VM '\(name)' in cluster \(url); `vmlab --cluster URL vm list` shows the cluster's VMs")
      }
    }
    var found: [KnownVM] = []
    var unpublished: [String: [String]] = [:]
    for vm in published {
      guard let summary = vm.summary else {
        guard vm.hostState == .alive else {
          throw ClusterError(
            .failed,
            "VM '\(vm.name)' is on host \(vm.host), which is \(vm.hostState.rawValue) and never published it; start its agent (`vmlab agent`) and try again"
          )
        }
        unpublished[vm.host, default: []].append(vm.name)
        continue
      }
      found.append(
        KnownVM(
          host: vm.host, hostState: vm.hostState, summary: translated(summary, on: vm.host),
          publishedAt: vm.publishedAt))
    }
    if !unpublished.isEmpty { found += try ask(unpublished) }
    // A whole listing replaces what was remembered: a VM gone since is forgotten with it.
    if names == nil {
      known = [:]
      knownAt = Date()
    }
    for entry in found { known[NameRules.key(entry.summary.vm.name)] = entry }
    return found.sorted { NameRules.key($0.summary.vm.name) < NameRules.key($1.summary.vm.name) }
  }

  /// The VMs `names` (every VM when nil) with their hosts, each of which must be alive: what a host
  /// that stopped answering last published may no longer hold.
  @discardableResult
  func describe(_ names: [String]?) throws -> [(host: String, summary: VMSummary)] {
    try load(names).map { try readable($0) }
  }

  /// The VM of `entry`, or an error saying its host is not alive and what it last published.
  func readable(_ entry: KnownVM) throws -> (host: String, summary: VMSummary) {
    guard entry.hostState == .alive else {
      let vm = entry.summary.vm
      let when = entry.publishedAt.map { " at \(ISO8601DateFormatter().string(from: $0))" } ?? ""
      let checkpoints =
        entry.summary.checkpoints.count == 1 ? "1 checkpoint" : "\(entry.summary.checkpoints.count) checkpoints"
      throw ClusterError(
        .failed,
        "VM '\(vm.name)' is on host \(entry.host), which is \(entry.hostState.rawValue): its agent last published it\(when) as \(vm.state.rawValue) with \(checkpoints), which may no longer hold; start its agent (`vmlab agent`) and try again"
      )
    }
    return (entry.host, entry.summary)
  }

  /// Asks live hosts, by a `describe-vms` step each, for VMs they have published nothing of: an
  /// agent of an older vmlab publishes nothing. One step per host, all queued before any is
  /// waited for, so the hosts answer in parallel; an agent that publishes also publishes what it
  /// described, so the next read finds it in the table.
  private func ask(_ byHost: [String: [String]]) throws -> [KnownVM] {
    let requests = try byHost.sorted { $0.key < $1.key }.map {
      try StepRequest(host: $0.key, kind: .describeVMs, DescribeVMsStep(vms: $0.value))
    }
    let timeout = stepTimeout
    let job = try database { db in
      let id = try await db.submitJob(kind: "script-describe-vms", target: "", steps: requests, maxAttempts: 1)
      var placement = ClusterPlacement(db)
      placement.timeout = timeout
      placement.pollSeconds = 0.02
      return try await placement.wait(for: id)
    }
    var found: [KnownVM] = []
    for step in job.steps {
      guard step.state == "done" else {
        throw ClusterError(.failed, "host \(step.host) could not describe its VMs: \(step.error ?? step.state)")
      }
      for summary in try decode([VMSummary].self, step.result ?? "", from: step.host) {
        found.append(
          KnownVM(host: step.host, hostState: .alive, summary: translated(summary, on: step.host), publishedAt: Date()))
      }
    }
    return found
  }

  /// A host's summary with its ids made unique across the cluster.
  func translated(_ summary: VMSummary, on host: String) -> VMSummary {
    var summary = summary
    summary.vm.id = ids.id(summary.vm.id, on: host)
    summary.vm.currentCheckpointID = summary.vm.currentCheckpointID.map { ids.id($0, on: host) }
    summary.checkpoints = summary.checkpoints.map { checkpoint in
      var checkpoint = checkpoint
      checkpoint.id = ids.id(checkpoint.id, on: host)
      checkpoint.parentID = checkpoint.parentID.map { ids.id($0, on: host) }
      return checkpoint
    }
    return summary
  }

  /// The VM as its host last published it, read again when this engine changed something since.
  func summary(of vm: String) throws -> (host: String, summary: VMSummary) {
    if let entry = known[NameRules.key(vm)], entry.isFresh { return try readable(entry) }
    guard let entry = try load([vm]).first else {
      throw LabKitError(.notFound, "no VM '\(vm)' in cluster \(url)")
    }
    return try readable(entry)
  }

  /// One operation on one VM on its host; what the host answers is remembered.
  @discardableResult
  func operate(_ step: VMOperationStep) throws -> VMOperationResult {
    let host = try host(of: step.vm)
    forget()
    let result = try decode(
      VMOperationResult.self, try run(.vmOperation, step, on: host, target: step.vm), from: host)
    var translatedResult = result
    if let summary = result.summary {
      let mine = translated(summary, on: host)
      translatedResult.summary = mine
      known[NameRules.key(mine.vm.name)] = KnownVM(host: host, hostState: .alive, summary: mine, publishedAt: Date())
    }
    if var done = result.checkpoint {
      done.checkpoint.id = ids.id(done.checkpoint.id, on: host)
      done.checkpoint.parentID = done.checkpoint.parentID.map { ids.id($0, on: host) }
      translatedResult.checkpoint = done
    }
    return translatedResult
  }

  /// The VM and host of a cluster checkpoint id, and the library's own id.
  func locate(checkpoint id: Int64) throws -> (host: String, local: Int64, checkpoint: Checkpoint) {
    guard let (host, local) = ids.split(id) else {
      throw LabKitError(.notFound, "no checkpoint \(id) in cluster \(url); `vm:checkpoints()` lists a VM's")
    }
    let mine = known.values.first { $0.host == host && $0.summary.checkpoints.contains { $0.id == id } }
    // A whole listing includes the VMs of hosts that are not alive: only a readable one answers.
    let entries =
      try mine.map { [try summary(of: $0.summary.vm.name)] } ?? load(nil).filter { $0.host == host }.map(readable)
    for entry in entries where entry.host == host {
      if let checkpoint = entry.summary.checkpoints.first(where: { $0.id == id }) {
        return (host, local, checkpoint)
      }
    }
    throw LabKitError(.notFound, "no checkpoint \(id) in cluster \(url); `vm:checkpoints()` lists a VM's")
  }

  /// What a script cannot do in cluster mode, and where it can.
  func unavailable(_ call: String, vm: String? = nil) -> Error {
    guard let vm, let placed = try? placements()[NameRules.key(vm)] else {
      return ClusterError(
        .usage, "\(call) is not available with --cluster: run it on the VM's host with vmlab --library PATH")
    }
    let library = (try? database { db in try await db.hosts() })?.first { $0.name == placed.host }?.library ?? "PATH"
    return ClusterError(
      .usage,
      "\(call) is not available with --cluster: it needs the files of VM '\(placed.name)', which are on host \(placed.host); run it on host \(placed.host) with vmlab --library \(library)"
    )
  }
}
