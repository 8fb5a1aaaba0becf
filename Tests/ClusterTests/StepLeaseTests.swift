import TestSupport
import XCTest

@testable import Cluster

/// Claims, leases and fences in the database, without agents: what keeps two agents from running
/// one step and a stale one from writing.
final class StepLeaseTests: XCTestCase {
  var cluster: TestCluster!
  var db: ClusterDatabase!

  override func setUp() async throws {
    cluster = try TestCluster()
    db = try await cluster.connect()
    try await db.migrate()
    for host in ["h1", "h2"] {
      try await db.register(
        host: host, agent: "agent-\(host)", address: "", library: "/lib/\(host)",
        capacity: HostCapacity(memoryTotal: 0, memoryFree: 0, diskTotal: 0, diskFree: 0), capabilities: [],
        heartbeatSeconds: 60)
    }
  }

  override func tearDown() async throws {
    await db?.close()
    cluster?.remove()
  }

  private func queue(_ hosts: [String], maxAttempts: Int = 3) async throws -> Int64 {
    try await db.submitJob(
      kind: "test",
      steps: try hosts.enumerated().map { index, host in
        try StepRequest(host: host, kind: .startVMs, VMsStep(vms: ["vm\(index)"]))
      }, maxAttempts: maxAttempts)
  }

  func testAHostClaimsOnlyItsOwnStepsOldestFirst() async throws {
    let job = try await queue(["h2", "h1", "h1"])
    let first = try await db.claimStep(host: "h1", agent: "a", leaseSeconds: 30)
    let second = try await db.claimStep(host: "h1", agent: "a", leaseSeconds: 30)
    let third = try await db.claimStep(host: "h1", agent: "a", leaseSeconds: 30)
    XCTAssertEqual(first?.jobID, job)
    XCTAssertEqual(first?.arguments.contains("vm1"), true)
    XCTAssertEqual(second?.arguments.contains("vm2"), true)
    XCTAssertNil(third, "h2's step is not h1's to take")
    XCTAssertGreaterThan(second!.fence, first!.fence, "each claim draws a new fence")
    XCTAssertEqual(first?.attempt, 1)
  }

  func testAStepsEndSaysWhetherAnotherStepOfItsHostIsQueued() async throws {
    _ = try await queue(["h1", "h1", "h2"])
    let claim = try await db.claimStep(host: "h1", agent: "agent-h1", leaseSeconds: 30)
    let first = try XCTUnwrap(claim)
    let firstEnd = try await db.finishStep(
      step: first, succeeded: true, message: "started", host: "h1", agent: "agent-h1")
    XCTAssertEqual(firstEnd, StepEnding(moreQueued: true), "h1's second step waits: the agent claims it at once")
    let next = try await db.claimStep(host: "h1", agent: "agent-h1", leaseSeconds: 30)
    let second = try XCTUnwrap(next)
    let secondEnd = try await db.finishStep(
      step: second, succeeded: false, message: "no such VM", host: "h1", agent: "agent-h1")
    XCTAssertEqual(secondEnd, StepEnding(moreQueued: false), "h2's step is not h1's")
  }

  func testConcurrentClaimsNeverTakeTheSameStep() async throws {
    _ = try await queue(Array(repeating: "h1", count: 40))
    let url = cluster.url
    let claimed = try await withThrowingTaskGroup(of: [Int64].self) { group in
      for _ in 0..<4 {
        group.addTask {
          let own = try await ClusterDatabase.connect(url)
          var ids: [Int64] = []
          while let step = try await own.claimStep(host: "h1", agent: "a", leaseSeconds: 30) { ids.append(step.id) }
          await own.close()
          return ids
        }
      }
      return try await group.reduce(into: []) { $0 += $1 }
    }
    XCTAssertEqual(claimed.count, 40)
    XCTAssertEqual(Set(claimed).count, 40, "a step was claimed twice")
  }

  func testOnlyTheCurrentFenceMayWrite() async throws {
    _ = try await queue(["h1"])
    let claimed = try await db.claimStep(host: "h1", agent: "a", leaseSeconds: 30)
    let step = try XCTUnwrap(claimed)
    let renewed = try await db.renewLease(step: step.id, fence: step.fence, leaseSeconds: 30)
    XCTAssertTrue(renewed)
    let renewedWithOlderFence = try await db.renewLease(step: step.id, fence: step.fence - 1, leaseSeconds: 30)
    XCTAssertFalse(renewedWithOlderFence)
    let progressWithNewerFence = try await db.reportProgress(step: step.id, fence: step.fence + 1, progress: 0.5)
    XCTAssertFalse(progressWithNewerFence)
    let finishedWithNewerFence = try await db.finish(step, fence: step.fence + 1, succeeded: true, message: "forged")
    XCTAssertFalse(finishedWithNewerFence)
    let placedWithNewerFence = try await db.placeVM("vm0", key: "vm0", host: "h1", step: step.id, fence: step.fence + 1)
    XCTAssertFalse(placedWithNewerFence)
    let progressed = try await db.reportProgress(step: step.id, fence: step.fence, progress: 0.5)
    XCTAssertTrue(progressed)
    let placed = try await db.placeVM("vm0", key: "vm0", host: "h1", step: step.id, fence: step.fence)
    XCTAssertTrue(placed)
    let finished = try await db.finish(step, succeeded: true, message: "started vm0")
    XCTAssertTrue(finished)
    let finishedTwice = try await db.finish(step, succeeded: false, message: "late")
    XCTAssertFalse(
      finishedTwice,
      "a finished step takes no second result")
    let status = try await db.jobs()[0].steps[0]
    XCTAssertEqual(status.state, "done")
    XCTAssertEqual(status.result, "started vm0")
    XCTAssertEqual(status.progress, 1)
    let vmCount = try await db.hosts().first { $0.name == "h1" }?.vmCount
    XCTAssertEqual(vmCount, 1)
  }

  func testAnExpiredLeaseIsQueuedAgainAndItsOldFenceRefused() async throws {
    _ = try await queue(["h1"])
    let claimed = try await db.claimStep(host: "h1", agent: "a", leaseSeconds: 0.2)
    let step = try XCTUnwrap(claimed)
    let reaped = try await waitForReap()
    XCTAssertEqual(reaped.map(\.id), [step.id])
    XCTAssertEqual(reaped[0].state, "queued")
    XCTAssertTrue(reaped[0].error.contains("attempt 1 of 3 on host h1 ended: its lease ran out"), reaped[0].error)
    XCTAssertTrue(reaped[0].error.contains("queued again"), reaped[0].error)
    let staleFinished = try await db.finish(step, succeeded: true, message: "stale")
    XCTAssertFalse(staleFinished)
    let staleRenewed = try await db.renewLease(step: step.id, fence: step.fence, leaseSeconds: 30)
    XCTAssertFalse(staleRenewed)

    let claimedAgain = try await db.claimStep(host: "h1", agent: "b", leaseSeconds: 30)
    let again = try XCTUnwrap(claimedAgain)
    XCTAssertEqual(again.id, step.id)
    XCTAssertEqual(again.attempt, 2)
    XCTAssertGreaterThan(again.fence, step.fence)
    let staleFinishedAfterReclaim = try await db.finish(step, succeeded: true, message: "stale")
    XCTAssertFalse(staleFinishedAfterReclaim)
    let finished = try await db.finish(step, fence: again.fence, succeeded: true, message: "ok")
    XCTAssertTrue(finished)
  }

  func testAStepOutOfAttemptsFailsWithTheReason() async throws {
    _ = try await queue(["h1"], maxAttempts: 1)
    let claimed = try await db.claimStep(host: "h1", agent: "a", leaseSeconds: 0.2)
    XCTAssertNotNil(claimed)
    let reaped = try await waitForReap()
    XCTAssertEqual(reaped.first?.state, "failed")
    let status = try await db.jobs()[0]
    XCTAssertEqual(status.state, "failed")
    XCTAssertTrue(status.steps[0].error?.contains("no attempts left") == true, "\(status.steps[0])")
    let claimedFailed = try await db.claimStep(host: "h1", agent: "a", leaseSeconds: 30)
    XCTAssertNil(claimedFailed, "a failed step is not claimed")
  }

  func testARunningLeaseIsNotTakenBack() async throws {
    _ = try await queue(["h1"])
    let claimed = try await db.claimStep(host: "h1", agent: "a", leaseSeconds: 60)
    XCTAssertNotNil(claimed)
    let reaped = try await db.reapExpiredLeases()
    XCTAssertEqual(reaped, [])
  }

  func testAJobForAnUnknownHostQueuesNothing() async throws {
    do {
      _ = try await queue(["h1", "nowhere"])
      XCTFail("queued a step for a host that does not exist")
    } catch let error as ClusterError {
      XCTAssertEqual(error.kind, .notFound)
      XCTAssertTrue(error.message.contains("no host 'nowhere' in the cluster"), error.message)
      XCTAssertTrue(error.message.contains("hosts: h1, h2"), error.message)
      XCTAssertTrue(error.message.contains("nothing was queued"), error.message)
    }
    let jobs = try await db.jobs()
    XCTAssertEqual(jobs, [])
  }

  func testAStepBecomingQueuedWakesListeners() async throws {
    let listener = try await cluster.connect()
    let heard = Heard()
    let listening = Task { try await listener.listen(on: stepsChannel) { heard.add($0) } }
    defer {
      listening.cancel()
      Task { await listener.close() }
    }
    // LISTEN takes effect once the listener's statement ran: queue until a notification comes.
    let deadline = Date().addingTimeInterval(10)
    while heard.payloads.isEmpty && Date() < deadline {
      _ = try await queue(["h2"])
      try await Task.sleep(nanoseconds: 100_000_000)
    }
    XCTAssertTrue(heard.payloads.contains("h2"), "no notification for h2's queued step")
  }

  func testARelayHandsOnEveryChannelsNotificationsUntilItsConnectionEnds() async throws {
    let listener = try await cluster.connect()
    let heard = Heard()
    let relaying = Task {
      await listener.relay([stepsChannel, transfersChannel]) { channel, payload in heard.add("\(channel) \(payload)") }
    }
    // LISTEN takes effect once the listener's statement ran: queue until a notification comes.
    let deadline = Date().addingTimeInterval(10)
    while heard.payloads.isEmpty && Date() < deadline {
      _ = try await queue(["h2"])
      try await Task.sleep(nanoseconds: 100_000_000)
    }
    XCTAssertTrue(heard.payloads.contains("\(stepsChannel) h2"), "\(heard.payloads)")
    try await db.execute("NOTIFY \(transfersChannel), 'h1'")
    let transfers = Date().addingTimeInterval(10)
    while !heard.payloads.contains("\(transfersChannel) h1") && Date() < transfers {
      try await Task.sleep(nanoseconds: 20_000_000)
    }
    XCTAssertTrue(heard.payloads.contains("\(transfersChannel) h1"), "\(heard.payloads)")
    // The relay returns when its connection ends (the agent then listens on the next one).
    await listener.close()
    await relaying.value

    // And when its task is cancelled, leaving the connection open.
    let other = try await cluster.connect()
    let cancelled = Task { await other.relay([stepsChannel]) { _, _ in } }
    cancelled.cancel()
    await cancelled.value
    XCTAssertFalse(other.isClosed)
    await other.close()
  }

  private func waitForReap(seconds: Double = 10) async throws -> [ExpiredStep] {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      let reaped = try await db.reapExpiredLeases()
      if !reaped.isEmpty { return reaped }
      try await Task.sleep(nanoseconds: 50_000_000)
    }
    XCTFail("no lease ran out within \(seconds) s")
    return []
  }
}

private final class Heard: @unchecked Sendable {
  private let lock = NSLock()
  private var received: [String] = []
  func add(_ payload: String) { lock.withLock { received.append(payload) } }
  var payloads: [String] { lock.withLock { received } }
}
