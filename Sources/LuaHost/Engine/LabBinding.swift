import Foundation
import LabKit

/// A Lab object's identity: the catalog id and the name.
struct LabHandle: Equatable {
  let id: Int64
  let name: String
}

/// `vmlab.lab.*`, `vmlab.labs()` and the Lab class: groups of VMs checkpointed and restored as one.
extension EngineBinding {
  func defineLabs(in module: LuaTable, state: LuaState) {
    let lab = state.defineClass("Lab", payload: LabHandle.self)
    labClass = lab
    lab.equality { $0.id == $1.id }
    lab.toString { [weak self] handle in
      guard let self, let current = try? self.current(handle) else { return "Lab \(handle.name) (removed)" }
      return "Lab \(current.name) (\(current.vms.count == 1 ? "1 VM" : "\(current.vms.count) VMs"))"
    }

    lab.columns(["name", "vms", "created"])
    lab.property("id") { .integer($0.id) }
    lab.property("name") { .text($0.name) }
    lab.property("created") { handle in .text(Self.format(try self.current(handle).created)) }
    lab.property("vms") { handle in
      let engine = try self.engine
      return try self.list(.vms, try self.current(handle).vms.map { try self.wrapVM(try engine.vm(named: $0)) })
    }

    lab.method("add") { handle, arguments in
      var names: [String] = []
      for position in 1...max(arguments.count, 1) {
        let value = arguments[position]
        if let handle = self.vmClass?.payload(of: value) {
          names.append(try self.current(handle).name)
        } else if let name = value.stringValue {
          names.append(name)
        } else if let items = value.tableValue {
          names += try items.array().map { try self.vmName($0, what: "add") }
        } else {
          throw arguments.error(position, "VM, VM name or list of VMs expected, got \(arguments.typeName(position))")
        }
      }
      _ = try self.engine.addToLab(try self.current(handle).name, vms: names)
      return [try self.wrapLab(handle)]
    }
    lab.method("checkpoint") { handle, arguments in
      let request = try CheckpointRequest(arguments, position: 1)
      let current = try self.current(handle)
      if request.async {
        // One job for the lab: all or nothing, as the synchronous call.
        let job = try self.engine.checkpointLabJob(
          current.name, checkpoint: request.name, description: request.description)
        return [try self.queued(job)]
      }
      let results = try self.engine.checkpointLab(
        current.name, checkpoint: request.name, description: request.description)
      return [try self.list(.plain, try results.map(self.memberTable))]
    }
    lab.method("restore") { handle, arguments in
      let name: String?
      if let text = arguments[1].stringValue {
        name = text
      } else {
        try arguments.checkOptions(1, allowed: ["name", "mostRecent"])
        let named = try arguments.option(1, "name", as: String.self)
        let mostRecent = try arguments.flag(1, "mostRecent")
        guard (named == nil) != !mostRecent else {
          throw arguments.error(1, "give a checkpoint name, or {mostRecent=true}")
        }
        name = named
      }
      let results = try self.engine.restoreLab(try self.current(handle).name, checkpoint: name)
      return [try self.list(.plain, try results.map(self.memberTable))]
    }
    lab.method("checkpoints") { handle, _ in
      [try self.strings(try self.engine.labCheckpointNames(try self.current(handle).name))]
    }
    lab.method("remove") { handle, _ in
      try self.engine.removeLab(named: try self.current(handle).name)
      return []
    }

    let functions = state.newTable()
    functions["create"] = .function(
      state.function(named: "create") { arguments in
        try arguments.checkOptions(1, allowed: ["name", "vms"])
        _ = try arguments.table(1)
        let name = try arguments.requiredString(1, "name")
        let members = try arguments.field(1, "vms")
        var names: [String] = []
        if let items = members.tableValue {
          names = try items.array().map { try self.vmName($0, what: "create: field 'vms'") }
        } else if !members.isNil {
          throw arguments.error(1, "field 'vms': list of VMs expected, got \(members.typeName)")
        }
        return [try self.wrapLab(try self.engine.createLab(name: name, vms: names))]
      })
    functions["get"] = .function(
      state.function(named: "get") { arguments in
        [try self.wrapLab(try self.engine.lab(named: try arguments.string(1)))]
      }
    )
    module["lab"] = .table(functions)
    module["labs"] = .function(
      state.function(named: "labs") { _ in [try self.list(.labs, try self.engine.labs().map { try self.wrapLab($0) })]
      })
  }

  /// The lab as it is now, or a clear error for a handle whose lab is gone.
  func current(_ handle: LabHandle) throws -> Lab {
    try current("lab", named: handle.name, id: handle.id, lookup: engine.lab(named:), id: \.id)
  }

  func wrapLab(_ lab: Lab) throws -> LuaValue {
    try defined(labClass).wrap(LabHandle(id: lab.id, name: lab.name))
  }

  func wrapLab(_ handle: LabHandle) throws -> LuaValue {
    try defined(labClass).wrap(handle)
  }

  /// What a lab operation did to one VM.
  func memberTable(_ result: LabMemberResult) throws -> LuaValue {
    try table([
      "vm": .text(result.vm), "checkpoint": .text(result.checkpoint), "checkpointID": .integer(result.checkpointID),
      "action": .text(result.action.rawValue), "state": .text(result.state.rawValue),
      "seconds": .number(result.seconds),
    ])
  }
}
