import Foundation
import LabKit
import PostgresNIO

/// A VM of the cluster as `vm list --cluster` shows it: which host's library holds it.
public struct PlacedVMStatus: Sendable, Codable, Equatable {
  public var name: String
  public var host: String
  /// The state of that host: alive, dead or stopped.
  public var hostState: HostStatus.State
  public var placedAt: Date
}

extension ClusterDatabase {
  /// Taken (per connection) while a client chooses hosts and queues its steps, so two clients
  /// placing at once see each other's VMs instead of both filling the same room.
  static let placementLockKey: Int64 = 0x766D_6C61_6270_6C63

  /// Runs `body` holding the placement lock; released when it returns or throws.
  func withPlacementLock<T: Sendable>(_ body: () async throws -> T) async throws -> T {
    try await rows("SELECT pg_advisory_lock(\(Self.placementLockKey))")
    do {
      let value = try await body()
      try await rows("SELECT pg_advisory_unlock(\(Self.placementLockKey))")
      return value
    } catch {
      _ = try? await rows("SELECT pg_advisory_unlock(\(Self.placementLockKey))")
      throw error
    }
  }

  /// Records what the agent of `host` offers to cluster VMs (nil: no limit beyond what it measures).
  public func setOffer(host: String, agent: String, memory: Int64?, disk: Int64?) async throws {
    try await rows(
      "UPDATE host SET memory_offered = \(memory), disk_offered = \(disk) WHERE name = \(host) AND agent = \(agent)")
  }

  /// Every host with what placement needs to know of it.
  public func placementLedgers() async throws -> [(host: HostStatus, ledger: HostRoom.Ledger)] {
    let hosts = try await hosts()
    var offers: [String: (Int64?, Int64?)] = [:]
    for row in try await rows("SELECT name, memory_offered, disk_offered FROM host") {
      let (name, memory, disk) = try row.decode((String, Int64?, Int64?).self)
      offers[name] = (memory, disk)
    }
    let imageBytes = try await templateSizes()
    var ledgers: [String: HostRoom.Ledger] = [:]
    for host in hosts {
      let offer = offers[host.name] ?? (nil, nil)
      ledgers[host.name] = HostRoom.Ledger(
        measuredMemory: host.capacity.memoryFree, measuredDisk: host.capacity.diskFree, offeredMemory: offer.0,
        offeredDisk: offer.1)
    }
    // Steps that create VMs and are not over, and done ones whose VM is still where they made it.
    let steps = try await rows(
      """
      SELECT s.host, s.state, s.arguments::text, s.state = 'done' AND s.finished_at > h.last_heartbeat,
        EXISTS (SELECT 1 FROM vm_placement p WHERE p.host = s.host AND p.vm_key = lower(s.arguments->>'name'))
      FROM job_step s JOIN host h ON h.name = s.host
      WHERE s.kind = \(StepKind.createVM.rawValue) AND s.state IN ('queued', 'running', 'done')
      """)
    for row in steps {
      let (host, state, arguments, afterHeartbeat, stillPlaced) = try row.decode(
        (String, String, String, Bool, Bool).self)
      guard let step = try? JSONDecoder().decode(CreateVMStep.self, from: Data(arguments.utf8)) else { continue }
      let need = PlacementNeed(step: step, imageBytes: imageBytes)
      if state != "done" || afterHeartbeat { ledgers[host]?.sinceHeartbeat.append(need) }
      if state != "done" || stillPlaced { ledgers[host]?.committed.append(need) }
    }
    return hosts.map { ($0, ledgers[$0.name]!) }
  }

  /// Of `names`, those the cluster holds already or is creating, with their host.
  public func vmsInUse(_ names: [String]) async throws -> [String: String] {
    let keys = names.map(NameRules.key)
    var found: [String: String] = [:]
    for row in try await rows("SELECT vm, host FROM vm_placement WHERE vm_key = ANY(\(keys))") {
      let (vm, host) = try row.decode((String, String).self)
      found[vm] = host
    }
    let pending = try await rows(
      """
      SELECT arguments->>'name', host FROM job_step
      WHERE kind = \(StepKind.createVM.rawValue) AND state IN ('queued', 'running')
        AND lower(arguments->>'name') = ANY(\(keys))
      """)
    for row in pending {
      let (vm, host) = try row.decode((String, String).self)
      found[vm] = host
    }
    return found
  }

  /// Every VM the cluster places, by name, with its host's state.
  public func placedVMs() async throws -> [PlacedVMStatus] {
    let states = Dictionary(try await hosts().map { ($0.name, $0.state) }, uniquingKeysWith: { a, _ in a })
    return try await rows("SELECT vm, host, placed_at FROM vm_placement ORDER BY vm_key").map { row in
      let (vm, host, at) = try row.decode((String, String, Date).self)
      return PlacedVMStatus(
        name: try validatedName(vm, as: "VM"), host: try validatedName(host, as: "host"),
        hostState: states[host] ?? .dead, placedAt: at)
    }
  }
}
