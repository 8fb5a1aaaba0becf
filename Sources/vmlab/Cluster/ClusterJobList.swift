import ArgumentParser
import Cluster
import Foundation

/// `vmlab --cluster URL job list`: the cluster's jobs with each host's progress.
struct ClusterJobList {
  var limit: Int
  var host: String?
  var json: Bool
  var cluster: ClusterOptions

  func run() throws {
    let (limit, host) = (self.limit, self.host)
    let jobs = try cluster.withDatabase { db -> [ClusterJob] in
      if let host, try await !db.hosts().contains(where: { $0.name == host }) {
        throw ClusterError(.notFound, "no host '\(host)' in the cluster \(db.url)")
      }
      return try await db.jobs(limit: limit, host: host)
    }
    if json { return try printJSON(jobs) }
    if jobs.isEmpty { return print("no cluster jobs yet") }
    var table = TextTable("ID", "KIND", "TARGET", "STATE", "CREATED", "HOSTS")
    var problems: [String] = []
    for job in jobs {
      let hosts = job.hosts.map { host in
        var cell = "\(host.host) \(host.done)/\(host.steps)"
        if host.failed > 0 { cell += " \(host.failed) failed" }
        if host.running > 0 { cell += " (\(Int(host.progress * 100))%)" }
        return cell
      }
      table.add(
        String(job.id), job.kind, job.target, job.state, shortDate(job.createdAt), hosts.joined(separator: ", "))
      for step in job.steps where step.error != nil {
        problems.append(
          "job \(job.id) step \(step.id) on \(step.host) (\(step.state), attempt \(step.attempts) of \(step.maxAttempts)): \(step.error!)"
        )
      }
    }
    table.print()
    if !problems.isEmpty { print("\n" + problems.joined(separator: "\n")) }
  }
}
