import CEditLine
import Foundation

/// What the REPL reads next.
enum LineInput: Equatable {
  case line(String)
  /// Ctrl-C at the prompt: the line (and an unfinished chunk) is abandoned, the session goes on.
  case interrupted
  /// Ctrl-D or the end of the input.
  case end
}

/// Where the REPL's lines come from: libedit (line editing and history) on a terminal, plain
/// standard input otherwise (no prompts, so `echo 'print(1)' | vmlab repl` prints only 1).
protocol LineReader {
  var isInteractive: Bool { get }
  /// The next line without its newline, Ctrl-C at the prompt, or the end of input.
  mutating func readLine(prompt: String) -> LineInput
  /// Remembers a complete entry (a whole multi-line chunk is one entry).
  mutating func remember(_ entry: String)
  func close()
}

/// libedit's readline interface, with a history file ($VMLAB_HISTORY, else ~/.vmlab_history).
/// While it waits for a line, Ctrl-C clears the line instead of ending vmlab.
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
    vmlab_prompt_catch_sigint()  // before libedit starts: it passes SIGINT on to this handler
    using_history()
    stifle_history(1000)
    if let historyPath { _ = read_history(historyPath) }
  }

  mutating func readLine(prompt: String) -> LineInput {
    _ = vmlab_prompt_take_interrupt()  // a Ctrl-C that stopped the last chunk is spent
    let line = readline(prompt)
    let interrupted = vmlab_prompt_take_interrupt() != 0
    guard let line else {
      guard interrupted else { return .end }
      // The terminal does not echo it in libedit's mode: say it, and start the next prompt afresh.
      print("^C")
      fflush(nil)
      return .interrupted
    }
    defer { free(line) }
    return .line(String(cString: line))
  }

  mutating func remember(_ entry: String) {
    guard !entry.trimmingCharacters(in: .whitespaces).isEmpty else { return }
    add_history(entry)
    if let historyPath { _ = write_history(historyPath) }
  }

  func close() {
    vmlab_prompt_release_sigint()
  }
}

/// Lines from a pipe or file.
struct PlainLineReader: LineReader {
  var isInteractive: Bool { false }

  mutating func readLine(prompt: String) -> LineInput {
    Swift.readLine(strippingNewline: true).map(LineInput.line) ?? .end
  }

  mutating func remember(_ entry: String) {}
  func close() {}
}
