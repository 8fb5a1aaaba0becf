import ArgumentParser
import Cluster
import Foundation
import LuaHost

/// `vmlab repl`: interactive Lua with the engine loaded, as the standalone `lua` behaves: a line
/// that is an expression prints its values, an incomplete chunk continues on a `>>` prompt, an
/// error is printed and the session goes on.
struct ReplCommand: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "repl", abstract: "Interactive Lua with the engine loaded as `vmlab`.",
    discussion: """
      Expressions print their values (`vmlab.vms()` lists them), statements run, and a chunk that \
      is not complete yet (an open `function`, `do`, `{`) continues on the `>>` prompt. On a \
      terminal lines can be edited and history is kept in $VMLAB_HISTORY (default \
      ~/.vmlab_history). When standard input is not a terminal, lines are read from it without \
      prompts. Ctrl-C stops the chunk that is running, or at the prompt abandons the line being \
      typed; Ctrl-D ends the session.
      """)

  @OptionGroup var library: LibraryOptions
  @OptionGroup var cluster: ClusterOptions
  @OptionGroup var limits: SandboxOptions

  func run() throws {
    let host = try ScriptHost(
      library: library, cluster: cluster.isSet ? try cluster.url() : nil, sandbox: limits,
      scriptFolder: FileManager.default.currentDirectoryPath)
    var reader: LineReader = isatty(STDIN_FILENO) != 0 ? EditLineReader() : PlainLineReader()
    if reader.isInteractive {
      let lua = host.state[global: "_VERSION"].stringValue ?? "Lua"
      print("vmlab \(VMLabModule.version) (\(lua)); the engine is `vmlab`, Ctrl-D ends")
    }
    Repl(state: host.state, idle: host.idle, resume: host.resume).run(reader: &reader)
    reader.close()
    fflush(nil)
    guard host.finish() else { throw ExitCode.failure }  // a queued job failed: said, as `run` does
  }
}

/// The read-eval-print loop over any line source (tests drive it through pipes and terminals).
struct Repl {
  let state: LuaState
  /// Called before waiting for a line (the library lock is let go) and before running a chunk.
  var idle: () -> Void = {}
  var resume: () throws -> Void = {}

  func run(reader: inout LineReader) {
    var pending: String?
    reading: while true {
      let line: String
      switch readLine(&reader, prompt: pending == nil ? "> " : ">> ") {
      case .end: break reading
      case .interrupted:
        pending = nil  // Ctrl-C abandons the chunk being typed too
        continue reading
      case .line(let text): line = text
      }
      if pending == nil {
        // An expression first (`return <line>`), as lua.c 5.4 does; then a statement.
        if let function = try? state.load("return " + line, name: .stdin) {
          reader.remember(line)
          evaluate(function)
          continue
        }
        pending = line
      } else {
        pending! += "\n" + line
      }
      let chunk = pending!
      do {
        let function = try state.load(chunk, name: .stdin)
        pending = nil
        reader.remember(chunk)
        evaluate(function)
      } catch let error as LuaError where error.kind == .syntax && error.message.hasSuffix("<eof>") {
        continue  // incomplete: read more
      } catch {
        pending = nil
        reader.remember(chunk)
        ScriptHost.report(error)
      }
    }
    if let pending {
      // The input ended inside an unfinished chunk: say what was wrong with it.
      do { _ = try state.load(pending, name: .stdin) } catch { ScriptHost.report(error) }
    }
    if reader.isInteractive { print() }
  }

  /// A line, read while other processes may use the library.
  private func readLine(_ reader: inout LineReader, prompt: String) -> LineInput {
    idle()
    return reader.readLine(prompt: prompt)
  }

  /// Runs a chunk and prints what it returned with the global `print` (so a script may replace it),
  /// tables shown by their contents.
  /// Ctrl-C stops a chunk that runs too long and the session goes on.
  private func evaluate(_ function: LuaFunction) {
    do {
      try resume()
      try state.interruptingOnSIGINT {
        let results = try function.call()
        guard !results.isEmpty else { return }
        guard let print = state[global: "print"].functionValue else {
          throw LuaError(.runtime, message: "cannot print the results: the global 'print' is not a function")
        }
        // Lists and tables as their contents, not their address (LuaDisplay).
        let display = LuaDisplay(state: state)
        try print.call(arguments: results.map { display.text(for: $0).map(LuaValue.text) ?? $0 })
      }
      fflush(nil)
    } catch {
      ScriptHost.report(error)
    }
  }
}
