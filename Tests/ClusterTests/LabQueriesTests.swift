import LabKit
import TestSupport
import XCTest

@testable import Cluster

/// Labs and the coordinator's log in the database, without agents: what a lab holds, one open
/// operation per lab, the decision written once, decide steps queued once and only where needed,
/// and a stale prepare step recording nothing.
final class LabQueriesTests: XCTestCase {
  var cluster: TestCluster!
  var db: ClusterDatabase!

  override func setUp() async throws {
    cluster = try TestCluster()
    db = try await cluster.connect()
    try await db.migrate()
    for (host, heartbeat) in [("h1", 60.0), ("h2", 60.0), ("h3", 0.01)] {
      try await db.register(
        host: host, agent: "agent-\(host)", address: "", library: "/lib/\(host)",
        capacity: HostCapacity(memoryTotal: 0, memoryFree: 0, diskTotal: 0, diskFree: 0), capabilities: [],
        heartbeatSeconds: heartbeat)
    }
    _ = try await db.reconcilePlacements(host: "h1", vms: ["web": "Web", "db": "db"])
    _ = try await db.reconcilePlacements(host: "h2", vms: ["app": "app"])
    _ = try await db.reconcilePlacements(host: "h3", vms: ["cache": "cache"])
  }

  override func tearDown() async throws {
    await db?.close()
    cluster?.remove()
  }

  private func message(of body: () async throws -> Void) async -> String {
    do {
      try await body()
      return "no error"
    } catch {
      return "\(error)"
    }
  }

  func testALabHoldsVMsOfSeveralHostsWithTheirHostAndWhetherItIsAlive() async throws {
    let lab = try await db.createLab("class", vms: ["web", "app"])
    XCTAssertEqual(lab.members.map(\.vm), ["app", "Web"])
    XCTAssertEqual(lab.members.map(\.host), ["h2", "h1"])
    XCTAssertEqual(lab.membersByHost.map(\.host), ["h1", "h2"])
    let added = try await db.createLab("CLASS", vms: ["cache", "db"], add: true)
    XCTAssertEqual(added.name, "class", "lab names compare as VM names do")
    XCTAssertEqual(added.members.count, 4)
    // h3 heartbeats every 10 ms, so it is dead a moment after registering.
    try await Task.sleep(nanoseconds: 100_000_000)
    let shown = try await db.lab(named: "class")
    XCTAssertEqual(shown.members.first { $0.vm == "cache" }?.hostState, "dead")
    XCTAssertEqual(shown.members.first { $0.vm == "Web" }?.hostState, "alive")
    let names = try await db.labs().map(\.name)
    XCTAssertEqual(names, ["class"])
    try await db.removeLab("Class")
    let left = try await db.labs().count
    XCTAssertEqual(left, 0)
    let placements = try await db.placements(host: "h1").count
    XCTAssertEqual(placements, 2, "removing a lab leaves its VMs where they are")
  }

  func testWrongLabRequestsSayWhatIsWrongAndChangeNothing() async throws {
    let unplaced = await message { try await self.db.createLab("class", vms: ["web", "nowhere"]) }
    XCTAssertTrue(unplaced.contains("no host holds VM 'nowhere'"), unplaced)
    XCTAssertTrue(unplaced.contains("lab 'class' was not created"), unplaced)
    let labs = try await db.labs().count
    XCTAssertEqual(labs, 0, "nothing of the lab was made")
    let badName = await message { try await self.db.createLab("../x", vms: ["web"]) }
    XCTAssertTrue(badName.contains("lab name '../x' is not allowed"), badName)
    try await db.createLab("class", vms: ["web"])
    let twice = await message { try await self.db.createLab("class", vms: ["app"]) }
    XCTAssertTrue(twice.contains("lab 'class' exists already") && twice.contains("--add"), twice)
    let addToNone = await message { try await self.db.createLab("other", vms: ["app"], add: true) }
    XCTAssertTrue(addToNone.contains("no lab 'other' to add to"), addToNone)
    let missing = await message { _ = try await self.db.lab(named: "nope") }
    XCTAssertTrue(missing.contains("no lab 'nope'") && missing.contains("labs: class"), missing)
    let members = try await db.lab(named: "class").members.map(\.vm)
    XCTAssertEqual(members, ["Web"])
  }

  private func begin(_ lab: String = "class") async throws -> (operation: Int64, job: Int64)? {
    let shown = try await db.lab(named: lab)
    return try await db.beginLabOperation(
      lab: shown.name, kind: "checkpoint", checkpoint: "clean", description: "", disksOnly: false,
      createdBy: "tester", parts: shown.membersByHost)
  }

  func testOneOpenOperationPerLabAndARemovalWaitsForIt() async throws {
    try await db.createLab("class", vms: ["web", "db", "app"])
    let begun = try await begin()
    let first = try XCTUnwrap(begun)
    let second = try await begin()
    XCTAssertNil(second, "a second operation on the lab is refused while the first is open")
    let job = try await db.jobs(ids: [first.job])[0]
    XCTAssertEqual(job.steps.map(\.host), ["h1", "h2"], "one prepare step per host holding members")
    XCTAssertTrue(job.steps.allSatisfy { $0.kind == "prepare-checkpoint" })
    let removal = await message { try await self.db.removeLab("class") }
    XCTAssertTrue(removal.contains("lab 'class' is busy") && removal.contains("operation \(first.operation)"), removal)
    try await db.finishLabOperation(first.operation)
    let third = try await begin()
    XCTAssertNotNil(third, "the lab is free once its operation finished")
  }

  func testTheFirstDecisionWrittenStands() async throws {
    try await db.createLab("class", vms: ["web", "app"])
    let begun = try await begin()
    let (operation, _) = try XCTUnwrap(begun)
    let first = try await db.decideLabOperation(operation, commit: false, reason: "presumed abort")
    let late = try await db.decideLabOperation(operation, commit: true, reason: "every host prepared")
    XCTAssertFalse(first.commit)
    XCTAssertFalse(late.commit, "a coordinator that comes back follows the decision already written")
    XCTAssertEqual(late.reason, "presumed abort")
  }

  func testAStalePrepareStepRecordsNothingAndRollBackSkipsHostsThatNeverStarted() async throws {
    try await db.createLab("class", vms: ["web", "app"])
    let begun = try await begin()
    let (operation, _) = try XCTUnwrap(begun)
    let claim = try await db.claimStep(host: "h1", agent: "agent-h1", leaseSeconds: 30)
    let claimed = try XCTUnwrap(claim)
    let stale = try await db.finish(claimed, fence: claimed.fence - 1, message: "prepared", prepared: 7)
    XCTAssertFalse(stale, "a stale fence writes nothing")
    let staleStatus = try await db.labOperation(operation)
    XCTAssertEqual(staleStatus.hosts.map(\.preparedID), [nil, nil], "a stale fence recorded a prepared operation")
    let recorded = try await db.finish(claimed, message: "prepared", prepared: 7)
    XCTAssertTrue(recorded)
    // h2's prepare step is still queued: a roll-back takes it back and queues nothing for h2.
    _ = try await db.decideLabOperation(operation, commit: false, reason: "h2 is late")
    let queued = try await db.queueDecideSteps(operation, createdBy: "tester")
    XCTAssertEqual(queued, ["h1"])
    let again = try await db.queueDecideSteps(operation, createdBy: "tester")
    XCTAssertEqual(again, [], "queued once")
    let status = try await db.labOperation(operation)
    let h1 = try XCTUnwrap(status.hosts.first { $0.host == "h1" })
    let h2 = try XCTUnwrap(status.hosts.first { $0.host == "h2" })
    XCTAssertEqual(h1.preparedID, 7)
    XCTAssertEqual(h1.decideState, "queued")
    XCTAssertEqual(h2.prepareState, "failed")
    XCTAssertTrue(h2.prepareError?.contains("decided (roll-back) before this host took") == true, "\(h2)")
    XCTAssertNil(h2.decideStep)
    XCTAssertEqual(status.hostsOwingTheDecision.map(\.host), ["h1"])
    let decideClaim = try await db.claimStep(host: "h1", agent: "agent-h1", leaseSeconds: 30)
    let decide = try XCTUnwrap(decideClaim)
    let arguments = try JSONDecoder().decode(DecideStep.self, from: Data(decide.arguments.utf8))
    XCTAssertEqual(
      arguments, DecideStep(operation: operation, kind: "checkpoint", vms: ["Web"], prepared: 7, commit: false))
    let h2Claim = try await db.claimStep(host: "h2", agent: "agent-h2", leaseSeconds: 30)
    XCTAssertNil(h2Claim, "h2 runs nothing")
  }

  /// Claims `host`'s queued step, records the prepared operation `prepared` under its fence and
  /// ends it done, as an agent does.
  private func prepare(_ host: String, prepared: Int64) async throws {
    let claim = try await db.claimStep(host: host, agent: "agent-\(host)", leaseSeconds: 30)
    let claimed = try XCTUnwrap(claim, "\(host) has no step")
    let finished = try await db.finish(claimed, message: "prepared", prepared: prepared)
    XCTAssertTrue(finished)
  }

  func testTheDecisionAndItsDecideStepsAreWrittenTogetherAndTheFirstDecisionStands() async throws {
    try await db.createLab("class", vms: ["web", "app"])
    let begun = try await begin()
    let (operation, _) = try XCTUnwrap(begun)
    try await prepare("h1", prepared: 11)
    try await prepare("h2", prepared: 12)
    let decided = try await db.decideAndQueueSteps(
      operation, commit: true, reason: "every host prepared", createdBy: "tester")
    XCTAssertTrue(decided.commit)
    XCTAssertEqual(decided.reason, "every host prepared")
    let job = try XCTUnwrap(decided.decideJob)
    let status = try await db.labOperation(operation)
    XCTAssertEqual(status.decision, "commit")
    XCTAssertEqual(status.decideJob, job)
    XCTAssertEqual(status.hosts.map(\.decideState), ["queued", "queued"])
    XCTAssertEqual(status.hostsOwingTheDecision.map(\.host), ["h1", "h2"])
    let claim = try await db.claimStep(host: "h2", agent: "agent-h2", leaseSeconds: 30)
    let decide = try XCTUnwrap(claim)
    XCTAssertEqual(decide.jobID, job)
    XCTAssertEqual(
      try JSONDecoder().decode(DecideStep.self, from: Data(decide.arguments.utf8)),
      DecideStep(operation: operation, kind: "checkpoint", vms: ["app"], prepared: 12, commit: true))

    // A second decision (a coordinator that lost its connection as the first committed, and
    // tried again) follows the one written and queues nothing more.
    let again = try await db.decideAndQueueSteps(operation, commit: false, reason: "too late", createdBy: "tester")
    XCTAssertTrue(again.commit)
    XCTAssertEqual(again.reason, "every host prepared")
    XCTAssertEqual(again.decideJob, job)
    let steps = try await db.jobs(ids: [job]).first?.steps.count
    XCTAssertEqual(steps, 2, "decide steps queued once")
  }

  func testTheLookThatFindsEveryDecideStepDoneClosesTheOperation() async throws {
    try await db.createLab("class", vms: ["web", "app"])
    let begun = try await begin()
    let (operation, _) = try XCTUnwrap(begun)
    let undecided = try await db.labOperation(operation, closingWhenSettled: true)
    XCTAssertFalse(undecided.finished, "an undecided operation is not closed")
    try await prepare("h1", prepared: 11)
    try await prepare("h2", prepared: 12)
    _ = try await db.decideAndQueueSteps(operation, commit: true, reason: "every host prepared", createdBy: "tester")
    try await commitDecideStep("h1")
    let early = try await db.labOperation(operation, closingWhenSettled: true)
    XCTAssertFalse(early.finished, "h2 still owes the commit")
    XCTAssertEqual(early.hostsOwingTheDecision.map(\.host), ["h2"])
    let stillOpen = try await db.openLabOperation(lab: "class")
    XCTAssertEqual(stillOpen?.id, operation)
    try await commitDecideStep("h2")
    let plain = try await db.labOperation(operation)
    XCTAssertFalse(plain.finished, "a look without closingWhenSettled closes nothing")
    let last = try await db.labOperation(operation, closingWhenSettled: true)
    XCTAssertTrue(last.finished)
    XCTAssertEqual(last.hostsOwingTheDecision.map(\.host), [])
    let closed = try await db.openLabOperation(lab: "class")
    XCTAssertNil(closed, "the lab is free for the next operation")
  }

  /// Claims `host`'s queued decide step and ends it done, as an agent that committed does.
  private func commitDecideStep(_ host: String) async throws {
    let claim = try await db.claimStep(host: host, agent: "agent-\(host)", leaseSeconds: 30)
    let claimed = try XCTUnwrap(claim, "\(host) has no step")
    XCTAssertEqual(claimed.kind, StepKind.decide.rawValue)
    let finished = try await db.finish(claimed, message: "committed")
    XCTAssertTrue(finished)
  }

  func testACommitAskedForAfterAnotherDecisionFollowsThatDecision() async throws {
    try await db.createLab("class", vms: ["web", "app"])
    let begun = try await begin()
    let (operation, _) = try XCTUnwrap(begun)
    try await prepare("h1", prepared: 11)
    try await prepare("h2", prepared: 12)
    // Whoever took the coordinator for dead decided first.
    _ = try await db.decideLabOperation(operation, commit: false, reason: "presumed abort")
    let decided = try await db.decideAndQueueSteps(
      operation, commit: true, reason: "every host prepared", createdBy: "tester")
    XCTAssertFalse(decided.commit)
    XCTAssertEqual(decided.reason, "presumed abort")
    let job = try XCTUnwrap(decided.decideJob)
    let claim = try await db.claimStep(host: "h1", agent: "agent-h1", leaseSeconds: 30)
    let decide = try XCTUnwrap(claim)
    XCTAssertEqual(decide.jobID, job)
    XCTAssertEqual(
      try JSONDecoder().decode(DecideStep.self, from: Data(decide.arguments.utf8)),
      DecideStep(operation: operation, kind: "checkpoint", vms: ["Web"], prepared: 11, commit: false))
  }

  func testACommitAskedForBeforeEveryHostPreparedQueuesNothingForAHostThatNeverStarted() async throws {
    try await db.createLab("class", vms: ["web", "app"])
    let begun = try await begin()
    let (operation, _) = try XCTUnwrap(begun)
    try await prepare("h1", prepared: 11)
    let decided = try await db.decideAndQueueSteps(
      operation, commit: true, reason: "every host prepared", createdBy: "tester")
    XCTAssertTrue(decided.commit)
    let status = try await db.labOperation(operation)
    XCTAssertEqual(status.hosts.map(\.host), ["h1", "h2"])
    XCTAssertEqual(status.hosts.map(\.decideState), ["queued", nil])
    XCTAssertEqual(status.hosts.map(\.prepareState), ["done", "failed"])
  }

  func testTheEndOfALabOperationsStepWakesItsCoordinatorAndOtherStepsDoNot() async throws {
    let (heard, stop) = try await listenToLabSteps()
    defer { stop() }
    try await db.createLab("class", vms: ["web", "app"])
    let begun = try await begin()
    let (_, job) = try XCTUnwrap(begun)
    // A step of another job ends first: it wakes no coordinator.
    let other = try await db.submitJob(
      kind: "test", steps: [try StepRequest(host: "h3", kind: .startVMs, VMsStep(vms: ["cache"]))])
    let otherClaim = try await db.claimStep(host: "h3", agent: "agent-h3", leaseSeconds: 30)
    let otherStep = try XCTUnwrap(otherClaim)
    XCTAssertEqual(otherStep.jobID, other)
    _ = try await db.finish(otherStep, succeeded: true, message: "started")
    try await prepare("h1", prepared: 11)
    try await waitFor("the notification of h1's prepare step") { !heard.payloads.isEmpty }
    XCTAssertEqual(heard.payloads, ["\(job)"], "only the lab operation's step, named by its job")

    // A prepare step whose lease ran out and was taken back wakes it too (the step failed or will
    // run again; either way the coordinator looks).
    let claim = try await db.claimStep(host: "h2", agent: "agent-h2", leaseSeconds: 0.01)
    XCTAssertNotNil(claim)
    try await waitFor("h2's lease to be taken back") { !(try await self.db.reapExpiredLeases()).isEmpty }
    try await waitFor("the notification of h2's reaped step") { heard.payloads.count == 2 }
    XCTAssertEqual(heard.payloads, ["\(job)", "\(job)"])

    // The job's last open step says so: the coordinator reads the operation without counting.
    try await prepare("h2", prepared: 12)
    try await waitFor("the notification of h2's prepare step") { heard.payloads.count == 3 }
    XCTAssertEqual(heard.payloads.last, "\(job) end")
    XCTAssertEqual(LabStepEnd(payload: heard.payloads[2]), LabStepEnd(job: job, settled: true))
    XCTAssertEqual(LabStepEnd(payload: heard.payloads[0]), LabStepEnd(job: job, settled: false))
  }

  func testAFailedStepOfALabOperationSaysItsJobIsSettledWhileOthersRun() async throws {
    let (heard, stop) = try await listenToLabSteps()
    defer { stop() }
    try await db.createLab("class", vms: ["web", "app"])
    let begun = try await begin()
    let (_, job) = try XCTUnwrap(begun)
    let claim = try await db.claimStep(host: "h1", agent: "agent-h1", leaseSeconds: 30)
    let claimed = try XCTUnwrap(claim)
    _ = try await db.finish(claimed, succeeded: false, message: "disk full")
    try await waitFor("the notification of h1's failed step") { !heard.payloads.isEmpty }
    XCTAssertEqual(heard.payloads, ["\(job) end"], "h2's step is still queued, but h1's failure decides")
    XCTAssertNil(LabStepEnd(payload: "12 ended"))
    XCTAssertNil(LabStepEnd(payload: ""))
  }

  /// Listens on `labStepsChannel` as a coordinator does, from when it returns; `stop` ends it.
  private func listenToLabSteps() async throws -> (heard: Heard, stop: () -> Void) {
    let listener = try await cluster.connect()
    let heard = Heard()
    let started = Heard()
    let listening = Task {
      try await listener.listen(on: labStepsChannel, started: { started.add("listening") }) { heard.add($0) }
    }
    try await waitFor("the LISTEN") { !started.payloads.isEmpty }
    return (
      heard,
      {
        listening.cancel()
        Task { await listener.close() }
      }
    )
  }

  private func waitFor(_ what: String, seconds: Double = 10, _ done: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      if try await done() { return }
      try await Task.sleep(nanoseconds: 20_000_000)
    }
    XCTFail("waited \(seconds) s for \(what)")
  }
}

private final class Heard: @unchecked Sendable {
  private let lock = NSLock()
  private var received: [String] = []
  func add(_ payload: String) { lock.withLock { received.append(payload) } }
  var payloads: [String] { lock.withLock { received } }
}
