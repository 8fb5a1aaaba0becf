import Foundation
import PostgresNIO

/// What an agent reports about its machine at registration and at every heartbeat.
public struct HostCapacity: Sendable, Equatable, Codable {
  public var memoryTotal: Int64
  public var memoryFree: Int64
  public var diskTotal: Int64
  public var diskFree: Int64

  public init(memoryTotal: Int64, memoryFree: Int64, diskTotal: Int64, diskFree: Int64) {
    self.memoryTotal = memoryTotal
    self.memoryFree = memoryFree
    self.diskTotal = diskTotal
    self.diskFree = diskFree
  }
}

/// One row of `host list`.
public struct HostStatus: Sendable, Codable, Equatable {
  public enum State: String, Sendable, Codable {
    /// Its agent's last heartbeat is recent.
    case alive
    /// No heartbeat for three of its intervals: killed, paused, cut off or its machine down.
    case dead
    /// Its agent stopped cleanly (SIGTERM or SIGINT).
    case stopped
  }

  public var name: String
  public var state: State
  public var address: String
  public var library: String
  public var agent: String
  public var capacity: HostCapacity
  public var capabilities: [String]
  /// Seconds since the last heartbeat, by the database's clock.
  public var heartbeatAge: Double
  public var heartbeatSeconds: Double
  public var vmCount: Int
  public var runningSteps: Int
  /// What the agent's last comparison of its library with the cluster's placements found (empty
  /// when they agreed), and how many seconds ago it ran (nil before its first).
  public var differences: [String]
  public var reconciledAge: Double?
}

extension ClusterDatabase {
  /// How many heartbeat intervals without one make a host dead.
  public static let missedHeartbeatsForDead = 3.0

  /// A host's state from its row: stopped by its agent, else alive until it missed
  /// `missedHeartbeatsForDead` heartbeats (by the database's clock), then dead.
  static func hostState(stopped: Bool, heartbeatAge: Double, heartbeatSeconds: Double) -> HostStatus.State {
    stopped ? .stopped : max(0, heartbeatAge) < heartbeatSeconds * missedHeartbeatsForDead ? .alive : .dead
  }

  /// Registers the host `name` for the agent `agent`, or takes over its row from an agent that is
  /// no longer alive. A live agent under the same name keeps it and this one is refused.
  public func register(
    host name: String, agent: String, address: String, library: String, capacity: HostCapacity,
    capabilities: [String], heartbeatSeconds: Double
  ) async throws {
    let capabilitiesJSON = String(decoding: try JSONEncoder().encode(capabilities), as: UTF8.self)
    let taken = try await rows(
      """
      INSERT INTO host AS h (name, address, library, agent, memory_total, memory_free, disk_total, disk_free,
        capabilities, heartbeat_seconds, last_heartbeat, stopped_at)
      VALUES (\(name), \(address), \(library), \(agent), \(capacity.memoryTotal), \(capacity.memoryFree),
        \(capacity.diskTotal), \(capacity.diskFree), \(capabilitiesJSON)::jsonb, \(heartbeatSeconds), now(), NULL)
      ON CONFLICT (name) DO UPDATE SET address = EXCLUDED.address, library = EXCLUDED.library,
        agent = EXCLUDED.agent, memory_total = EXCLUDED.memory_total, memory_free = EXCLUDED.memory_free,
        disk_total = EXCLUDED.disk_total, disk_free = EXCLUDED.disk_free, capabilities = EXCLUDED.capabilities,
        heartbeat_seconds = EXCLUDED.heartbeat_seconds, last_heartbeat = now(), stopped_at = NULL
      WHERE h.agent = EXCLUDED.agent OR h.stopped_at IS NOT NULL
        OR h.last_heartbeat < now() - make_interval(secs => h.heartbeat_seconds * \(Self.missedHeartbeatsForDead))
      RETURNING name
      """)
    guard taken.isEmpty else { return }
    let holder = try await rows(
      "SELECT agent, extract(epoch FROM now() - last_heartbeat)::float8 FROM host WHERE name = \(name)")
    let (otherAgent, age) = try holder.first?.decode((String, Double).self) ?? ("another agent", 0)
    throw ClusterError(
      .usage,
      "host name '\(name)' is held by a live agent (\(otherAgent), last heartbeat \(String(format: "%.1f", age)) s ago); stop that agent or give this one another --host-name"
    )
  }

  /// Records a heartbeat with the host's free capacity; false when another agent took the name
  /// (this one was paused or cut off for longer than its host counted as alive).
  public func heartbeat(host name: String, agent: String, capacity: HostCapacity) async throws -> Bool {
    let updated = try await rows(
      """
      UPDATE host SET last_heartbeat = now(), memory_total = \(capacity.memoryTotal),
        memory_free = \(capacity.memoryFree), disk_total = \(capacity.diskTotal), disk_free = \(capacity.diskFree)
      WHERE name = \(name) AND agent = \(agent) RETURNING name
      """)
    return !updated.isEmpty
  }

  /// A clean stop: the host shows as stopped, not dead.
  public func markStopped(host name: String, agent: String) async throws {
    try await rows("UPDATE host SET stopped_at = now() WHERE name = \(name) AND agent = \(agent)")
  }

  /// Every host, by name, with its state from the database's clock.
  public func hosts() async throws -> [HostStatus] {
    let found = try await rows(
      """
      SELECT h.name, h.address, h.library, h.agent, h.memory_total, h.memory_free, h.disk_total, h.disk_free,
        h.capabilities::text, extract(epoch FROM now() - h.last_heartbeat)::float8, h.heartbeat_seconds,
        h.stopped_at IS NOT NULL,
        (SELECT count(*) FROM vm_placement p WHERE p.host = h.name),
        (SELECT count(*) FROM job_step s WHERE s.host = h.name AND s.state = 'running'),
        h.differences::text, extract(epoch FROM now() - h.reconciled_at)::float8
      FROM host h ORDER BY h.name
      """)
    return try found.map { row in
      let columns = try row.decode(
        (
          String, String, String, String, Int64, Int64, Int64, Int64, String, Double, Double, Bool, Int64, Int64,
          String, Double?
        ).self)
      let (differencesJSON, reconciledAge) = (columns.14, columns.15)
      let name = try validatedName(columns.0, as: "host")
      let age = max(0, columns.9)
      let state = Self.hostState(stopped: columns.11, heartbeatAge: age, heartbeatSeconds: columns.10)
      let capabilities = (try? JSONDecoder().decode([String].self, from: Data(columns.8.utf8))) ?? []
      return HostStatus(
        name: name, state: state, address: columns.1, library: columns.2, agent: columns.3,
        capacity: HostCapacity(
          memoryTotal: columns.4, memoryFree: columns.5, diskTotal: columns.6, diskFree: columns.7),
        capabilities: capabilities, heartbeatAge: age, heartbeatSeconds: columns.10, vmCount: Int(columns.12),
        runningSteps: Int(columns.13),
        differences: (try? JSONDecoder().decode([String].self, from: Data(differencesJSON.utf8))) ?? [],
        reconciledAge: reconciledAge.map { max(0, $0) })
    }
  }

  /// Names of the hosts that exist, of those asked for.
  func existingHosts(_ names: [String]) async throws -> Set<String> {
    Set(try await rows("SELECT name FROM host WHERE name = ANY(\(names))").map { try $0.decode(String.self) })
  }
}
