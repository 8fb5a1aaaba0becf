import Foundation
import LabKit
import PostgresNIO

/// A lab of the cluster: VMs on any hosts, checkpointed and restored as one.
public struct ClusterLab: Sendable, Codable, Equatable {
  /// A member VM, where it is and whether its host is alive.
  public struct Member: Sendable, Codable, Equatable {
    public var vm: String
    /// Empty when no host holds the VM any more (its placement was removed).
    public var host: String
    /// `alive`, `dead` or `stopped` (as `host list` says), or `missing` when no host holds it.
    public var hostState: String
  }

  public var name: String
  public var createdAt: Date
  public var members: [Member]
  /// The lab's open operation, if one is under way or waits for a host.
  public var operation: LabOperationStatus?

  /// The members by host, hosts in name order.
  public var membersByHost: [(host: String, vms: [String])] {
    Dictionary(grouping: members.filter { !$0.host.isEmpty }, by: \.host).sorted { $0.key < $1.key }.map {
      ($0.key, $0.value.map(\.vm))
    }
  }
}

/// A lab operation as the coordinator's log holds it, with each host's part.
public struct LabOperationStatus: Sendable, Codable, Equatable {
  /// One host's part: its VMs, and how far its prepare and decide steps are.
  public struct HostPart: Sendable, Codable, Equatable {
    public var host: String
    public var vms: [String]
    /// `alive`, `dead` or `stopped`.
    public var hostState: String
    public var prepareStep: Int64?
    /// `queued`, `running`, `done` or `failed` (nil before the step was queued).
    public var prepareState: String?
    public var prepareError: String?
    /// The id of the operation the host's library prepared (recorded under the step's fence).
    public var preparedID: Int64?
    public var decideStep: Int64?
    public var decideState: String?
    public var decideResult: String?
    public var decideError: String?
  }

  public var id: Int64
  public var lab: String
  /// `checkpoint` or `restore`.
  public var kind: String
  /// The checkpoint's name (nil for a restore to each VM's most recent checkpoint).
  public var checkpoint: String?
  /// `commit` or `roll-back` once decided.
  public var decision: String?
  public var reason: String?
  public var createdBy: String
  public var createdAt: Date
  /// Seconds since the coordinator last said it runs, by the database's clock (a billion once it
  /// left the operation to whoever comes next).
  public var coordinatorAge: Double
  public var finished: Bool
  public var prepareJob: Int64?
  public var decideJob: Int64?
  public var hosts: [HostPart]

  /// What it is, for "busy" errors and `lab show`: `checkpoint 'clean' (operation 4)`.
  public var summary: String {
    let what =
      kind == "checkpoint"
      ? "checkpoint '\(checkpoint ?? "")'"
      : checkpoint.map { "restore to '\($0)'" } ?? "restore to each VM's most recent checkpoint"
    return "\(what) (operation \(id))"
  }

  /// Hosts whose decide step has not finished yet (all that may need one, before they are queued).
  public var hostsOwingTheDecision: [HostPart] {
    guard decision != nil else { return [] }
    if decideJob == nil { return hosts.filter { $0.prepareState != "failed" } }
    return hosts.filter { $0.decideStep != nil && $0.decideState != "done" }
  }
}

extension ClusterDatabase {
  // MARK: Labs

  /// Creates the lab `name` of `vms` (placed on any hosts), or adds them to it with `add`. Every VM
  /// must be placed on a host; otherwise nothing changes.
  @discardableResult
  public func createLab(_ name: String, vms: [String], add: Bool = false) async throws -> ClusterLab {
    try checkName(name, as: "lab")
    for vm in vms { try checkName(vm, as: "VM") }
    let keys = vms.map(NameRules.key)
    let placed = Set(
      try await rows("SELECT vm_key FROM vm_placement WHERE vm_key = ANY(\(keys))").map { try $0.decode(String.self) })
    let unplaced = vms.filter { !placed.contains(NameRules.key($0)) }
    if !unplaced.isEmpty {
      throw ClusterError(
        .notFound,
        "no host holds VM \(unplaced.map { "'\($0)'" }.joined(separator: ", ")) (see `vmlab --cluster URL host list`; an agent records its library's VMs when it starts); lab '\(name)' was not \(add ? "changed" : "created")"
      )
    }
    let labName: String = try await transaction { db in
      let existing = try await db.rows("SELECT name FROM lab WHERE lower(name) = \(NameRules.key(name))")
      let labName: String
      if let row = existing.first {
        guard add else {
          throw ClusterError(
            .usage, "lab '\(name)' exists already; add VMs to it with `lab create \(name) VM… --add`")
        }
        labName = try row.decode(String.self)
      } else {
        guard !add else { throw ClusterError(.notFound, "no lab '\(name)' to add to; create it first") }
        try await db.rows("INSERT INTO lab (name) VALUES (\(name))")
        labName = name
      }
      for key in keys {
        try await db.rows("INSERT INTO lab_member (lab, vm_key) VALUES (\(labName), \(key)) ON CONFLICT DO NOTHING")
      }
      return labName
    }
    return try await lab(named: labName)
  }

  /// Every lab, by name, with its members and open operation.
  public func labs() async throws -> [ClusterLab] {
    var found: [ClusterLab] = []
    for row in try await rows("SELECT name FROM lab ORDER BY lower(name)") {
      found.append(try await lab(named: try row.decode(String.self)))
    }
    return found
  }

  /// The lab `name` (compared as VM names are).
  public func lab(named name: String) async throws -> ClusterLab {
    // The lab's row comes with each member's, in one statement (a coordinator reads its lab before
    // it starts anything).
    let found = try await rows(
      """
      SELECT l.name, l.created_at, (SELECT id FROM lab_operation o WHERE o.lab = l.name AND o.finished_at IS NULL),
        m.vm_key, p.vm, p.host, \(unescaped: Self.hostStateColumns)
      FROM lab l LEFT JOIN lab_member m ON m.lab = l.name LEFT JOIN vm_placement p ON p.vm_key = m.vm_key
        LEFT JOIN host hs ON hs.name = p.host
      WHERE lower(l.name) = \(NameRules.key(name)) ORDER BY m.vm_key
      """
    ).map { try $0.decode((String, Date, Int64?, String?, String?, String?, Bool?, Double?, Double?).self) }
    guard let (labName, created, open, _, _, _, _, _, _) = found.first else {
      let all = try await rows("SELECT name FROM lab ORDER BY lower(name)").map { try $0.decode(String.self) }
      throw ClusterError(
        .notFound,
        "no lab '\(name)' in the cluster \(url) (labs: \(all.isEmpty ? "none yet; create one with `lab create NAME VM…`" : all.joined(separator: ", ")))"
      )
    }
    var members: [ClusterLab.Member] = []
    for (_, _, _, key, vm, host, stopped, age, heartbeat) in found {
      // A lab without members: its row alone, with NULLs for a member.
      guard let key else { continue }
      if let vm, let host {
        members.append(
          ClusterLab.Member(
            vm: try validatedName(vm, as: "VM"), host: try validatedName(host, as: "host"),
            hostState: Self.hostState(stopped: stopped, age: age, heartbeat: heartbeat)))
      } else {
        members.append(ClusterLab.Member(vm: try validatedName(key, as: "VM"), host: "", hostState: "missing"))
      }
    }
    var operation: LabOperationStatus?
    if let open { operation = try await labOperation(open) }
    return ClusterLab(
      name: try validatedName(labName, as: "lab"), createdAt: created, members: members, operation: operation)
  }

  /// A host's row as `hostState` reads it, joined as `hs`: whether it stopped, its heartbeat's age
  /// by the database's clock, its heartbeat interval. Read beside a lab's rows, so that a
  /// coordinator's look at its operation is one statement rather than one more for every host.
  private static let hostStateColumns =
    "hs.stopped_at IS NOT NULL, extract(epoch FROM now() - hs.last_heartbeat)::float8, hs.heartbeat_seconds"

  /// `alive`, `dead` or `stopped` from those columns; a host without a row counts as dead.
  private static func hostState(stopped: Bool?, age: Double?, heartbeat: Double?) -> String {
    guard let stopped, let age, let heartbeat else { return HostStatus.State.dead.rawValue }
    return hostState(stopped: stopped, heartbeatAge: age, heartbeatSeconds: heartbeat).rawValue
  }

  /// Removes the lab (its VMs stay where they are). Refused while an operation on it is open.
  public func removeLab(_ name: String) async throws {
    let lab = try await lab(named: name)
    if let open = lab.operation {
      throw ClusterError(
        .usage, "lab '\(lab.name)' is busy: \(open.summary) is open; it can be removed once that finishes")
    }
    try await rows("DELETE FROM lab WHERE name = \(lab.name)")
  }

  private func checkName(_ name: String, as what: String) throws {
    do {
      try NameRules.validate(name, as: what)
    } catch let error as LabKitError {
      throw ClusterError(.usage, error.message)
    }
  }

  // MARK: Lab operations (the coordinator's log)

  /// Opens an operation on `lab` and queues its prepare steps, in one statement. Returns nil
  /// without changing anything when the lab already has an open operation.
  func beginLabOperation(
    lab: String, kind: String, checkpoint: String?, description: String, disksOnly: Bool, createdBy: String,
    parts: [(host: String, vms: [String])]
  ) async throws -> (operation: Int64, job: Int64)? {
    // The operation's id is drawn by its insert: the steps' arguments carry 0 here, and the
    // statement writes the id into them.
    let steps = try parts.map { part -> StepRequest in
      kind == "checkpoint"
        ? try StepRequest(
          host: part.host, kind: .prepareCheckpoint,
          PrepareCheckpointStep(
            operation: 0, vms: part.vms, name: checkpoint ?? "", description: description, disksOnly: disksOnly))
        : try StepRequest(
          host: part.host, kind: .prepareRestore,
          PrepareRestoreStep(operation: 0, vms: part.vms, checkpoint: checkpoint))
    }
    let vms = try parts.map { String(decoding: try JSONEncoder().encode($0.vms), as: UTF8.self) }
    let (hosts, kinds, arguments) = Self.columns(of: steps)
    let jobKind = "lab-\(kind)-prepare"
    // The operation, its job, the job's steps and each host's part in one statement: the
    // coordinator's first round trip is the only one before the hosts start. The job's id is drawn
    // with the operation (a statement's parts cannot update each other's new rows), and nothing but
    // the operation's insert happens when the lab has an open operation already.
    let opened = try await rows(
      """
      WITH opened AS (
        INSERT INTO lab_operation (lab, kind, checkpoint, description, disks_only, created_by, prepare_job)
        VALUES (\(lab), \(kind), \(checkpoint), \(description), \(disksOnly), \(createdBy),
          nextval(pg_get_serial_sequence('job', 'id')))
        ON CONFLICT (lab) WHERE finished_at IS NULL DO NOTHING RETURNING id, prepare_job),
      made AS (
        INSERT INTO job (id, kind, target, created_by)
        SELECT prepare_job, \(jobKind), \(lab), \(createdBy) FROM opened RETURNING id),
      steps AS (
        INSERT INTO job_step (job_id, host, kind, arguments)
        SELECT made.id, u.host, u.kind, jsonb_set(u.arguments::jsonb, '{operation}', to_jsonb(opened.id))
        FROM opened, made, unnest(\(hosts)::text[], \(kinds)::text[], \(arguments)::text[]) AS u(host, kind, arguments)
        RETURNING id, host),
      parts AS (
        INSERT INTO lab_operation_host (operation, host, vms, prepare_step)
        SELECT opened.id, steps.host, u.vms::jsonb, steps.id
        FROM opened, steps JOIN unnest(\(parts.map(\.host))::text[], \(vms)::text[]) AS u(host, vms) ON u.host = steps.host
        RETURNING host)
      SELECT opened.id, opened.prepare_job, (SELECT count(*) FROM parts) FROM opened
      """)
    guard let row = opened.first else { return nil }
    let (operation, job, recorded) = try row.decode((Int64, Int64, Int).self)
    guard recorded == parts.count else {
      throw ClusterError(.failed, "lab operation \(operation) recorded \(recorded) of its \(parts.count) hosts' parts")
    }
    return (operation, job)
  }

  /// Steps as the columns that `unnest` turns back into rows: hosts, kinds, arguments. Steps of a
  /// lab operation are one per host, so a step is found again by its host.
  private static func columns(of steps: [StepRequest]) -> ([String], [String], [String]) {
    (steps.map(\.host), steps.map(\.kind.rawValue), steps.map(\.arguments))
  }

  /// The open operation of `lab`, if any.
  public func openLabOperation(lab: String) async throws -> LabOperationStatus? {
    let found = try await rows(
      "SELECT id FROM lab_operation WHERE lab = \(lab) AND finished_at IS NULL")
    guard let row = found.first else { return nil }
    return try await labOperation(try row.decode(Int64.self))
  }

  /// The operation `id` with each host's part, its steps' states and its hosts' liveness. With
  /// `closingWhenSettled`, the same statement closes it when it is decided and no host owes the
  /// decision any more (`hostsOwingTheDecision` is empty): the coordinator's last look is its close.
  public func labOperation(_ id: Int64, closingWhenSettled: Bool = false) async throws -> LabOperationStatus {
    // The operation's columns come with each host's part, in one statement: a coordinator looks at
    // its operation on the critical path, when the last host's step ends.
    let found = try await rows(
      """
      WITH closed AS (
        UPDATE lab_operation SET finished_at = now()
        WHERE \(closingWhenSettled) AND id = \(id) AND finished_at IS NULL AND decide_job IS NOT NULL
          AND NOT EXISTS (
            SELECT 1 FROM lab_operation_host h JOIN job_step d ON d.id = h.decide_step
            WHERE h.operation = \(id) AND d.state <> 'done')
        RETURNING id)
      SELECT o.lab, o.kind, o.checkpoint, o.decision, o.reason, o.created_by, o.created_at,
        CASE WHEN o.coordinator_left THEN 1e9::float8
          ELSE extract(epoch FROM now() - o.coordinator_seen)::float8 END,
        o.finished_at IS NOT NULL OR EXISTS (SELECT 1 FROM closed), o.prepare_job, o.decide_job,
        h.host, h.vms::text, h.prepare_step, p.state, p.error, h.prepared_id, h.decide_step, d.state, d.result,
        d.error, \(unescaped: Self.hostStateColumns)
      FROM lab_operation o
        LEFT JOIN lab_operation_host h ON h.operation = o.id
        LEFT JOIN job_step p ON p.id = h.prepare_step
        LEFT JOIN job_step d ON d.id = h.decide_step
        LEFT JOIN host hs ON hs.name = h.host
      WHERE o.id = \(id) ORDER BY h.host
      """)
    let columns = try found.map { row in
      try row.decode(
        (
          String, String, String?, String?, String?, String, Date, Double, Bool, Int64?, Int64?,
          String?, String?, Int64?, String?, String?, Int64?, Int64?, String?, String?, String?, Bool?, Double?, Double?
        ).self)
    }
    guard let c = columns.first else { throw ClusterError(.notFound, "no lab operation \(id)") }
    var parts: [LabOperationStatus.HostPart] = []
    for p in columns {
      // No part at all: the operation's row alone, with NULLs for a part.
      guard let host = p.11, let vmsText = p.12 else { continue }
      let vms = try JSONDecoder().decode([String].self, from: Data(vmsText.utf8))
      for vm in vms { _ = try validatedName(vm, as: "VM") }
      let state = Self.hostState(stopped: p.21, age: p.22, heartbeat: p.23)
      parts.append(
        LabOperationStatus.HostPart(
          host: try validatedName(host, as: "host"), vms: vms, hostState: state, prepareStep: p.13,
          prepareState: p.14, prepareError: p.15, preparedID: p.16, decideStep: p.17, decideState: p.18,
          decideResult: p.19, decideError: p.20))
    }
    return LabOperationStatus(
      id: id, lab: c.0, kind: c.1, checkpoint: c.2, decision: c.3, reason: c.4, createdBy: c.5, createdAt: c.6,
      coordinatorAge: max(0, c.7), finished: c.8, prepareJob: c.9, decideJob: c.10, hosts: parts)
  }

  /// How many steps of `job` are still queued or running, and how many failed: one cheap look for
  /// a coordinator woken by a step's end.
  func openAndFailedSteps(job: Int64) async throws -> (open: Int, failed: Int) {
    let found = try await rows(
      """
      SELECT count(*) FILTER (WHERE state IN ('queued', 'running')), count(*) FILTER (WHERE state = 'failed')
      FROM job_step WHERE job_id = \(job)
      """)
    let (open, failed) = try found[0].decode((Int, Int).self)
    return (open, failed)
  }

  /// The coordinator says it still runs.
  func touchLabOperation(_ id: Int64) async throws {
    try await rows("UPDATE lab_operation SET coordinator_seen = now() WHERE id = \(id) AND finished_at IS NULL")
  }

  /// Writes the decision of operation `id`, unless one was written already; returns the decision
  /// in force (the first one written wins, so a coordinator and whoever finishes after it agree).
  func decideLabOperation(_ id: Int64, commit: Bool, reason: String) async throws -> (commit: Bool, reason: String) {
    let decision = commit ? "commit" : "roll-back"
    try await rows(
      """
      UPDATE lab_operation SET decision = \(decision), reason = \(reason), decided_at = now()
      WHERE id = \(id) AND decision IS NULL
      """)
    let row = try await rows("SELECT decision, coalesce(reason, '') FROM lab_operation WHERE id = \(id)")
    let (written, why) = try row[0].decode((String, String).self)
    return (written == "commit", why)
  }

  /// Queues the decide steps of decided operation `id` in one transaction (a job of its own),
  /// unless they were queued already; returns the hosts given one. A host whose prepare step was
  /// still queued has it taken back and needs no decision unless an earlier attempt ran; one whose prepare failed prepared
  /// nothing; every other host (prepared, or still preparing) gets one, and steps run in order on
  /// a host, so a decide step always comes after the prepare it settles.
  @discardableResult
  func queueDecideSteps(_ id: Int64, createdBy: String) async throws -> [String] {
    try await transaction { db in try await db.queueingDecideSteps(id, createdBy: createdBy).hosts }
  }

  /// Writes the decision of operation `id` (unless one was written already) and queues its decide
  /// steps, in one transaction: the decision is durable before any host can see a step that
  /// carries it out, and the coordinator's second phase starts one round trip sooner. Returns the
  /// decision in force (the first one written wins) and the decide job.
  func decideAndQueueSteps(_ id: Int64, commit: Bool, reason: String, createdBy: String) async throws -> (
    commit: Bool, reason: String, decideJob: Int64?
  ) {
    if commit, let job = try await commitEveryPreparedHost(id, reason: reason, createdBy: createdBy) {
      return (true, reason, job)
    }
    return try await transaction { db in
      let queued = try await db.queueingDecideSteps(
        id, createdBy: createdBy, deciding: (commit ? "commit" : "roll-back", reason))
      return (queued.decision == "commit", queued.reason, queued.job)
    }
  }

  /// The common decision in one statement: when operation `id` is undecided and every host's
  /// prepare step is done with its prepared operation recorded, writes the commit and queues a
  /// decide step for every host; returns the decide job, or nil (nothing written) otherwise.
  /// Done steps are never claimed again, so none needs the locks the general case takes; an
  /// operation decided meanwhile by someone else is not updated (its row is read again after its
  /// lock), and the general case then reads the decision in force.
  private func commitEveryPreparedHost(_ id: Int64, reason: String, createdBy: String) async throws -> Int64? {
    let made = try await rows(
      """
      WITH ready AS (
        SELECT o.id FROM lab_operation o
        WHERE o.id = \(id) AND o.decision IS NULL AND o.decide_job IS NULL
          AND EXISTS (SELECT 1 FROM lab_operation_host h WHERE h.operation = o.id)
          AND NOT EXISTS (
            SELECT 1 FROM lab_operation_host h LEFT JOIN job_step s ON s.id = h.prepare_step
            WHERE h.operation = o.id AND (s.state IS DISTINCT FROM 'done' OR h.prepared_id IS NULL))),
      decided AS (
        UPDATE lab_operation o SET decision = 'commit', reason = \(reason), decided_at = now(),
          decide_job = nextval(pg_get_serial_sequence('job', 'id'))
        FROM ready WHERE o.id = ready.id AND o.decision IS NULL AND o.decide_job IS NULL
        RETURNING o.id, o.lab, o.kind, o.decide_job),
      made AS (
        INSERT INTO job (id, kind, target, created_by)
        SELECT decide_job, 'lab-commit', lab, \(createdBy) FROM decided RETURNING id),
      steps AS (
        INSERT INTO job_step (job_id, host, kind, arguments)
        SELECT made.id, h.host, \(StepKind.decide.rawValue),
          jsonb_build_object(
            'operation', d.id, 'kind', d.kind, 'vms', h.vms, 'prepared', h.prepared_id, 'commit', true)
        FROM made, decided d JOIN lab_operation_host h ON h.operation = d.id ORDER BY h.host
        RETURNING id, host),
      parts AS (
        UPDATE lab_operation_host h SET decide_step = steps.id FROM steps
        WHERE h.operation = \(id) AND h.host = steps.host RETURNING h.host)
      SELECT made.id, (SELECT count(*) FROM parts), (SELECT count(*) FROM lab_operation_host WHERE operation = \(id))
      FROM made
      """)
    guard let row = made.first else { return nil }
    let (job, recorded, hosts) = try row.decode((Int64, Int, Int).self)
    guard recorded == hosts else {
      throw ClusterError(.failed, "lab operation \(id) recorded \(recorded) of its \(hosts) decide steps")
    }
    return job
  }

  /// `queueDecideSteps` inside the caller's transaction, first writing the decision `deciding`
  /// when one is given and none was written; also returns the decision in force and the decide
  /// job (nil when the operation is not decided).
  private func queueingDecideSteps(
    _ id: Int64, createdBy: String, deciding: (decision: String, reason: String)? = nil
  ) async throws -> (hosts: [String], decision: String?, reason: String, job: Int64?) {
    // The operation's row, locked; when deciding, written in the same statement (the first
    // decision stands: the row's old values decide what is set).
    let operation: [PostgresRow]
    if let deciding {
      operation = try await rows(
        """
        UPDATE lab_operation SET decision = coalesce(decision, \(deciding.decision)),
          reason = CASE WHEN decision IS NULL THEN \(deciding.reason) ELSE reason END,
          decided_at = coalesce(decided_at, now())
        WHERE id = \(id) RETURNING lab, kind, decision, coalesce(reason, ''), decide_job
        """)
    } else {
      operation = try await rows(
        "SELECT lab, kind, decision, coalesce(reason, ''), decide_job FROM lab_operation WHERE id = \(id) FOR UPDATE")
    }
    guard let row = operation.first else { throw ClusterError(.notFound, "no lab operation \(id)") }
    let (lab, kind, decided, reason, decideJob) = try row.decode((String, String, String?, String, Int64?).self)
    guard let decision = decided, decideJob == nil else { return ([], decided, reason, decideJob) }
    let commit = decision == "commit"
    // Each host's part with its prepare step, the steps locked (in their order) as they are read,
    // so that no agent claims one while this decides what it needs (claims skip locked rows). A
    // part whose prepare step is gone (its job was deleted) prepared nothing and is left out.
    let parts = try await rows(
      """
      SELECT h.host, h.vms::text, h.prepared_id, s.id, s.state, s.attempts FROM lab_operation_host h
        JOIN job_step s ON s.id = h.prepare_step
      WHERE h.operation = \(id) ORDER BY s.id FOR UPDATE OF s
      """)
    var steps: [StepRequest] = []
    var hosts: [String] = []
    let sorted = try parts.map { try $0.decode((String, String, Int64?, Int64, String, Int).self) }.sorted {
      $0.0 < $1.0
    }
    for (host, vmsText, prepared, step, state, attempts) in sorted {
      if state == "queued" {
        let why = "not run: lab operation \(id) was decided (\(decision)) before this host took its prepare step"
        try await rows(
          "UPDATE job_step SET state = 'failed', finished_at = now(), error = \(why) WHERE id = \(step)")
        // Queued again after an attempt whose agent died: that attempt may have prepared.
        if attempts == 0 { continue }
      }
      if state == "failed" { continue }
      if state == "running" {
        // Not to be tried again once its lease runs out (its agent died): the decide step
        // queued here settles whatever that attempt left, and a later attempt would prepare
        // again with no decision to follow.
        try await rows("UPDATE job_step SET max_attempts = attempts WHERE id = \(step) AND state = 'running'")
      }
      let vms = try JSONDecoder().decode([String].self, from: Data(vmsText.utf8))
      steps.append(
        try StepRequest(
          host: host, kind: .decide,
          DecideStep(operation: id, kind: kind, vms: vms, prepared: prepared, commit: commit)))
      hosts.append(host)
    }
    // The job (empty when no host needs a step: it records the decision in `job list` all the
    // same), its steps, each host's part and the operation, in one statement.
    let (stepHosts, kinds, arguments) = Self.columns(of: steps)
    let jobKind = commit ? "lab-commit" : "lab-roll-back"
    let made = try await rows(
      """
      WITH made AS (
        INSERT INTO job (kind, target, created_by) VALUES (\(jobKind), \(lab), \(createdBy)) RETURNING id),
      steps AS (
        INSERT INTO job_step (job_id, host, kind, arguments)
        SELECT made.id, u.host, u.kind, u.arguments::jsonb
        FROM made, unnest(\(stepHosts)::text[], \(kinds)::text[], \(arguments)::text[]) AS u(host, kind, arguments)
        RETURNING id, host),
      parts AS (
        UPDATE lab_operation_host h SET decide_step = steps.id FROM steps
        WHERE h.operation = \(id) AND h.host = steps.host RETURNING h.host),
      decided AS (UPDATE lab_operation SET decide_job = (SELECT id FROM made) WHERE id = \(id) RETURNING id)
      SELECT (SELECT id FROM made), (SELECT count(*) FROM parts), (SELECT count(*) FROM decided)
      """)
    let (job, recorded, _) = try made[0].decode((Int64, Int, Int).self)
    guard recorded == steps.count else {
      throw ClusterError(.failed, "lab operation \(id) recorded \(recorded) of its \(steps.count) decide steps")
    }
    return (hosts, decision, reason, job)
  }

  /// Queues again the decide steps of operation `id` that failed; returns their hosts.
  func requeueFailedDecideSteps(_ id: Int64) async throws -> [String] {
    try await rows(
      """
      UPDATE job_step s SET state = 'queued', finished_at = NULL, lease_until = NULL,
        max_attempts = s.attempts + 3
      FROM lab_operation_host h
      WHERE h.operation = \(id) AND h.decide_step = s.id AND s.state = 'failed'
      RETURNING s.host
      """
    ).map { try $0.decode(String.self) }
  }

  /// The coordinator leaves an operation it could not finish (a host owes the decision): whoever
  /// comes next finishes it without waiting for the coordinator to count as gone.
  func leaveLabOperation(_ id: Int64) async throws {
    try await rows("UPDATE lab_operation SET coordinator_left = true WHERE id = \(id)")
  }

  /// Closes operation `id`: the lab is free for the next one.
  func finishLabOperation(_ id: Int64) async throws {
    try await rows("UPDATE lab_operation SET finished_at = now() WHERE id = \(id) AND finished_at IS NULL")
  }
}
