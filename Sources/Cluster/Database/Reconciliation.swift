import Foundation
import PostgresNIO

/// What an agent found when it compared its library with the VMs the cluster places on its host.
public struct LibraryDifferences: Sendable, Equatable {
  /// VMs in the library that the cluster did not place anywhere: placed on this host now.
  public var unplaced: [String] = []
  /// VMs placed on this host that the library does not hold: their placements were removed.
  public var missing: [String] = []
  /// VMs in the library that the cluster places on another host (VM → that host): left so, for a
  /// person to settle (two libraries hold a VM of that name).
  public var elsewhere: [String: String] = [:]

  public init() {}

  public var isEmpty: Bool { unplaced.isEmpty && missing.isEmpty && elsewhere.isEmpty }

  /// One line per difference, as the agent logs them and `host list` shows them.
  public var lines: [String] {
    unplaced.map { "VM '\($0)' is in this library but was placed on no host; placed here now" }
      + missing.map { "VM '\($0)' was placed on this host but is not in its library; its placement was removed" }
      + elsewhere.sorted { $0.key < $1.key }.map {
        "VM '\($0.key)' is in this library, but the cluster places it on host '\($0.value)'; left there"
      }
  }
}

extension ClusterDatabase {
  /// Makes the placements of `host` what its library holds (`vms`: each VM's key to its name) and
  /// records what differed on the host's row, for `host list`. Only the agent holding the host name
  /// writes its row.
  public func reconcile(host: String, agent: String, vms: [String: String]) async throws -> LibraryDifferences {
    let (added, removed, elsewhere) = try await reconcilePlacements(host: host, vms: vms)
    var found = LibraryDifferences()
    found.unplaced = added
    found.missing = removed
    found.elsewhere = elsewhere
    let lines = String(decoding: try JSONEncoder().encode(found.lines), as: UTF8.self)
    try await rows(
      """
      UPDATE host SET reconciled_at = now(), differences = \(lines)::jsonb
      WHERE name = \(host) AND agent = \(agent)
      """)
    return found
  }
}
