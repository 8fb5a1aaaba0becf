import ArgumentParser
import Foundation
import LabKit

struct JobCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "job", abstract: "Jobs: checkpoint, restore and merge operations that ran asynchronously.",
    subcommands: [JobList.self, JobWait.self])
}

struct JobList: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "list", abstract: "List recent jobs, newest first (with --cluster: the cluster's, per host).")

  @Option(help: "How many.")
  var limit = 50

  @Option(help: ArgumentHelp("With --cluster: only jobs with steps on this host.", valueName: "name"))
  var host: String?

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func validate() throws {
    guard limit >= 1 else { throw ValidationError("--limit must be at least 1, not \(limit)") }
  }

  func run() throws {
    // Checked here, not in validate(): --cluster before the command is known only once it runs.
    if host != nil && !cluster.isSet {
      throw ValidationError("--host lists a cluster's jobs on one host: give --cluster URL (or set VMLAB_CLUSTER)")
    }
    if cluster.isSet { return try ClusterJobList(limit: limit, host: host, json: json, cluster: cluster).run() }
    let jobs = try library.open().jobs(limit: limit)
    if json { return try printJSON(jobs) }
    if jobs.isEmpty { return print("no jobs yet") }
    var table = TextTable("ID", "KIND", "TARGET", "STATUS", "PROGRESS", "TIME", "RESULT")
    for job in jobs {
      table.add(
        String(job.id), job.kind, job.target, job.status.rawValue, "\(Int(job.progress * 100))%",
        job.duration.map(shortDuration) ?? "", job.error ?? job.result ?? "")
    }
    table.print()
  }
}

struct JobWait: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "wait", abstract: "Wait for jobs to finish and report each; exits 1 when any failed.",
    discussion: """
      Jobs run inside a vmlab process (`checkpoint new --async` leaves one running in the
      background), which holds the library until they finish, so this waits for the library
      whether or not --wait is given. Without ids it waits for every job queued or running now.
      """)

  @Argument(help: "Job ids (default: every unfinished job).")
  var ids: [Int64] = []

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var library: LibraryOptions

  func run() throws {
    // Job times are stored to the millisecond: a job that ends while this starts still counts.
    let since = Date().addingTimeInterval(-0.002)
    var options = self.library
    options.wait = true
    let library = try options.open()
    if !ids.isEmpty { return try report(try library.wait(jobs: ids), json: json) }
    let jobs = try library.jobsFinished(since: since)
    if jobs.isEmpty && !json { return print("no jobs were queued or running") }
    try report(jobs, json: json)
  }
}
