import ArgumentParser
import Foundation

/// Asks before an operation whose consequences the user may not expect: on a terminal it prints the
/// question and reads y/N; without a terminal nobody can answer, so it refuses and names `--yes`.
/// Either way the question comes before anything changes. `plan` says how to see what would
/// change (where `--what-if` is not taken, it names where to run it).
func confirm(_ question: String, yes: Bool, plan: String = "--what-if to see the plan") throws {
  if yes { return }
  guard isatty(STDIN_FILENO) == 1 else {
    throw ValidationError("\(question): pass --yes to go ahead, or \(plan)")
  }
  FileHandle.standardError.write(Data("\(question)? [y/N] ".utf8))
  let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased()
  guard answer == "y" || answer == "yes" else {
    FileHandle.standardError.write(Data("nothing changed\n".utf8))
    throw ExitCode.failure
  }
}
