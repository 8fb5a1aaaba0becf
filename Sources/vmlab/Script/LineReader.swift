import CEditLine
import Foundation

/// Where the REPL's lines come from: libedit (line editing and history) on a terminal, plain
/// standard input otherwise (no prompts, so `echo 'print(1)' | vmlab repl` prints only 1).
protocol LineReader {
  var isInteractive: Bool { get }
  /// The next line without its newline, or nil at the end of input.
  mutating func readLine(prompt: String) -> String?
  /// Remembers a complete entry (a whole multi-line chunk is one entry).
  mutating func remember(_ entry: String)
  func close()
}

/// libedit's readline interface, with a history file ($VMLAB_HISTORY, else ~/.vmlab_history).
struct EditLineReader: LineReader {
  let historyPath: String?
  var isInteractive: Bool { true }

  init() {
    let environment = ProcessInfo.processInfo.environment
    if let path = environment["VMLAB_HISTORY"] {
      historyPath = path.isEmpty ? nil : path
    } else if let home = environment["HOME"], !home.isEmpty {
      historyPath = home + "/.vmlab_history"
    } else {
      historyPath = nil
    }
    using_history()
    stifle_history(1000)
    if let historyPath { _ = read_history(historyPath) }
  }

  mutating func readLine(prompt: String) -> String? {
    guard let line = readline(prompt) else { return nil }
    defer { free(line) }
    return String(cString: line)
  }

  mutating func remember(_ entry: String) {
    guard !entry.trimmingCharacters(in: .whitespaces).isEmpty else { return }
    add_history(entry)
    if let historyPath { _ = write_history(historyPath) }
  }

  func close() {}
}

/// Lines from a pipe or file.
struct PlainLineReader: LineReader {
  var isInteractive: Bool { false }

  mutating func readLine(prompt: String) -> String? {
    Swift.readLine(strippingNewline: true)
  }

  mutating func remember(_ entry: String) {}
  func close() {}
}
