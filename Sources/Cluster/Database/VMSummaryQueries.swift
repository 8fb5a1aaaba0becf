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

/// What the database answered to a step's end that it recorded.
public struct StepEnding: Sendable, Equatable {
  /// Whether another step was queued for the host as this one ended: the agent claims it at once.
  /// Otherwise it waits for the notification of the next one (a step queued after the answer was
  /// read notifies when its transaction commits), rather than asking for a step on the way out of
  /// every step, just when a lab operation's coordinator decides.
  public var moreQueued: Bool
}

extension ClusterDatabase {
  /// Publishes what `agent` read of `host`'s whole library (at start, at a reconciliation) under a
  /// token drawn now: the agent reads and publishes one thing at a time, so a later token is a
  /// later reading, and the token becomes the host's floor: a step claimed before it can no longer
  /// publish. Refused, with nothing written, when another agent holds the host name.
  @discardableResult
  public func publish(_ publication: VMPublication, host: String, agent: String) async throws -> Bool {
    try await transaction { db in
      // The host row is locked so that two publications of one host are ordered.
      let held = try await db.rows(
        "SELECT published_version FROM host WHERE name = \(host) AND agent = \(agent) FOR UPDATE")
      guard !held.isEmpty else { return false }
      let version = try await db.rows("SELECT nextval('fence_token')")[0].decode(Int64.self)
      let (keys, names, documents) = try Self.columns(of: publication)
      try await db.rows(
        """
        INSERT INTO vm_summary (host, vm_key, vm, summary, version)
        SELECT \(host), u.key, u.vm, NULLIF(u.summary, '')::jsonb, \(version)
        FROM unnest(\(keys)::text[], \(names)::text[], \(documents)::text[]) AS u(key, vm, summary)
        ON CONFLICT (host, vm_key) DO UPDATE SET vm = EXCLUDED.vm, summary = EXCLUDED.summary,
          version = EXCLUDED.version, published_at = now()
        WHERE vm_summary.version <= EXCLUDED.version
        """)
      guard publication.whole else { return true }
      let kept = publication.summaries.map { NameRules.key($0.vm.name) }
      try await db.rows(
        "DELETE FROM vm_summary WHERE host = \(host) AND version < \(version) AND NOT (vm_key = ANY(\(kept)::text[]))")
      try await db.rows("UPDATE host SET published_version = \(version) WHERE name = \(host)")
      return true
    }
  }

  /// Ends a step as done (with what it did) or failed (with why) and, in the same statement, writes
  /// what it leaves for others to read: the VMs it changed (`publishing`, under its fence, so that
  /// a client that sees the step done reads what it did) and the operation a prepare step left
  /// waiting in the library (`prepared`). Nil, and nothing written, when its fence is stale, when
  /// another agent holds the host name, or when the host published its whole library since the
  /// step was claimed. One statement, one round trip: an agent's last word on a lab operation's
  /// step is on the operation's critical path. A step of a lab operation wakes its coordinator
  /// (`labStepsChannel`) when the statement commits, saying when the job has nothing more to wait
  /// for (`LabStepEnd`).
  public func finishStep(
    step: ClaimedStep, succeeded: Bool, message: String, publishing publication: VMPublication? = nil,
    prepared: Int64? = nil, host: String, agent: String
  ) async throws -> StepEnding? {
    let (keys, names, documents) = try Self.columns(of: publication ?? VMPublication(summaries: [], whole: false))
    return try await rows(
      FinishStepStatement(
        host: host, agent: agent, succeeded: succeeded, message: message, step: step.id, fence: step.fence,
        publishing: publication != nil, prepared: prepared, keys: keys, names: names, documents: documents)
    ).first
  }

  /// A publication as the columns `unnest` turns back into `vm_summary` rows: keys, names and
  /// documents, an empty document for a VM the library no longer holds.
  private static func columns(of publication: VMPublication) throws -> ([String], [String], [String]) {
    let removed = publication.removed
    return (
      publication.summaries.map { NameRules.key($0.vm.name) } + removed.map(NameRules.key),
      publication.summaries.map(\.vm.name) + removed,
      try publication.summaries.map(Self.document) + removed.map { _ in "" }
    )
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

/// `finishStep`'s statement, prepared once per connection: an agent runs it for every step. The
/// writes run whether the last SELECT reads them or not; the notification, a plain SELECT, only
/// when it is read.
struct FinishStepStatement: PostgresPreparedStatement {
  typealias Row = StepEnding
  static let name = "vmlab_finish_step"
  static let sql = """
    WITH holder AS (
      SELECT published_version FROM host WHERE name = $1 AND agent = $2 FOR UPDATE),
    finished AS (
      UPDATE job_step SET state = CASE WHEN $3 THEN 'done' ELSE 'failed' END, finished_at = now(),
        lease_until = NULL, progress = CASE WHEN $3 THEN 1 ELSE progress END,
        result = CASE WHEN $3 THEN $4 END, error = CASE WHEN $3 THEN NULL ELSE $4 END
      WHERE id = $5 AND fence = $6 AND state = 'running'
        AND (NOT $7 OR (SELECT published_version FROM holder) <= $6)
        AND ($8::bigint IS NULL OR EXISTS (SELECT 1 FROM lab_operation_host WHERE prepare_step = $5))
      RETURNING id, job_id, kind),
    recorded AS (
      UPDATE lab_operation_host SET prepared_id = $8
      WHERE $8::bigint IS NOT NULL AND prepare_step = (SELECT id FROM finished)),
    published AS (
      INSERT INTO vm_summary (host, vm_key, vm, summary, version)
      SELECT $1, u.key, u.vm, NULLIF(u.summary, '')::jsonb, $6
      FROM finished, unnest($9::text[], $10::text[], $11::text[]) AS u(key, vm, summary)
      ON CONFLICT (host, vm_key) DO UPDATE SET vm = EXCLUDED.vm, summary = EXCLUDED.summary,
        version = EXCLUDED.version, published_at = now()
      WHERE vm_summary.version <= EXCLUDED.version),
    woken AS (
      SELECT pg_notify('\(labStepsChannel)', f.job_id::text || CASE WHEN NOT $3 OR NOT EXISTS (
          SELECT 1 FROM job_step o WHERE o.job_id = f.job_id AND o.id <> f.id AND o.state IN ('queued', 'running'))
        THEN '\(LabStepEnd.marker)' ELSE '' END)
      FROM finished f WHERE f.kind IN (\(labStepKinds.map { "'\($0)'" }.joined(separator: ", "))))
    SELECT (SELECT count(*) FROM woken),
      EXISTS (SELECT 1 FROM job_step WHERE host = $1 AND state = 'queued' AND id <> finished.id)
    FROM finished
    """
  static let bindingDataTypes: [PostgresDataType] = [
    .text, .text, .bool, .text, .int8, .int8, .bool, .int8, .textArray, .textArray, .textArray,
  ]

  var host: String
  var agent: String
  var succeeded: Bool
  var message: String
  var step: Int64
  var fence: Int64
  var publishing: Bool
  var prepared: Int64?
  var keys: [String]
  var names: [String]
  var documents: [String]

  func makeBindings() throws -> PostgresBindings {
    var bindings = PostgresBindings(capacity: 11)
    bindings.append(host)
    bindings.append(agent)
    bindings.append(succeeded)
    bindings.append(message)
    bindings.append(step)
    bindings.append(fence)
    bindings.append(publishing)
    bindings.append(prepared)
    bindings.append(keys)
    bindings.append(names)
    bindings.append(documents)
    return bindings
  }

  func decodeRow(_ row: PostgresRow) throws -> StepEnding {
    StepEnding(moreQueued: try row.decode((Int, Bool).self).1)
  }
}
