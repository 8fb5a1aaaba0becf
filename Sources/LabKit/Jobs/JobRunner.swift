import Foundation

/// Runs jobs on a bounded pool of threads: jobs for different VMs run in parallel, and jobs for one
/// VM run one after the other in the order they were submitted.
final class JobRunner: @unchecked Sendable {
  private unowned let library: Library
  private let queue = WorkQueue(name: "vmlab jobs", width: WorkQueue.defaultWidth)
  private let lock = NSLock()
  private var running: [Int64: DispatchGroup] = [:]

  init(library: Library) {
    self.library = library
  }

  func submit(kind: String, target: String, _ work: @escaping () throws -> String?) throws -> Job {
    var record = JobRecord(
      id: nil, kind: kind, target: target, status: .queued, progress: 0, created: Date(), started: nil, finished: nil,
      error: nil, result: nil)
    try library.catalog.write { tx in try tx.insert(&record) }
    let id = record.id!
    let group = DispatchGroup()
    group.enter()
    lock.withLock { running[id] = group }
    // Its place in the VM's line is taken now: a synchronous call made after this waits for it.
    let place = library.vmOrder.reserve(NameRules.key(target))
    queue.submit(key: NameRules.key(target)) { [library] in
      library.vmOrder.run(place) { self.runJob(id, library: library, work) }
      self.lock.withLock { _ = self.running.removeValue(forKey: id) }
      group.leave()
    }
    return Job(record)
  }

  /// Runs a job's work, recording when it starts and how it ends.
  private func runJob(_ id: Int64, library: Library, _ work: () throws -> String?) {
    try? library.catalog.write { tx in try tx.markJobRunning(id: id, at: Date()) }
    do {
      let result = try work()
      try? library.catalog.write { tx in try tx.markJobCompleted(id: id, at: Date(), result: result) }
    } catch {
      try? library.catalog.write { tx in try tx.markJobFailed(id: id, at: Date(), error: String(describing: error)) }
    }
  }

  /// Runs work for several VMs on the job pool and waits for all of it: each item in its VM's turn
  /// (after what was asked of that VM before), items of one VM one after the other, different VMs in
  /// parallel. Outcomes come back in the items' order. Not for use inside a job, which would wait on
  /// the pool it holds a thread of.
  func runTogether<Output>(_ items: [(vm: String, work: () throws -> Output)]) -> [Outcome<Output>] {
    let results = ParallelResults<Output>(count: items.count)
    let group = DispatchGroup()
    for (index, item) in items.enumerated() {
      let key = NameRules.key(item.vm)
      let place = library.vmOrder.reserve(key)
      group.enter()
      queue.submit(key: key) { [library] in
        let outcome: Outcome<Output>
        do { outcome = .success(try library.vmOrder.run(place, item.work)) } catch { outcome = .failure(error) }
        results.lock.withLock { results.outcomes[index] = outcome }
        group.leave()
      }
    }
    group.wait()
    return results.outcomes.map { $0! }
  }

  /// Whether a job this process submitted is queued or running.
  var hasPending: Bool { lock.withLock { !running.isEmpty } }

  /// Waits until every job this process submitted has finished.
  func waitForAll() {
    while let group = lock.withLock({ running.values.first }) {
      group.wait()
    }
  }

  /// Waits until the job has finished (at once for jobs of earlier processes) and returns it.
  func wait(_ id: Int64) throws -> Job {
    let group = lock.withLock { running[id] }
    group?.wait()
    guard let record = try library.catalog.read({ tx in try tx.job(id: id) }) else {
      throw LabKitError(.notFound, "job \(id) not found; `vmlab job list` shows the jobs")
    }
    return Job(record)
  }
}

extension Library {
  public func job(id: Int64) throws -> Job {
    guard let record = try catalog.read({ tx in try tx.job(id: id) }) else {
      throw LabKitError(.notFound, "job \(id) not found; `vmlab job list` shows the jobs")
    }
    return Job(record)
  }

  /// Jobs, newest first.
  public func jobs(limit: Int = 100) throws -> [Job] {
    try catalog.read { tx in try tx.latestJobs(limit: limit).map(Job.init) }
  }

  /// The jobs that finished at `date` or later (the ones a process ran, or interrupted, while the
  /// caller waited for the library), oldest first, once every job of this process has finished.
  public func jobsFinished(since date: Date) throws -> [Job] {
    jobs.waitForAll()
    return try catalog.read { tx in try tx.jobs(finishedSince: date).map(Job.init) }
  }

  /// Waits for a job and returns it finished.
  @discardableResult
  public func wait(job id: Int64) throws -> Job {
    try jobs.wait(id)
  }

  /// Waits for every job and returns them finished, in the order given.
  @discardableResult
  public func wait(jobs ids: [Int64]) throws -> [Job] {
    try ids.map { try jobs.wait($0) }
  }

  /// Takes a checkpoint as a job.
  public func checkpointJob(vm name: String, name checkpointName: String, description: String = "") throws -> Job {
    try NameRules.validateCheckpoint(checkpointName)
    let vm = try self.vm(named: name)
    return try jobs.submit(kind: "checkpoint", target: vm.name) {
      let result = try self.checkpoint(vm: vm.name, name: checkpointName, description: description)
      return "checkpoint \(result.checkpoint.id) '\(result.checkpoint.name)' (\(result.action.rawValue))"
    }
  }

  /// Checkpoints every VM of a lab as one job, all or nothing like `checkpointLab` (the VMs are
  /// still checkpointed in parallel inside it).
  public func checkpointLabJob(_ name: String, checkpoint checkpointName: String, description: String = "") throws
    -> Job
  {
    let lab = try labToCheckpoint(name, checkpoint: checkpointName)
    return try jobs.submit(kind: "lab-checkpoint", target: lab.name) {
      let results = try self.checkpointLab(lab.name, checkpoint: checkpointName, description: description)
      return "lab '\(lab.name)': checkpoint '\(checkpointName)' of \(results.count) VM(s)"
    }
  }

  /// Restores a checkpoint as a job.
  public func restoreJob(checkpoint id: Int64) throws -> Job {
    let checkpoint = try self.checkpoint(id: id)
    return try jobs.submit(kind: "restore", target: checkpoint.vm) {
      let (_, result) = try self.restore(checkpoint: id)
      let action = result?.action ?? .none
      // A VM stopped for the restore runs again: say so beside how it was stopped.
      let ranAgain = (action == .shutDown || action == .turnedOff) && result?.vmState == .running
      return "restored '\(checkpoint.name)' (\(action.rawValue)\(ranAgain ? ", started again" : ""))"
    }
  }

  /// Merges a checkpoint as a job.
  public func mergeJob(checkpoint id: Int64) throws -> Job {
    let checkpoint = try self.checkpoint(id: id)
    return try jobs.submit(kind: "merge", target: checkpoint.vm) {
      let plan = try self.merge(checkpoint: id)
      return "merged \(plan.checkpointsRemoved.count) checkpoint(s), \(plan.bytesMerged) bytes"
    }
  }
}
