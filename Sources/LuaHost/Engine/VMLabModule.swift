import Foundation
import LabKit

/// The Lua module `vmlab`: the engine (VMs, checkpoints, labs, jobs) and the disk library, as Lua
/// sees them. Installed as the global `vmlab` and in `package.loaded`, so `require "vmlab"` gives
/// the same table.
///
///     vmlab.version, vmlab.library()
///     vmlab.disk.create{path=, size=, type=} / {path=, parent=}, vmlab.disk.open(path)
///     vmlab.vm.create{name=, disks={"8G"}, additions=, memory=, cpus=, accelerator=} / {name=, from=, linked=},
///       vmlab.vm.get(name),
///       vmlab.vm.exists(name), vmlab.vms()
///     vmlab.checkpoints{vm=, mostRecent=, name=}
///     vmlab.lab.create{name=, vms=}, vmlab.lab.get(name), vmlab.labs()
///     vmlab.wait(jobs), vmlab.jobs(), vmlab.job(id)
///
/// Objects are userdata holding identities (ids and names), never engine pointers: an object whose
/// VM or checkpoint is gone raises a clear error when used. Engine errors are Lua errors (catchable
/// with pcall) carrying the engine's message.
public enum VMLabModule {
  public static let version = "0.1.0"

  /// Installs the module into `state`. `engine` is called once, the first time a script touches
  /// VMs, checkpoints, labs or jobs; disk functions and plain Lua never call it. Jobs the script
  /// queues are recorded in `queuedJobs`.
  @discardableResult
  public static func install(
    in state: LuaState, fileAccess: Bool = true, queuedJobs: QueuedJobs? = nil,
    engine: @escaping () throws -> any LabEngine
  ) -> LuaTable {
    let binding = EngineBinding(state: state, openEngine: engine, fileAccess: fileAccess, queuedJobs: queuedJobs)
    let module = state.newTable()
    module["version"] = .text(version)
    // Wall-clock seconds (os.clock counts CPU time, which stands still while jobs wait on disks).
    module["clock"] = .function(
      state.function(named: "clock") { _ in [.number(Date().timeIntervalSince1970)] })
    binding.defineDisks(in: module, state: state)
    binding.defineVMs(in: module, state: state)
    binding.defineCheckpoints(in: module, state: state)
    binding.defineLabs(in: module, state: state)
    binding.defineJobs(in: module, state: state)
    module["library"] = .function(
      state.function(named: "library") { _ in
        let engine = try binding.engine
        return [
          try binding.table([
            "path": .text(engine.root), "hostKind": .text(engine.defaultHostKind.rawValue),
            "vms": .integer(Int64(try engine.vms().count)), "labs": .integer(Int64(try engine.labs().count)),
          ])
        ]
      })
    state[global: "vmlab"] = .table(module)
    if let package = state[global: "package"].tableValue, let loaded = package["loaded"].tableValue {
      loaded["vmlab"] = .table(module)
    }
    return module
  }

  /// Installs the module over the library at `path` (opened on first use, its VMs run by `hosts`;
  /// `wait` waits for another process holding it instead of failing).
  @discardableResult
  public static func install(
    in state: LuaState, libraryAt path: String, hosts: HostRegistry, wait: Bool = false
  ) -> LuaTable {
    install(in: state) { try Library(at: path, hosts: hosts, wait: wait) as any LabEngine }
  }
}
