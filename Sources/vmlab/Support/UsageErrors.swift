import ArgumentParser
import Foundation
import LabKit

/// Usage errors the argument parser does not catch, or reports in the wrong place.
enum UsageErrors {
  /// `-dash` is not an option: the parser reads a single dash followed by several letters as a
  /// group of short flags, and as `-h` is among them, `vmlab vm create -dash` printed help and
  /// exited 0. vmlab has no short options but `-h` and `run`'s `-e`, so a longer group is a mistake
  /// (a name that starts with '-', or a long option missing a dash). Scanning stops at `--` and at
  /// `run` or `repl`, whose later words belong to the script.
  static func checkShortOptionGroups(_ arguments: [String]) -> ValidationError? {
    for argument in arguments {
      if argument == "--" || argument == "run" || argument == "repl" { return nil }
      guard argument.hasPrefix("-"), !argument.hasPrefix("--"), argument.count > 2,
        !argument.dropFirst().allSatisfy(\.isNumber)  // a negative number: the option's own check says more
      else { continue }
      return ValidationError(
        "'\(argument)' is not an option: options start with '--' (--\(argument.dropFirst())?), and names cannot start with '-'"
      )
    }
    return nil
  }

  /// The words that lead to `command` from the top (`["checkpoint", "restore"]`), for a help hint.
  static func path(to command: ParsableCommand.Type, from root: ParsableCommand.Type = VMLab.self) -> [String]? {
    if command == root { return [] }
    for subcommand in root.configuration.subcommands {
      if let rest = path(to: command, from: subcommand) {
        return [subcommand.configuration.commandName ?? String(describing: subcommand).lowercased()] + rest
      }
    }
    return nil
  }

  /// A usage error found while a command ran: its message and where to read that command's help,
  /// not the top-level usage.
  static func message(_ error: ValidationError, in command: ParsableCommand) -> String {
    let words = path(to: type(of: command)) ?? []
    return "Error: \(error.message)\nSee 'vmlab \((words + ["--help"]).joined(separator: " "))'."
  }
}
