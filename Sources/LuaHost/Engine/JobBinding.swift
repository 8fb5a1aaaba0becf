import Foundation
import LabKit

/// A Job object's identity: the job id. Status, progress and result are read from the catalog on
/// every access, so a script polling `job.status` sees the job move.
struct JobHandle: Equatable {
  let id: Int64
}

/// The Job class, the Jobs list, `vmlab.wait`, `vmlab.jobs()` and `vmlab.job(id)`. Jobs run on the
/// engine's threads; Lua only waits for them (DESIGN.md rule 6).
extension EngineBinding {
  func defineJobs(in module: LuaTable, state: LuaState) {
    let job = state.defineClass("Job", payload: JobHandle.self)
    jobClass = job
    job.toString { [weak self] handle in
      guard let self, let current = try? self.engine.job(id: handle.id) else { return "Job \(handle.id)" }
      var text = "Job \(current.id) \(current.kind) of \(current.target) (\(current.status.rawValue)"
      switch current.status {
      case .running: text += ", \(Int(current.progress * 100))%"
      case .completed: if let result = current.result { text += ": \(result)" }
      case .failed: if let error = current.error { text += ": \(error)" }
      case .queued: break
      }
      return text + ")"
    }

    job.columns(["id", "kind", "target", "status", "progress", "result", "error"])
    job.property("id") { .integer($0.id) }
    job.property("kind") { handle in .text(try self.engine.job(id: handle.id).kind) }
    job.property("target") { handle in .text(try self.engine.job(id: handle.id).target) }
    job.property("status") { handle in .text(try self.engine.job(id: handle.id).status.rawValue) }
    job.property("done") { handle in .boolean(try self.engine.job(id: handle.id).status.isFinished) }
    job.property("progress") { handle in .number(try self.engine.job(id: handle.id).progress) }
    job.property("result") { handle in LuaValue(try self.engine.job(id: handle.id).result) }
    job.property("error") { handle in LuaValue(try self.engine.job(id: handle.id).error) }
    job.property("created") { handle in .text(Self.format(try self.engine.job(id: handle.id).created)) }
    job.property("duration") { handle in try self.engine.job(id: handle.id).duration.map { .number($0) } ?? .nil }
    job.method("wait") { handle, _ in
      _ = try self.engine.wait(job: handle.id)
      return [try self.defined(self.jobClass).wrap(handle)]
    }

    let list = state.listType(named: ListKind.jobs.rawValue)
    list.method("wait") { items, _ in try self.wait(items.array()) }

    module["wait"] = .function(
      state.function(named: "wait") { arguments in
        if arguments.count == 1, let items = arguments[1].tableValue { return try self.wait(items.array()) }
        return try self.wait(arguments.all)
      })
    module["jobs"] = .function(
      state.function(named: "jobs") { arguments in
        let limit = try arguments.int(1, default: 100)
        return [try self.list(.jobs, try self.engine.jobs(limit: limit).map { try self.wrapJob($0) })]
      })
    module["job"] = .function(
      state.function(named: "job") { arguments in
        let id = try arguments.int(1)
        return [try self.wrapJob(try self.engine.job(id: Int64(id)))]
      })
  }

  func wrapJob(_ job: Job) throws -> LuaValue {
    try defined(jobClass).wrap(JobHandle(id: job.id))
  }

  /// A job the script asked for, recorded so that the end of the run reports it if it failed.
  func queued(_ job: Job) throws -> LuaValue {
    queuedJobs?.record(job)
    return try wrapJob(job)
  }

  /// Waits for every job; returns them (a Jobs list) and how many failed.
  private func wait(_ values: [LuaValue]) throws -> [LuaValue] {
    let handles = try values.enumerated().map { index, value in
      guard let handle = jobClass?.payload(of: value) else {
        throw EngineError("wait: item \(index + 1) is a \(self.typeName(value)), not a Job")
      }
      return handle
    }
    let finished = try engine.wait(jobs: handles.map(\.id))
    let failed = finished.filter { $0.status == .failed }.count
    return [try list(.jobs, try handles.map { try defined(jobClass).wrap($0) }), .integer(Int64(failed))]
  }
}
