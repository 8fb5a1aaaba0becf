import Foundation
import LabKit
import PostgresNIO

/// What an agent publishes of its library: the VMs it read, the VMs that left it, and whether the
/// summaries are the whole library (a start or a reconciliation) or only what a step touched.
public struct VMPublication: Sendable, Equatable {
  public var summaries: [VMSummary]
  /// Names of VMs the library no longer holds.
  public var removed: [String]
  /// The whole library: a VM published before and not named here is gone.
  public var whole: Bool

  public init(summaries: [VMSummary], removed: [String] = [], whole: Bool) {
    self.summaries = summaries
    self.removed = removed
    self.whole = whole
  }
}

/// A VM the cluster places, as its host's agent last published it, with that host's state now.
public struct PublishedVM: Sendable {
  public var name: String
  public var host: String
  public var hostState: HostStatus.State
  /// nil when the host's agent has published nothing of it (an agent of an older vmlab).
  public var summary: VMSummary?
  public var publishedAt: Date?
  /// When the cluster placed it there.
  public var placedAt: Date
}

extension ClusterDatabase {
  /// Publishes what `agent` read of `host`'s library: as `step`'s write (its fence is the version)
  /// or, without a step, under a token drawn now (the agent reads and publishes one thing at a
  /// time, so a later token is a later reading). Refused, with nothing written, when another agent
  /// holds the host name, the step's fence is stale, or the host published its whole library at a
  /// newer version since. A row is only ever replaced by a publication at least as new.
  @discardableResult
  public func publish(_ publication: VMPublication, host: String, agent: String, step: ClaimedStep? = nil)
    async throws -> Bool
  {
    try await transaction { db in
      try await db.writePublication(publication, host: host, agent: agent, step: step)
    }
  }

  /// Ends a step as `finishStep` does and, in the same transaction, publishes the VMs it changed:
  /// a client that sees the step done reads what it did. False, and nothing written, when its
  /// fence is stale.
  public func finishStep(
    step: ClaimedStep, succeeded: Bool, message: String, publishing publication: VMPublication?, host: String,
    agent: String
  ) async throws -> Bool {
    guard let publication else {
      return try await finishStep(step: step.id, fence: step.fence, succeeded: succeeded, message: message)
    }
    return try await transaction { db in
      guard try await db.writePublication(publication, host: host, agent: agent, step: step) else { return false }
      return try await db.finishStep(step: step.id, fence: step.fence, succeeded: succeeded, message: message)
    }
  }

  /// The publication's rows, inside the caller's transaction.
  private func writePublication(_ publication: VMPublication, host: String, agent: String, step: ClaimedStep?)
    async throws -> Bool
  {
    // The host row is locked so that two publications of one host are ordered.
    let held = try await rows("SELECT published_version FROM host WHERE name = \(host) AND agent = \(agent) FOR UPDATE")
    guard let floor = try held.first?.decode(Int64.self) else { return false }
    let version: Int64
    if let step {
      let running = try await rows(
        "SELECT 1 FROM job_step WHERE id = \(step.id) AND fence = \(step.fence) AND state = 'running'")
      guard !running.isEmpty else { return false }
      version = step.fence
    } else {
      version = try await rows("SELECT nextval('fence_token')")[0].decode(Int64.self)
    }
    guard version >= floor else { return false }

    let summaries = publication.summaries
    if !summaries.isEmpty {
      let keys = summaries.map { NameRules.key($0.vm.name) }
      let names = summaries.map(\.vm.name)
      let documents = try summaries.map(Self.document)
      try await rows(
        """
        INSERT INTO vm_summary (host, vm_key, vm, summary, version)
        SELECT \(host), u.key, u.vm, u.summary::jsonb, \(version)
        FROM unnest(\(keys)::text[], \(names)::text[], \(documents)::text[]) AS u(key, vm, summary)
        ON CONFLICT (host, vm_key) DO UPDATE SET vm = EXCLUDED.vm, summary = EXCLUDED.summary,
          version = EXCLUDED.version, published_at = now()
        WHERE vm_summary.version <= EXCLUDED.version
        """)
    }
    if !publication.removed.isEmpty {
      let keys = publication.removed.map(NameRules.key)
      try await rows(
        """
        INSERT INTO vm_summary (host, vm_key, vm, summary, version)
        SELECT \(host), u.key, u.vm, NULL, \(version)
        FROM unnest(\(keys)::text[], \(publication.removed)::text[]) AS u(key, vm)
        ON CONFLICT (host, vm_key) DO UPDATE SET summary = NULL, version = EXCLUDED.version, published_at = now()
        WHERE vm_summary.version <= EXCLUDED.version
        """)
    }
    if publication.whole {
      let kept = summaries.map { NameRules.key($0.vm.name) }
      try await rows(
        "DELETE FROM vm_summary WHERE host = \(host) AND version < \(version) AND NOT (vm_key = ANY(\(kept)::text[]))")
      try await rows("UPDATE host SET published_version = \(version) WHERE name = \(host)")
    }
    return true
  }

  /// The VMs the cluster places (only `names` when given), each with what its host last published
  /// of it and the host's state, in one query across every host. A VM its host published as gone
  /// is left out.
  public func publishedVMs(_ names: [String]? = nil) async throws -> [PublishedVM] {
    let keys = names?.map(NameRules.key) ?? []
    let found = try await rows(
      """
      SELECT p.vm, p.host, h.stopped_at IS NOT NULL, extract(epoch FROM now() - h.last_heartbeat)::float8,
        h.heartbeat_seconds, s.summary::text, s.published_at, p.placed_at
      FROM vm_placement p JOIN host h ON h.name = p.host
        LEFT JOIN vm_summary s ON s.host = p.host AND s.vm_key = p.vm_key
      WHERE (\(names == nil) OR p.vm_key = ANY(\(keys)::text[])) AND (s.vm_key IS NULL OR s.summary IS NOT NULL)
      ORDER BY p.vm_key
      """)
    return try found.map { row in
      let (vm, hostName, stopped, age, heartbeat, document, publishedAt, placedAt) = try row.decode(
        (String, String, Bool, Double, Double, String?, Date?, Date).self)
      let host = try validatedName(hostName, as: "host")
      var summary: VMSummary?
      if let document {
        summary = try Self.summary(document, host: host)
        try validatedName(summary!.vm.name, as: "VM")
      }
      return PublishedVM(
        name: try validatedName(vm, as: "VM"), host: host,
        hostState: Self.hostState(stopped: stopped, heartbeatAge: age, heartbeatSeconds: heartbeat),
        summary: summary, publishedAt: publishedAt, placedAt: placedAt)
    }
  }

  static func document(_ summary: VMSummary) throws -> String {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    return String(decoding: try encoder.encode(summary), as: UTF8.self)
  }

  static func summary(_ document: String, host: String) throws -> VMSummary {
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    do {
      return try decoder.decode(VMSummary.self, from: Data(document.utf8))
    } catch {
      throw ClusterError(
        .database,
        "host \(host) published a VM this vmlab cannot read (\(error)); is its agent the same vmlab version?")
    }
  }
}
