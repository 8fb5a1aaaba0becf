import Foundation
import LabKit
import VHD

// Each call of `LabEngine` as the cluster answers it; they mean what `Library`'s do.

extension ClusterEngine {
  // MARK: VMs

  /// Every VM of the cluster, those of hosts that are not alive included (as last published):
  /// reading one of them then says its host is down.
  public func vms() throws -> [VirtualMachine] {
    if knownAll, Date().timeIntervalSince(knownAt) < Self.freshSeconds {
      return known.values.map(\.summary.vm).sorted { NameRules.key($0.name) < NameRules.key($1.name) }
    }
    let found = try load(nil)
    knownAll = true
    return found.map(\.summary.vm)
  }

  public func vm(named name: String) throws -> VirtualMachine { try summary(of: name).summary.vm }

  /// The host that holds the VM, whether or not that host is alive (where it is is no state it
  /// could have changed since).
  public func clusterHost(of vm: String) throws -> String? {
    if let entry = known[NameRules.key(vm)], entry.isFresh { return entry.host }
    guard let entry = try load([vm]).first else { throw LabKitError(.notFound, "no VM '\(vm)' in cluster \(url)") }
    return entry.host
  }

  public func createVM(
    name: String, diskSizes: [UInt64], additions: Bool, hostKind: HostKind?, host: String?, hardware: Hardware
  ) throws -> VirtualMachine {
    try place(
      CreateVMStep(
        name: name, disks: diskSizes, host: host, hostKind: hostKind?.rawValue, additions: additions,
        memory: hardware.memory, cpus: hardware.cpus), hardware: hardware)
  }

  public func createVM(
    name: String, image: String, extraDiskSizes: [UInt64], hostKind: HostKind?, host: String, hardware: Hardware
  ) throws -> VirtualMachine {
    try place(
      CreateVMStep(
        name: name, disks: extraDiskSizes, host: host, hostKind: hostKind?.rawValue, memory: hardware.memory,
        image: image, cpus: hardware.cpus), hardware: hardware)
  }

  public func createVM(
    name: String, from sourcePath: String, linked: Bool, extraDiskSizes: [UInt64], templateName: String?,
    additions: Bool, hostKind: HostKind?, host: String?, hardware: Hardware
  ) throws -> VirtualMachine {
    throw ClusterError(
      .usage,
      "vm.create{from=} is not available with --cluster: '\(sourcePath)' is a file on this machine, not on the hosts; build an image with `vmlab --cluster URL image build NAME` and create the VM with image=NAME, or run the script on one host with vmlab --library PATH"
    )
  }

  /// A new VM on the host placement chooses; a step carries memory and CPUs only.
  private func place(_ step: CreateVMStep, hardware: Hardware) throws -> VirtualMachine {
    let plain = Hardware(memory: hardware.memory, cpus: hardware.cpus)
    guard hardware == plain else {
      throw ClusterError(
        .usage,
        "VM '\(step.name)': only memory and cpus can be set with --cluster (not boot, network or accelerator); create it without them, or on one host with vmlab --library PATH; nothing was created"
      )
    }
    forget()
    let timeout = stepTimeout
    _ = try database { db in
      var placement = ClusterPlacement(db)
      placement.timeout = timeout
      placement.pollSeconds = 0.02
      return try await placement.createVMs([step], kind: "script-create-vm")
    }
    return try vm(named: step.name)
  }

  public func removeVM(named name: String) throws {
    let host = try host(of: name)
    try operate(VMOperationStep(vm: name, operation: .remove))
    // The library no longer holds it; its placement goes too (the agent would drop it when it
    // next reconciles, but the script's next call must not find it).
    try database { db in try await db.forgetPlacement(vm: name, host: host) }
    forget()
  }

  public func start(vm name: String) throws -> VirtualMachine { try power(name, .start) }
  public func shutDown(vm name: String) throws -> VirtualMachine { try power(name, .shutDown) }
  public func turnOff(vm name: String) throws -> VirtualMachine { try power(name, .turnOff) }
  public func save(vm name: String) throws -> VirtualMachine { try power(name, .save) }

  private func power(_ name: String, _ operation: VMOperationStep.Operation) throws -> VirtualMachine {
    guard let summary = try operate(VMOperationStep(vm: name, operation: operation)).summary else {
      throw ClusterError(.failed, "VM '\(name)': its host did not say what became of it")
    }
    return summary.vm
  }

  public func accelerator(of vm: String) throws -> String { throw unavailable("vm.accelerator", vm: vm) }

  public func recentConsole(of vm: String, lines: Int) throws -> String { throw unavailable("vm:console", vm: vm) }

  public func simulatedGuest(of vm: String) throws -> SimulatedGuest { throw unavailable("vm:read/vm:write", vm: vm) }

  /// Through a step on the VM's host, whose agent reaches the guest.
  public func run(_ command: GuestCommand, inGuestOf vm: String) throws -> GuestCommandResult {
    guard
      let output = try operate(VMOperationStep(vm: vm, operation: .exec, command: GuestCommandStep(command))).guest
    else {
      throw ClusterError(.failed, "VM '\(vm)': its host did not say what the command left")
    }
    return GuestCommandResult(
      standardOutput: output.standardOutput, standardError: output.standardError, status: output.status)
  }

  public func waitUntilReady(guestOf vm: String, timeout: Double) throws {
    try operate(VMOperationStep(vm: vm, operation: .waitReady, timeout: timeout))
  }

  // MARK: Checkpoints

  public func checkpoint(id: Int64) throws -> Checkpoint { try locate(checkpoint: id).checkpoint }

  public func checkpoint(vm name: String, named reference: String) throws -> Checkpoint {
    let summary = try summary(of: name).summary
    if let found = summary.checkpoints.last(where: { NameRules.key($0.name) == NameRules.key(reference) }) {
      return found
    }
    if let id = Int64(reference), let found = summary.checkpoints.first(where: { $0.id == id }) { return found }
    throw LabKitError(
      .notFound, "VM '\(summary.vm.name)' has no checkpoint '\(reference)'; `vm:checkpoints()` lists its checkpoints")
  }

  public func checkpoints(vm name: String?) throws -> [Checkpoint] {
    if let name { return try summary(of: name).summary.checkpoints }
    _ = try vms()
    return known.values.sorted { NameRules.key($0.summary.vm.name) < NameRules.key($1.summary.vm.name) }.flatMap {
      $0.summary.checkpoints
    }
  }

  public func mostRecentCheckpoints(vm name: String?) throws -> [Checkpoint] {
    let names = try name.map { [$0] } ?? vms().map(\.name)
    return try names.compactMap { try summary(of: $0).summary.checkpoints.max { $0.created < $1.created } }
  }

  public func checkpoint(vm name: String, name checkpointName: String, description: String, disksOnly: Bool) throws
    -> CheckpointResult
  {
    let result = try operate(
      VMOperationStep(
        vm: name, operation: .checkpoint, name: checkpointName, description: description, disksOnly: disksOnly))
    guard let done = result.checkpoint else {
      throw ClusterError(.failed, "VM '\(name)': its host did not say which checkpoint it took")
    }
    return done
  }

  public func space(of id: Int64) throws -> UInt64 {
    let (_, _, checkpoint) = try locate(checkpoint: id)
    let summary = try summary(of: checkpoint.vm).summary
    guard let index = summary.checkpoints.firstIndex(where: { $0.id == id }) else { return 0 }
    return summary.spaces[index]
  }

  public func changes(since id: Int64) throws -> [DiskChanges] {
    throw unavailable("checkpoint:changes", vm: try? locate(checkpoint: id).checkpoint.vm)
  }

  public func exportCheckpoint(_ id: Int64, to folder: String, type: DiskType) throws -> [String] {
    throw unavailable("checkpoint:export", vm: try? locate(checkpoint: id).checkpoint.vm)
  }

  public func restore(checkpoint id: Int64, whatIf: Bool) throws -> (plan: OperationPlan, result: CheckpointResult?) {
    guard !whatIf else { throw unavailable("restore{whatIf=true}", vm: try? locate(checkpoint: id).checkpoint.vm) }
    let (_, local, checkpoint) = try locate(checkpoint: id)
    let result = try operate(VMOperationStep(vm: checkpoint.vm, operation: .restore, checkpoint: local))
    guard let plan = result.plan else {
      throw ClusterError(.failed, "VM '\(checkpoint.vm)': its host did not say what the restore did")
    }
    return (plan, result.checkpoint)
  }

  public func restorePlans(checkpoints ids: [Int64]) throws -> [OperationPlan] {
    throw unavailable("vmlab.restore{whatIf=true} of several checkpoints")
  }

  public func restore(checkpoints ids: [Int64], all: Bool, confirm: String) throws -> [RestoreOutcome] {
    throw ClusterError(
      .usage,
      "restoring several checkpoints at once is not available with --cluster: put the VMs in a lab and restore the lab (all or nothing across hosts), or restore each checkpoint"
    )
  }

  public func merge(checkpoint id: Int64, whatIf: Bool) throws -> OperationPlan {
    guard !whatIf else { throw unavailable("merge{whatIf=true}", vm: try? locate(checkpoint: id).checkpoint.vm) }
    let (_, local, checkpoint) = try locate(checkpoint: id)
    guard let plan = try operate(VMOperationStep(vm: checkpoint.vm, operation: .merge, checkpoint: local)).plan else {
      throw ClusterError(.failed, "VM '\(checkpoint.vm)': its host did not say what the merge did")
    }
    return plan
  }

  public func merge(
    checkpoints ids: [Int64], all: Bool, whatIf: Bool, confirm: String, approve: ([OperationPlan]) throws -> Void
  ) throws -> [OperationPlan] {
    throw ClusterError(
      .usage, "merging several checkpoints at once is not available with --cluster: merge each checkpoint")
  }

  public func remove(checkpoint id: Int64, whatIf: Bool) throws -> OperationPlan {
    guard !whatIf else { throw unavailable("remove{whatIf=true}", vm: try? locate(checkpoint: id).checkpoint.vm) }
    let (_, local, checkpoint) = try locate(checkpoint: id)
    guard
      let plan = try operate(VMOperationStep(vm: checkpoint.vm, operation: .removeCheckpoint, checkpoint: local)).plan
    else {
      throw ClusterError(.failed, "VM '\(checkpoint.vm)': its host did not say what removing the checkpoint did")
    }
    return plan
  }

  // MARK: Labs

  public func labs() throws -> [Lab] {
    let labs = self.clusterLabs
    return try runBlocking { try await labs.list() }.enumerated().map { Self.lab($0.element, id: $0.offset + 1) }
  }

  public func lab(named name: String) throws -> Lab {
    guard let lab = try labs().first(where: { NameRules.key($0.name) == NameRules.key(name) }) else {
      throw LabKitError(.notFound, "no lab '\(name)' in cluster \(url); `vmlab --cluster URL lab list` shows the labs")
    }
    return lab
  }

  static func lab(_ lab: ClusterLab, id: Int) -> Lab {
    Lab(id: Int64(id), name: lab.name, created: lab.createdAt, vms: lab.members.map(\.vm))
  }

  public func createLab(name: String, vms names: [String]) throws -> Lab {
    let labs = self.clusterLabs
    _ = try runBlocking { try await labs.create(lab: name, vms: names) }
    return try lab(named: name)
  }

  public func addToLab(_ name: String, vms names: [String]) throws -> Lab {
    let labs = self.clusterLabs
    _ = try runBlocking { try await labs.create(lab: name, vms: names, add: true) }
    return try lab(named: name)
  }

  public func removeLab(named name: String) throws {
    let labs = self.clusterLabs
    try runBlocking { try await labs.remove(lab: name) }
  }

  public func labCheckpointNames(_ name: String) throws -> [String] {
    let lab = try self.lab(named: name)
    let perVM = try describe(lab.vms).map { $0.summary.checkpoints.map(\.name) }
    guard let first = perVM.first else { return [] }
    var seen: Set<String> = []
    return first.filter { checkpoint in
      perVM.allSatisfy { $0.contains(checkpoint) } && seen.insert(NameRules.key(checkpoint)).inserted
    }
  }

  /// Checkpoint `checkpointName` of every VM of the lab on every host, all or nothing.
  public func checkpointLab(_ name: String, checkpoint checkpointName: String, description: String) throws
    -> [LabMemberResult]
  {
    let lab = try self.lab(named: name)
    let before = try states(of: lab.vms)
    let labs = self.clusterLabs
    let started = Date()
    forget()
    try Self.labOperation {
      try runBlocking { try await labs.checkpoint(lab: lab.name, name: checkpointName, description: description) }
    }
    return try results(lab.vms, before: before, checkpoint: checkpointName, seconds: Date().timeIntervalSince(started))
  }

  /// Every VM of the lab back to `checkpointName` (nil: each one's most recent) on every host in
  /// parallel, all or nothing.
  public func restoreLab(_ name: String, checkpoint checkpointName: String?) throws -> [LabMemberResult] {
    let lab = try self.lab(named: name)
    let before = try states(of: lab.vms)
    let labs = self.clusterLabs
    let started = Date()
    forget()
    try Self.labOperation { try runBlocking { try await labs.restore(lab: lab.name, checkpoint: checkpointName) } }
    return try results(lab.vms, before: before, checkpoint: checkpointName, seconds: Date().timeIntervalSince(started))
  }

  /// A lab operation's failure as the script sees it: its message says what happened everywhere.
  private static func labOperation(_ body: () throws -> LabOperationStatus) throws {
    do {
      _ = try body()
    } catch let failure as LabOperationFailure {
      throw ClusterError(.failed, failure.message)
    }
  }

  private func states(of vms: [String]) throws -> [String: PowerState] {
    Dictionary(try describe(vms).map { (NameRules.key($0.summary.vm.name), $0.summary.vm.state) }) { a, _ in a }
  }

  /// Each member after a lab operation: the checkpoint it is at and what happened to its power
  /// (the hosts report the operation as a whole, so the power change is read from before and after).
  private func results(_ vms: [String], before: [String: PowerState], checkpoint: String?, seconds: Double) throws
    -> [LabMemberResult]
  {
    try describe(vms).map { entry in
      let vm = entry.summary.vm
      let current =
        checkpoint.flatMap { name in entry.summary.checkpoints.last { NameRules.key($0.name) == NameRules.key(name) } }
        ?? entry.summary.checkpoints.first { $0.id == vm.currentCheckpointID }
      let action = Self.powerAction(
        was: before[NameRules.key(vm.name)] ?? vm.state, now: vm.state, additions: vm.additions,
        online: current?.online ?? false)
      return LabMemberResult(
        vm: vm.name, checkpoint: current?.name ?? checkpoint ?? "", checkpointID: current?.id ?? 0, action: action,
        state: vm.state, seconds: seconds)
    }
  }

  /// What an operation did to a VM's power, read from its state before and after by the rules the
  /// engine follows: a VM that ran and runs again was checkpointed or restored online when the
  /// checkpoint holds its memory, else stopped for it (shut down through its additions, or turned
  /// off) and started again.
  static func powerAction(was: PowerState, now: PowerState, additions: Bool, online: Bool) -> PowerAction {
    switch (was, now) {
    case (.stopped, _): return .none
    case (.saved, _): return .savedStateDiscarded
    case (_, .running) where online: return .online
    default: return additions ? .shutDown : .turnedOff
    }
  }

  // MARK: Jobs

  public func job(id: Int64) throws -> Job {
    if let done = labJobs[id] { return done }
    guard let job = try database({ db in try await db.jobs(ids: [id]) }).first else {
      throw LabKitError(.notFound, "no job \(id) in cluster \(url); `vmlab --cluster URL job list` shows the jobs")
    }
    return Self.job(job)
  }

  public func jobs(limit: Int) throws -> [Job] {
    try database { db in try await db.jobs(limit: limit) }.map(Self.job)
  }

  public func wait(job id: Int64) throws -> Job {
    if let done = labJobs[id] { return done }
    let (timeout, progress) = (stepTimeout, stepProgress)
    let job = try database { db in
      var placement = ClusterPlacement(db)
      placement.timeout = timeout
      placement.pollSeconds = 0.05
      return try await placement.wait(for: id, progress: progress)
    }
    forget()
    return Self.job(job)
  }

  public func wait(jobs ids: [Int64]) throws -> [Job] { try ids.map { try wait(job: $0) } }

  /// A cluster job as a script sees a job: done when every step is.
  static func job(_ job: ClusterJob) -> Job {
    let failed = job.steps.filter { $0.state == "failed" }
    let finished = job.steps.allSatisfy { $0.state == "done" || $0.state == "failed" }
    let status: JobStatus =
      finished
      ? (failed.isEmpty ? .completed : .failed) : (job.steps.contains { $0.state == "running" } ? .running : .queued)
    let progress = job.steps.isEmpty ? 1 : job.steps.map(\.progress).reduce(0, +) / Double(job.steps.count)
    return Job(
      id: job.id, kind: job.kind, target: job.target, status: status, progress: finished ? 1 : progress,
      created: job.createdAt,
      error: failed.isEmpty ? nil : failed.map { "host \($0.host): \($0.error ?? "failed")" }.joined(separator: "; "),
      result: job.steps.compactMap(\.result).joined(separator: "; "))
  }

  public func checkpointJob(vm name: String, name checkpointName: String, description: String) throws -> Job {
    try submit(VMOperationStep(vm: name, operation: .checkpoint, name: checkpointName, description: description))
  }

  public func restoreJob(checkpoint id: Int64) throws -> Job {
    let (_, local, checkpoint) = try locate(checkpoint: id)
    return try submit(VMOperationStep(vm: checkpoint.vm, operation: .restore, checkpoint: local))
  }

  public func restoreJobs(checkpoints ids: [Int64], all: Bool, confirm: String) throws -> [Job] {
    _ = try restore(checkpoints: ids, all: all, confirm: confirm)
    return []
  }

  public func mergeJob(checkpoint id: Int64) throws -> Job {
    let (_, local, checkpoint) = try locate(checkpoint: id)
    return try submit(VMOperationStep(vm: checkpoint.vm, operation: .merge, checkpoint: local))
  }

  public func mergeJobs(checkpoints ids: [Int64], all: Bool, confirm: String) throws -> [Job] {
    _ = try merge(checkpoints: ids, all: all, whatIf: false, confirm: confirm, approve: { _ in })
    return []
  }

  /// A lab checkpoint as a job: the two-phase commit across hosts runs now (it is one cluster
  /// operation with its own prepare and decide jobs), and the job says how it ended.
  public func checkpointLabJob(_ name: String, checkpoint checkpointName: String, description: String) throws -> Job {
    let lab = try self.lab(named: name)
    let labs = self.clusterLabs
    let created = Date()
    forget()
    var job = Job(
      id: 0, kind: "lab-checkpoint", target: lab.name, status: .completed, progress: 1, created: created,
      started: created)
    do {
      let status = try runBlocking {
        try await labs.checkpoint(lab: lab.name, name: checkpointName, description: description)
      }
      job.id = status.decideJob ?? status.prepareJob ?? status.id
      job.result = "checkpoint '\(checkpointName)' of lab '\(lab.name)' on every host"
    } catch let failure as LabOperationFailure {
      job.id = failure.operation.map { $0.decideJob ?? $0.prepareJob ?? $0.id } ?? -Int64(labJobs.count + 1)
      job.status = .failed
      job.error = failure.message
    }
    job.finished = Date()
    labJobs[job.id] = job
    return job
  }

  /// One operation on one VM as a job of its own on the VM's host.
  private func submit(_ step: VMOperationStep) throws -> Job {
    let request = try StepRequest(host: try host(of: step.vm), kind: .vmOperation, step)
    forget()
    let id = try database { db in
      try await db.submitJob(
        kind: "script-\(step.operation.rawValue)", target: step.vm, steps: [request], maxAttempts: 1)
    }
    return try job(id: id)
  }
}
