import ArgumentParser
import Foundation
import LabKit

struct LibraryCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "library", abstract: "Check the library, or rebuild its catalog from the files.",
    subcommands: [LibraryCheck.self, LibraryRepair.self, LibraryHostKind.self, LibraryDecide.self])
}

struct LibraryCheck: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "check", abstract: "Prove that files and catalog agree; exit 1 with the problems when not.")

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var library: LibraryOptions

  func run() throws {
    let library = try self.library.open()
    let problems = try library.check()
    if json {
      struct Report: Encodable {
        var library: String
        var sound: Bool
        var problems: [String]
      }
      try printJSON(Report(library: library.root, sound: problems.isEmpty, problems: problems))
    } else if problems.isEmpty {
      print("\(library.root): catalog and files agree")
    } else {
      problems.forEach { print("problem: \($0)") }
    }
    if !problems.isEmpty { throw ExitCode.failure }
  }
}

struct LibraryRepair: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "repair",
    abstract: "Rebuild the catalog from the files alone (VM folders, manifests, file names).",
    discussion: """
      Works whatever state the catalog is in (damaged, from a newer vmlab, or missing). The new catalog \
      is built beside the old one and replaces it only when complete; the old one is kept as \
      catalog.sqlite.corrupt-<time stamp> (or .replaced-<time stamp> when it was sound). No VM file is \
      changed. Exits 1 when something could not be recovered, and says what.
      """)

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var library: LibraryOptions

  func run() throws {
    let report = try Library.repair(at: library.path, hosts: Hosts.registry, wait: library.waits)
    if json {
      try printJSON(report)
    } else {
      print("rebuilt \(report.vms.count) VM(s), \(report.checkpoints) checkpoint(s), \(report.labs.count) lab(s)")
      report.notes.forEach { print("note: \($0)") }
      if let previous = report.previousCatalog { print("the previous catalog is kept as \(previous)") }
      report.problems.forEach { print("not recovered: \($0)") }
    }
    if !report.problems.isEmpty { throw ExitCode.failure }
  }
}

struct LibraryHostKind: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "host-kind", abstract: "Show or set the host kind new VMs get (virtual-server or hypervisor).")

  @Argument(help: "The new default; omit to show the current one.")
  var kind: HostKind?

  @OptionGroup var library: LibraryOptions

  func run() throws {
    let library = try self.library.open()
    if let kind { try library.setDefaultHostKind(kind) }
    print(library.defaultHostKind.rawValue)
  }
}

struct LibraryDecide: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "decide",
    abstract: "Commit or roll back an operation a cluster prepared here and left waiting for its decision.",
    discussion: """
      A lab checkpoint or restore across the hosts of a cluster is prepared on every host first (the \
      new files made, the commit kept in the journal) and committed only when every host prepared. \
      An agent that stopped between the two leaves its part waiting: its VMs refuse other work, and \
      `vmlab library check` names the operation. The agent carries out the decision when it comes \
      back; decide by hand only when the cluster's decision is known, or the cluster is gone.
      """)

  @Argument(help: "The operation's number, as `vmlab library check` gives it.")
  var operation: Int64

  @Flag(help: "Commit it: the checkpoint is taken, or the VMs restored.")
  var commit = false

  @Flag(help: "Roll it back: its new files go and nothing changes.")
  var rollBack = false

  @OptionGroup var library: LibraryOptions

  func validate() throws {
    guard commit != rollBack else { throw ValidationError("say --commit or --roll-back (one of them)") }
  }

  func run() throws {
    let library = try self.library.open()
    let vms = try library.decidePrepared(operation: operation, commit: commit)
    print(
      "operation \(operation) \(commit ? "committed" : "rolled back") on \(vms.count == 1 ? "VM" : "VMs") \(vms.joined(separator: ", "))"
    )
  }
}
