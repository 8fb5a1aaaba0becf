import ArgumentParser
import Cluster
import Foundation
import LabKit
import LuaHost

/// `--sandbox` and the limits, shared by `run` and `repl`.
struct SandboxOptions: ParsableArguments {
  @Flag(
    help: ArgumentHelp(
      "Run sandboxed: no io, os or debug library, no binary chunks, C modules or loadlib, and limits on instructions and memory.",
      discussion: "The vmlab module stays available."))
  var sandbox = false

  @Option(
    help: ArgumentHelp(
      "VM instructions one run may execute (sandbox default 10000000; 0: unlimited). Also applies without --sandbox.",
      valueName: "count"))
  var instructionBudget: Int?

  @Option(
    help: ArgumentHelp(
      "Memory the Lua state may hold, such as 64M (sandbox default 64M; 0: unlimited). Also applies without --sandbox.",
      valueName: "size"))
  var memoryLimit: SizeArgument?

  func validate() throws {
    if let instructionBudget, instructionBudget < 0 {
      throw ValidationError("--instruction-budget cannot be negative")
    }
  }
}

/// The Lua state a script or the REPL runs in: the engine module, package.path with the bundled
/// Stdlib and the script's folder, and the limits asked for. The library opens only when a script
/// first touches VMs, checkpoints, labs or jobs.
final class ScriptHost {
  let state: LuaState
  private let libraryOptions: LibraryOptions
  private(set) var library: Library?
  /// With --cluster, the engine over the cluster database and its agents instead of a library.
  private(set) var clusterEngine: ClusterEngine?
  /// The jobs the script queued: waited for and reported when the session ends.
  let queuedJobs = QueuedJobs()

  init(
    library libraryOptions: LibraryOptions, cluster: ClusterURL? = nil, sandbox: SandboxOptions, scriptFolder: String?
  ) throws {
    self.libraryOptions = libraryOptions
    if sandbox.sandbox {
      var limits = LuaSandbox()
      if let budget = sandbox.instructionBudget { limits.instructionBudget = budget == 0 ? nil : budget }
      if let memory = sandbox.memoryLimit { limits.memoryLimit = memory.bytes == 0 ? nil : Int(clamping: memory.bytes) }
      state = try LuaState(sandbox: limits)
    } else {
      state = try LuaState()
      if let budget = sandbox.instructionBudget, budget > 0 { state.instructionBudget = budget }
      if let memory = sandbox.memoryLimit, memory.bytes > 0 { state.memoryLimit = Int(clamping: memory.bytes) }
    }
    VMLabModule.install(in: state, fileAccess: !sandbox.sandbox, queuedJobs: queuedJobs) { [unowned self] in
      if let cluster {
        let engine = try ClusterEngine(url: cluster)
        self.clusterEngine = engine
        return engine
      }
      let library = try self.libraryOptions.open()
      self.library = library
      return library
    }
    extendPackagePath(scriptFolder: scriptFolder)
    replaceOSExit()
  }

  deinit { state.close() }

  /// Stdlib modules (`require "vmlab.lab"` finds Stdlib/vmlab/lab.lua) and the script's own folder
  /// come before Lua's defaults.
  private func extendPackagePath(scriptFolder: String?) {
    guard let package = state[global: "package"].tableValue else { return }
    var folders: [String] = []
    if let stdlib = Stdlib.folder { folders.append(stdlib) }
    if let scriptFolder { folders.append(scriptFolder) }
    let entries = folders.flatMap { ["\($0)/?.lua", "\($0)/?/init.lua"] }
    let existing = package["path"].stringValue ?? ""
    package["path"] = .text((entries + [existing]).joined(separator: ";"))
  }

  /// Between two REPL chunks: other vmlab processes may use the library while the person thinks.
  func idle() {
    library?.releaseWhileIdle()
  }

  /// Before the next chunk: the library lock again, waiting (and saying so) for a process using it.
  func resume() throws {
    try library?.resumeAfterIdle { holder in
      FileHandle.standardError.write(Data("vmlab: \(holder); waiting for it to finish…\n".utf8))
    }
  }

  /// `os.exit` as Lua has it (true, false or a status; default true), except that the session ends
  /// first: the jobs the script queued finish and those that failed are reported (then the status
  /// is 1 if it was 0), as at the end of the script. Lua's own would cut the jobs off.
  private func replaceOSExit() {
    guard let os = state[global: "os"].tableValue else { return }  // the sandbox has none
    os["exit"] = .function(
      state.function(named: "exit") { [unowned self] arguments in
        var status: Int32
        switch arguments[1] {
        case .nil: status = EXIT_SUCCESS
        case .boolean(let success): status = success ? EXIT_SUCCESS : EXIT_FAILURE
        default: status = Int32(truncatingIfNeeded: try arguments.int(1))
        }
        fflush(nil)
        if !self.finish() && status == EXIT_SUCCESS { status = EXIT_FAILURE }
        exit(status)
      })
  }

  /// Ends the session: waits for the jobs the script queued (ending must not cut them off half
  /// way), reports on standard error those that failed (kind, target, error), and closes the
  /// library. Returns false when a queued job failed.
  @discardableResult
  func finish() -> Bool {
    if let engine = clusterEngine {
      clusterEngine = nil
      defer { engine.close() }
      return report(failuresIn: engine)
    }
    guard let library else { return true }
    self.library = nil
    defer { try? library.close() }
    return report(failuresIn: library)
  }

  /// Waits for the jobs the script queued on `engine` and reports those that failed; false when
  /// one failed or their outcome is unknown.
  private func report(failuresIn engine: any LabEngine) -> Bool {
    let failed: [Job]
    do {
      failed = try queuedJobs.failures(in: engine)
    } catch {
      Self.report(error)  // the jobs' outcome is unknown: not a success
      return false
    }
    guard !failed.isEmpty else { return true }
    fflush(nil)
    let count = queuedJobs.ids.count
    var text = "vmlab: "
    if failed.count < count {
      text += "\(failed.count) of the \(count) jobs the script queued failed:\n"
    } else {
      text += count == 1 ? "the job the script queued failed:\n" : "all \(count) jobs the script queued failed:\n"
    }
    for job in failed {
      text += "  job \(job.id), \(job.kind) of \(job.target): \(job.error ?? "failed")\n"
    }
    FileHandle.standardError.write(Data(text.utf8))
    return false
  }

  /// How a Lua error is shown: the message, and the traceback for runtime errors; limits are named
  /// with the option that raises them.
  static func report(_ error: Error) {
    fflush(nil)
    var text: String
    if let error = error as? LuaError {
      switch error.kind {
      case .instructionBudget:
        text = "script stopped: \(error.message) (raise it with --instruction-budget, 0 for none)"
      case .memoryLimit:
        text = "script stopped: \(error.message) (raise it with --memory-limit, 0 for none)"
      default:
        text = error.message
      }
      if error.kind != .syntax, let traceback = error.traceback { text += "\n" + traceback }
    } else {
      text = String(describing: error)
    }
    FileHandle.standardError.write(Data("vmlab: \(text)\n".utf8))
  }
}
