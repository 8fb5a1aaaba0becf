import Foundation
import PostgresNIO

/// A step to queue: which host runs it, what kind, with which arguments (JSON).
public struct StepRequest: Sendable {
  public var host: String
  public var kind: StepKind
  public var arguments: String

  public init(host: String, kind: StepKind, arguments: String) {
    self.host = host
    self.kind = kind
    self.arguments = arguments
  }

  public init<Arguments: Encodable>(host: String, kind: StepKind, _ arguments: Arguments) throws {
    self.init(host: host, kind: kind, arguments: String(decoding: try JSONEncoder().encode(arguments), as: UTF8.self))
  }
}

/// One step of a job as `job list --json` shows it.
public struct StepStatus: Sendable, Codable, Equatable {
  public var id: Int64
  public var host: String
  public var kind: String
  public var state: String
  public var attempts: Int
  public var maxAttempts: Int
  public var progress: Double
  public var fence: Int64
  public var result: String?
  public var error: String?
}

/// A job across hosts: its state follows from its steps'.
public struct ClusterJob: Sendable, Codable, Equatable {
  /// Progress of one host's steps of the job.
  public struct HostProgress: Sendable, Codable, Equatable {
    public var host: String
    public var steps: Int
    public var done: Int
    public var failed: Int
    public var running: Int
    /// 0 to 1: done steps count whole, running ones by their reported progress.
    public var progress: Double
  }

  public var id: Int64
  public var kind: String
  public var target: String
  public var createdBy: String
  public var createdAt: Date
  /// `failed` when any step failed, else `done` when all are, `running` once any started, `queued`.
  public var state: String
  public var hosts: [HostProgress]
  public var steps: [StepStatus]
}

extension ClusterDatabase {
  /// Queues a job of `steps` in one transaction and returns its id. Every host must be registered
  /// (an agent ran there once); otherwise nothing is queued.
  public func submitJob(
    kind: String, target: String = "", createdBy: String = ClusterURL.accountName(), steps: [StepRequest],
    maxAttempts: Int = 3
  ) async throws -> Int64 {
    guard !steps.isEmpty else { throw ClusterError(.usage, "job '\(kind)' has no steps") }
    guard maxAttempts >= 1 else { throw ClusterError(.usage, "a step needs at least 1 attempt, not \(maxAttempts)") }
    for host in Set(steps.map(\.host)) { _ = try validatedName(host, as: "host") }
    let wanted = Array(Set(steps.map(\.host))).sorted()
    let known = try await existingHosts(wanted)
    let unknown = wanted.filter { !known.contains($0) }
    if !unknown.isEmpty {
      let all = try await hosts().map(\.name)
      throw ClusterError(
        .notFound,
        "no host \(unknown.map { "'\($0)'" }.joined(separator: ", ")) in the cluster \(url) (hosts: \(all.isEmpty ? "none yet" : all.joined(separator: ", "))); start \(ClusterError.startAgent) on that machine first; nothing was queued"
      )
    }
    return try await transaction { db in
      let job = try await db.rows(
        "INSERT INTO job (kind, target, created_by) VALUES (\(kind), \(target), \(createdBy)) RETURNING id")
      let id = try job[0].decode(Int64.self)
      for step in steps {
        try await db.rows(
          """
          INSERT INTO job_step (job_id, host, kind, arguments, max_attempts)
          VALUES (\(id), \(step.host), \(step.kind.rawValue), \(step.arguments)::jsonb, \(maxAttempts))
          """)
      }
      return id
    }
  }

  /// The newest `limit` jobs, newest first, with their steps; only `ids` when given.
  public func jobs(limit: Int = 50, ids: [Int64]? = nil, host: String? = nil) async throws -> [ClusterJob] {
    let jobRows: [PostgresRow]
    if let ids {
      jobRows = try await rows(
        "SELECT id, kind, target, created_by, created_at FROM job WHERE id = ANY(\(ids)) ORDER BY id DESC")
    } else if let host {
      jobRows = try await rows(
        """
        SELECT id, kind, target, created_by, created_at FROM job j
        WHERE EXISTS (SELECT 1 FROM job_step s WHERE s.job_id = j.id AND s.host = \(host))
        ORDER BY id DESC LIMIT \(limit)
        """)
    } else {
      jobRows = try await rows(
        "SELECT id, kind, target, created_by, created_at FROM job ORDER BY id DESC LIMIT \(limit)")
    }
    var jobs: [ClusterJob] = []
    var index: [Int64: Int] = [:]
    for row in jobRows {
      let (id, kind, target, by, at) = try row.decode((Int64, String, String, String, Date).self)
      index[id] = jobs.count
      jobs.append(
        ClusterJob(
          id: id, kind: kind, target: target, createdBy: by, createdAt: at, state: "queued", hosts: [], steps: []))
    }
    guard !jobs.isEmpty else { return [] }
    let stepRows = try await rows(
      """
      SELECT id, job_id, host, kind, state, attempts, max_attempts, progress, fence, result, error
      FROM job_step WHERE job_id = ANY(\(Array(index.keys))) ORDER BY job_id, host, id
      """)
    for row in stepRows {
      let c = try row.decode((Int64, Int64, String, String, String, Int, Int, Double, Int64, String?, String?).self)
      jobs[index[c.1]!].steps.append(
        StepStatus(
          id: c.0, host: try validatedName(c.2, as: "host"), kind: c.3, state: c.4, attempts: c.5, maxAttempts: c.6,
          progress: c.7, fence: c.8, result: c.9, error: c.10))
    }
    for position in jobs.indices { jobs[position].summarise() }
    return jobs
  }
}

extension ClusterJob {
  /// Fills `state` and `hosts` from the steps.
  mutating func summarise() {
    var byHost: [String: HostProgress] = [:]
    for step in steps {
      var entry =
        byHost[step.host] ?? HostProgress(host: step.host, steps: 0, done: 0, failed: 0, running: 0, progress: 0)
      entry.steps += 1
      switch step.state {
      case "done": entry.done += 1
      case "failed": entry.failed += 1
      case "running": entry.running += 1
      default: break
      }
      entry.progress += step.state == "done" ? 1 : step.state == "running" ? step.progress : 0
      byHost[step.host] = entry
    }
    hosts = byHost.values.sorted { $0.host < $1.host }.map { entry in
      var entry = entry
      entry.progress /= Double(max(1, entry.steps))
      return entry
    }
    let states = Set(steps.map(\.state))
    state =
      states.contains("failed")
      ? "failed"
      : states == ["done"]
        ? "done"
        : states.contains("running") || states.contains("done") ? "running" : "queued"
  }
}
