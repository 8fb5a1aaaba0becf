import ArgumentParser
import Foundation
import LabKit

struct JobCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "job", abstract: "Jobs: checkpoint, restore and merge operations that ran asynchronously.",
    subcommands: [JobList.self, JobWait.self])
}

struct JobList: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "list", abstract: "List recent jobs, newest first.")

  @Option(help: "How many.")
  var limit = 50

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var library: LibraryOptions

  func run() throws {
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
  static let configuration = CommandConfiguration(commandName: "wait", abstract: "Wait for jobs to finish.")

  @Argument(help: "Job ids.")
  var ids: [Int64]

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var library: LibraryOptions

  func run() throws {
    let library = try self.library.open()
    try report(try library.wait(jobs: ids), json: json)
  }
}
