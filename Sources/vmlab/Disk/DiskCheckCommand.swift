import ArgumentParser
import VHD

struct DiskCheckCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "check",
    abstract: "Check a disk's structure and its parent chain.",
    discussion: "Exits 0 when the disk and its chain are sound, 1 with the reasons when not."
  )

  @Argument(help: "The VHD file.")
  var path: String

  @Flag(help: "Print JSON.")
  var json = false

  func run() throws {
    let check = DiskCheck(path: path)
    if json {
      struct Report: Encodable {
        var sound: Bool
        var chain: [String]
        var problems: [String]
        var warnings: [String]
      }
      try printJSON(
        Report(
          sound: check.isSound, chain: check.chain, problems: check.problems.map(\.description),
          warnings: check.warnings))
    } else {
      for warning in check.warnings { print("warning: \(warning)") }
      for problem in check.problems { print("problem: \(problem)") }
      if check.isSound {
        print("\(absolutePath(path)): sound (chain of \(check.chain.count) disk\(check.chain.count == 1 ? "" : "s"))")
      }
    }
    if !check.isSound {
      throw ExitCode.failure
    }
  }
}
