import ArgumentParser
import Cluster
import Foundation
import LuaHost

/// `vmlab run`: runs a Lua script (a file, a bundled Stdlib script, or -e chunks) with the engine
/// loaded as `vmlab`, the way the standalone `lua` runs one.
struct RunCommand: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "run", abstract: "Run a Lua script with the engine loaded as the module `vmlab`.",
    discussion: """
      SCRIPT is a path, the name of a bundled script (the Stdlib folder: $VMLAB_STDLIB, the \
      checkout's Stdlib, or <prefix>/share/vmlab/Stdlib), or - for standard input. Its arguments \
      are in the global `arg` (arg[0] is the script) and in `...`, as with `lua`; options of vmlab \
      go before SCRIPT. `require` finds modules in the Stdlib folder and beside the script.

      The library opens when the script first uses VMs, checkpoints, labs or jobs; disk-only \
      scripts need none. A syntax or runtime error prints its message (and traceback) and exits 1. \
      vmlab waits for the jobs the script queued ({async=true}) before it exits; if any of them \
      failed, it names each (job id, kind, target, error) and exits 1.

      Examples:
        vmlab run reset-lab.lua classroom
        vmlab run -e 'for _, vm in ipairs(vmlab.vms()) do print(vm) end'
        vmlab run --sandbox --instruction-budget 1000000 ./untrusted.lua
      """)

  @Option(
    name: .customShort("e"),
    help: ArgumentHelp("Run this Lua chunk before the script (repeatable).", valueName: "chunk"))
  var chunks: [String] = []

  @OptionGroup var library: LibraryOptions
  @OptionGroup var cluster: ClusterOptions
  @OptionGroup var limits: SandboxOptions

  /// Measures the bridge's per-call cost (Scripts/bench) and prints it as JSON.
  @Flag(help: .hidden) var benchBridge = false

  @Argument(
    parsing: .captureForPassthrough,
    help: ArgumentHelp("The script and its arguments.", valueName: "script-and-arguments"))
  var script: [String] = []

  func validate() throws {
    // Everything from SCRIPT on passes through to the script, so help asked for in its place is
    // vmlab's (a script named --help makes no sense).
    if let first = script.first, first == "--help" || first == "-h" {
      throw CleanExit.helpRequest(self)
    }
    if script.isEmpty && chunks.isEmpty && !benchBridge {
      throw ValidationError("give a script to run, or a chunk with -e (vmlab repl is interactive)")
    }
  }

  func run() throws {
    if benchBridge { return try benchmark() }
    let scriptPath = try script.first.map(resolve)
    let folder = scriptPath.flatMap { $0 == "-" ? nil : URL(fileURLWithPath: $0).deletingLastPathComponent().path }
    let host = try ScriptHost(
      library: library, cluster: cluster.isSet ? try cluster.url() : nil, sandbox: limits, scriptFolder: folder)
    let state = host.state
    let arguments = Array(script.dropFirst())
    setArgTable(state, script: scriptPath, arguments: arguments)
    do {
      // Ctrl-C stops the script between engine calls (and jobs it queued still finish); a second
      // Ctrl-C ends vmlab at once.
      try state.interruptingOnSIGINT {
        for chunk in chunks {
          try state.run(chunk, name: .commandLine)
        }
        if let scriptPath {
          let function =
            scriptPath == "-"
            ? try state.load(bytes: Array(FileHandle.standardInput.readDataToEndOfFile()), name: .stdin)
            : try state.load(file: scriptPath)
          try function.call(arguments: arguments.map { .text($0) })
        }
      }
    } catch {
      ScriptHost.report(error)
      host.finish()
      throw ExitCode.failure
    }
    fflush(nil)
    // A job the script queued and that failed fails the run, whether or not the script looked.
    guard host.finish() else { throw ExitCode.failure }
  }

  /// A path as given when it names a file; otherwise a bundled script of that name.
  private func resolve(_ name: String) throws -> String {
    if name == "-" { return name }
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: name, isDirectory: &isFolder) {
      guard !isFolder.boolValue else { throw RunError("\(name) is a folder, not a Lua script") }
      return name
    }
    if let bundled = Stdlib.script(named: name) { return bundled }
    let where_ = Stdlib.folder.map { "nor a script in \($0)" } ?? "and no Stdlib folder was found (set VMLAB_STDLIB)"
    throw RunError("cannot find the script '\(name)': it is not a file, \(where_)")
  }

  /// `arg` as the standalone interpreter sets it: arg[0] the script, arg[1...] its arguments,
  /// negative indices the interpreter's own words.
  private func setArgTable(_ state: LuaState, script: String?, arguments: [String]) {
    let table = state.newTable()
    let program = CommandLine.arguments.first ?? "vmlab"
    table[-2] = .text(program)
    table[-1] = "run"
    if let script { table[0] = .text(script) }
    for (index, argument) in arguments.enumerated() { table[index + 1] = .text(argument) }
    state[global: "arg"] = .table(table)
  }

  private func benchmark() throws {
    let iterations = ProcessInfo.processInfo.environment["LUAHOST_BENCHMARK_ITERATIONS"].flatMap(Int.init) ?? 2_000_000
    let measurement = try LuaBridgeBenchmark.measure(iterations: iterations)
    print(
      """
      {"bridgedCall": \(measurement.bridgedCall), "bridgedEchoCall": \(measurement.bridgedEchoCall), \
      "luaCall": \(measurement.luaCall), "loopIteration": \(measurement.loopIteration), "iterations": \(measurement.iterations)}
      """)
  }
}

/// A failure of the command itself (not of the script): printed as `vmlab: error: ...`, exit 1.
struct RunError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}
