import Foundation
import LabKit

/// Creates VMs across a cluster: chooses their hosts (`PlacementRule`) from the hosts' room, queues
/// one `create-vm` step per VM as one job, waits for it and says where each VM went. The command
/// line's `vm create --cluster` comes here, and so can a Lua binding.
public struct ClusterPlacement: Sendable {
  public let db: ClusterDatabase
  /// Seconds to wait for the job; the steps go on when the wait ends.
  public var timeout: Double = 1800
  /// Seconds between looks at the job.
  public var pollSeconds: Double = 0.2

  public init(_ db: ClusterDatabase) {
    self.db = db
  }

  /// Where `steps` would go, without creating anything (`host`: all on that host).
  public func plan(_ steps: [CreateVMStep], host: String? = nil) async throws -> [PlacedVM] {
    try check(steps)
    let rooms = try await self.rooms()
    let imageBytes = try await db.templateSizes()
    let hosts = try PlacementRule.choose(
      steps.map { PlacementNeed(step: $0, host: host, imageBytes: imageBytes) }, rooms: rooms)
    return zip(steps, hosts).map { PlacedVM(vm: $0.name, host: $1, message: "") }
  }

  /// Creates the VMs of `steps` (all on `host` when given), waits for them and returns where each
  /// went. Throws before anything is queued when a name is taken or nothing fits, and after the
  /// job when a step failed, naming the VM, its host and why.
  public func createVMs(
    _ steps: [CreateVMStep], host: String? = nil, kind: String = "create-vms",
    progress: @escaping @Sendable (ClusterJob) -> Void = { _ in }
  ) async throws -> [PlacedVM] {
    let jobID = try await submit(steps, host: host, kind: kind)
    let job = try await wait(for: jobID, progress: progress)
    var placed: [PlacedVM] = []
    var failures: [String] = []
    for (step, status) in zip(steps, job.steps) {
      if status.state == "done" {
        placed.append(PlacedVM(vm: step.name, host: status.host, message: status.result ?? ""))
      } else {
        failures.append("VM '\(step.name)' on host \(status.host): \(status.error ?? status.state)")
      }
    }
    guard failures.isEmpty else {
      let made =
        placed.isEmpty
        ? "none was created" : "created: \(placed.map { "\($0.vm) on \($0.host)" }.joined(separator: ", "))"
      throw ClusterError(.failed, "job \(jobID) failed: \(failures.joined(separator: "; ")); \(made)")
    }
    return placed
  }

  /// Chooses hosts and queues the job under the placement lock; returns the job's id.
  public func submit(_ steps: [CreateVMStep], host: String? = nil, kind: String = "create-vms") async throws -> Int64 {
    try check(steps)
    return try await db.withPlacementLock {
      let taken = try await db.vmsInUse(steps.map(\.name))
      if !taken.isEmpty {
        throw ClusterError(
          .usage,
          "VM name\(taken.count == 1 ? "" : "s") in use in the cluster: \(taken.sorted { $0.key < $1.key }.map { "'\($0.key)' on host \($0.value)" }.joined(separator: ", ")); choose another name; nothing was created"
        )
      }
      let rooms = try await rooms()
      let imageBytes = try await db.templateSizes()
      let hosts = try PlacementRule.choose(
        steps.map { PlacementNeed(step: $0, host: host, imageBytes: imageBytes) }, rooms: rooms)
      try await checkImages(steps, on: hosts, rooms: rooms)
      let target = steps.count == 1 ? steps[0].name : "\(steps.count) VMs"
      return try await db.submitJob(
        kind: kind, target: target,
        steps: try zip(steps, hosts).map { try StepRequest(host: $1, kind: .createVM, $0) })
    }
  }

  /// Waits until every step of the job is done or failed. A step whose host is no longer alive
  /// ends the wait with an error: it waits for that host (disks are local, nothing fails over).
  public func wait(for jobID: Int64, progress: @escaping @Sendable (ClusterJob) -> Void = { _ in }) async throws
    -> ClusterJob
  {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
      guard let job = try await db.jobs(ids: [jobID]).first else {
        throw ClusterError(.notFound, "no cluster job \(jobID)")
      }
      progress(job)
      if job.steps.allSatisfy({ $0.state == "done" || $0.state == "failed" }) { return job }
      let waiting = Set(job.steps.filter { $0.state == "queued" || $0.state == "running" }.map(\.host))
      let states = Dictionary(try await db.hosts().map { ($0.name, $0.state) }, uniquingKeysWith: { a, _ in a })
      if let gone = waiting.sorted().first(where: { states[$0] != .alive }) {
        throw ClusterError(
          .failed,
          "job \(jobID): host '\(gone)' is \(states[gone]?.rawValue ?? "gone") while its steps wait; they run when its agent is back (`vmlab --cluster URL job list` shows them)"
        )
      }
      if Date() > deadline {
        throw ClusterError(
          .failed,
          "job \(jobID) is not finished after \(Int(timeout)) s; it goes on (`vmlab --cluster URL job list` shows it)")
      }
      try await Task.sleep(nanoseconds: UInt64(pollSeconds * 1e9))
    }
  }

  private func rooms() async throws -> [HostRoom] {
    try await db.placementLedgers().map { HostRoom(name: $0.host.name, state: $0.host.state, ledger: $0.ledger) }
  }

  /// Names checked as a user's, each once.
  private func check(_ steps: [CreateVMStep]) throws {
    guard !steps.isEmpty else { throw ClusterError(.usage, "no VMs to create") }
    var seen: Set<String> = []
    for step in steps {
      do {
        try NameRules.validate(step.name, as: "VM")
        if let image = step.image { try NameRules.validate(image, as: "image") }
      } catch let error as LabKitError {
        throw ClusterError(.usage, error.message)
      }
      guard seen.insert(NameRules.key(step.name)).inserted else {
        throw ClusterError(.usage, "VM '\(step.name)' is asked for twice; nothing was created")
      }
    }
  }

  /// Every image VM's image must be on its host already or on a live host it can be pulled from.
  private func checkImages(_ steps: [CreateVMStep], on hosts: [String], rooms: [HostRoom]) async throws {
    let images = Set(steps.compactMap(\.image))
    guard !images.isEmpty else { return }
    let live = Set(rooms.filter { $0.state == .alive }.map(\.name))
    let registered = try await db.templates()
    for image in images.sorted() {
      let holders = registered.filter { $0.image == image }.map(\.host)
      let targets = Set(zip(steps, hosts).filter { $0.0.image == image }.map(\.1))
      if targets.isSubset(of: Set(holders)) { continue }
      guard holders.contains(where: live.contains) else {
        let built =
          holders.isEmpty
          ? "no host has it"
          : "only \(holders.sorted().joined(separator: ", ")), not live, \(holders.count == 1 ? "has" : "have") it"
        throw ClusterError(
          .failed,
          "image '\(image)' cannot reach the chosen hosts: \(built); build it with `vmlab --cluster URL image build \(image) --host-name HOST` (or start the agent of a host that has it); nothing was created"
        )
      }
    }
  }
}
