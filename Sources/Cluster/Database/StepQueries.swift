import Foundation
import PostgresNIO

/// A step an agent claimed: what to run, and the fence token every write for it must carry.
public struct ClaimedStep: Sendable, Equatable {
  public var id: Int64
  public var jobID: Int64
  public var kind: String
  public var arguments: String
  public var fence: Int64
  public var attempt: Int
  public var maxAttempts: Int
}

/// A running step whose lease ran out, as the reaper left it.
public struct ExpiredStep: Sendable, Equatable {
  public var id: Int64
  public var host: String
  /// `queued` again (it will be retried) or `failed` (its attempts are used up).
  public var state: String
  public var error: String
}

/// The channel a lab operation's coordinator LISTENs on: the payload (`LabStepEnd`) names the job
/// whose prepare or decide step just ended (done or failed), so it looks at its steps at once
/// instead of at its next poll.
let labStepsChannel = "vmlab_lab_steps"

/// A notification on `labStepsChannel`: `JOB`, or `JOB end` when the step failed or no other step
/// of the job was open as it ended, so that the coordinator reads the whole operation at once
/// rather than counting the job's open steps first. Two steps that end together may both miss
/// each other and say only `JOB`: the count then finds them both done.
struct LabStepEnd: Equatable {
  static let marker = " end"
  var job: Int64
  var settled: Bool

  init(job: Int64, settled: Bool) {
    self.job = job
    self.settled = settled
  }

  init?(payload: String) {
    let settled = payload.hasSuffix(Self.marker)
    guard let job = Int64(settled ? String(payload.dropLast(Self.marker.count)) : payload) else { return nil }
    self.init(job: job, settled: settled)
  }
}

/// The step kinds whose end wakes a coordinator.
let labStepKinds = [StepKind.prepareCheckpoint, .prepareRestore, .decide].map(\.rawValue)

extension ClusterDatabase {
  /// Claims the oldest queued step of `host`, or nil when it has none. Locked rows are skipped, so
  /// agents never wait for each other; the lease runs from the database's `now()`, and a new fence
  /// token is drawn for this claim.
  public func claimStep(host: String, agent: String, leaseSeconds: Double) async throws -> ClaimedStep? {
    try await rows(ClaimStatement(host: host, agent: agent, leaseSeconds: leaseSeconds)).first
  }

  /// Extends the lease of a step this agent holds; false when its fence is stale (the lease was
  /// taken back, maybe claimed again): the agent must abandon the step.
  public func renewLease(step: Int64, fence: Int64, leaseSeconds: Double) async throws -> Bool {
    !(try await rows(
      """
      UPDATE job_step SET lease_until = now() + make_interval(secs => \(leaseSeconds))
      WHERE id = \(step) AND fence = \(fence) AND state = 'running' RETURNING id
      """
    ).isEmpty)
  }

  /// Records how far a step is (0 to 1); false when its fence is stale.
  public func reportProgress(step: Int64, fence: Int64, progress: Double) async throws -> Bool {
    !(try await rows(
      """
      UPDATE job_step SET progress = \(min(1, max(0, progress)))
      WHERE id = \(step) AND fence = \(fence) AND state = 'running' RETURNING id
      """
    ).isEmpty)
  }

  /// Records that the VM `vm` is in `host`'s library, as a write of `step` (refused with a stale fence).
  public func placeVM(_ vm: String, key: String, host: String, step: Int64, fence: Int64) async throws -> Bool {
    !(try await rows(
      """
      INSERT INTO vm_placement (vm_key, vm, host)
      SELECT \(key), \(vm), \(host) WHERE EXISTS
        (SELECT 1 FROM job_step WHERE id = \(step) AND fence = \(fence) AND state = 'running')
      ON CONFLICT (vm_key) DO UPDATE SET vm = EXCLUDED.vm, host = EXCLUDED.host, placed_at = now()
      RETURNING vm_key
      """
    ).isEmpty)
  }

  /// Takes back every lease that ran out: the step is queued again for its host, or failed when it
  /// used all its attempts, with the reason; its fence changes, so the agent that held it can no
  /// longer write. Any agent runs this; a host's steps are still claimed by its own agent only.
  public func reapExpiredLeases() async throws -> [ExpiredStep] {
    let reaped = try await rows(
      """
      WITH reaped AS (UPDATE job_step SET
        state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
        error = format('attempt %s of %s on host %s ended: its lease ran out at %s with no renewal from the agent (killed, paused or cut off from the database)%s',
          attempts, max_attempts, host, to_char(lease_until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS UTC'),
          CASE WHEN attempts >= max_attempts THEN '; no attempts left' ELSE '; queued again' END),
        finished_at = CASE WHEN attempts >= max_attempts THEN now() END,
        lease_until = NULL, fence = nextval('fence_token')
      WHERE state = 'running' AND lease_until < now()
      RETURNING id, job_id, kind, host, state, error
      ), woken AS (SELECT pg_notify(\(labStepsChannel), job_id::text) FROM reaped WHERE kind = ANY(\(labStepKinds)))
      SELECT id, host, state, error, (SELECT count(*) FROM woken) FROM reaped
      """)
    return try reaped.map { row in
      let columns = try row.decode((Int64, String, String, String, Int64).self)
      return ExpiredStep(id: columns.0, host: columns.1, state: columns.2, error: columns.3)
    }
  }

  /// Placements of `host` as the database records them, by VM key.
  public func placements(host: String) async throws -> [String: String] {
    var found: [String: String] = [:]
    for row in try await rows("SELECT vm_key, vm FROM vm_placement WHERE host = \(host)") {
      let (key, vm) = try row.decode((String, String).self)
      found[key] = try validatedName(vm, as: "VM")
    }
    return found
  }

  /// Makes the placements of `host` what its library holds (the library is the truth for its VMs):
  /// `vms` maps each VM's key to its name. A VM the database places on another host is left there
  /// and returned, for the agent to report.
  public func reconcilePlacements(host: String, vms: [String: String]) async throws -> (
    added: [String], removed: [String], elsewhere: [String: String]
  ) {
    try await transaction { db in
      let known = try await db.placements(host: host)
      let removed = known.keys.filter { vms[$0] == nil }.sorted()
      if !removed.isEmpty {
        try await db.rows("DELETE FROM vm_placement WHERE host = \(host) AND vm_key = ANY(\(removed))")
      }
      var added: [String] = []
      var elsewhere: [String: String] = [:]
      for (key, vm) in vms.sorted(by: { $0.key < $1.key }) where known[key] == nil {
        let other = try await db.rows("SELECT host FROM vm_placement WHERE vm_key = \(key)")
        if let row = other.first {
          elsewhere[vm] = try row.decode(String.self)
          continue
        }
        try await db.rows("INSERT INTO vm_placement (vm_key, vm, host) VALUES (\(key), \(vm), \(host))")
        added.append(vm)
      }
      return (added, removed.map { known[$0]! }, elsewhere)
    }
  }
}

/// The claim of a host's oldest queued step, prepared once per connection: an agent runs it for
/// every step.
struct ClaimStatement: PostgresPreparedStatement {
  typealias Row = ClaimedStep
  static let name = "vmlab_claim_step"
  static let sql = """
    UPDATE job_step SET state = 'running', lease_until = now() + make_interval(secs => $1),
      fence = nextval('fence_token'), attempts = attempts + 1, claimed_by = $2, started_at = now(),
      progress = 0
    WHERE id = (SELECT id FROM job_step WHERE host = $3 AND state = 'queued' ORDER BY id
      LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id, job_id, kind, arguments::text, fence, attempts, max_attempts
    """
  static let bindingDataTypes: [PostgresDataType] = [.float8, .text, .text]

  var host: String
  var agent: String
  var leaseSeconds: Double

  func makeBindings() throws -> PostgresBindings {
    var bindings = PostgresBindings(capacity: 3)
    bindings.append(leaseSeconds)
    bindings.append(agent)
    bindings.append(host)
    return bindings
  }

  func decodeRow(_ row: PostgresRow) throws -> ClaimedStep {
    let columns = try row.decode((Int64, Int64, String, String, Int64, Int, Int).self)
    return ClaimedStep(
      id: columns.0, jobID: columns.1, kind: columns.2, arguments: columns.3, fence: columns.4,
      attempt: columns.5, maxAttempts: columns.6)
  }
}
