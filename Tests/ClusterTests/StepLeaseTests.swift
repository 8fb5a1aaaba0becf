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
    let value1 = try await db.claimStep(host: "h1", agent: "a", leaseSeconds: 30)
    let step = try XCTUnwrap(value1)
    let value2 = try await db.renewLease(step: step.id, fence: step.fence, leaseSeconds: 30)
    XCTAssertTrue(value2)
    let value3 = try await db.renewLease(step: step.id, fence: step.fence - 1, leaseSeconds: 30)
    XCTAssertFalse(value3)
    let value4 = try await db.reportProgress(step: step.id, fence: step.fence + 1, progress: 0.5)
    XCTAssertFalse(value4)
    let value5 = try await db.finishStep(step: step.id, fence: step.fence + 1, succeeded: true, message: "forged")
    XCTAssertFalse(value5)
    let value6 = try await db.placeVM("vm0", key: "vm0", host: "h1", step: step.id, fence: step.fence + 1)
    XCTAssertFalse(value6)
    let value7 = try await db.reportProgress(step: step.id, fence: step.fence, progress: 0.5)
    XCTAssertTrue(value7)
    let value8 = try await db.placeVM("vm0", key: "vm0", host: "h1", step: step.id, fence: step.fence)
    XCTAssertTrue(value8)
    let value9 = try await db.finishStep(step: step.id, fence: step.fence, succeeded: true, message: "started vm0")
    XCTAssertTrue(value9)
    let value10 = try await db.finishStep(step: step.id, fence: step.fence, succeeded: false, message: "late")
    XCTAssertFalse(
      value10,
      "a finished step takes no second result")
    let status = try await db.jobs()[0].steps[0]
    XCTAssertEqual(status.state, "done")
    XCTAssertEqual(status.result, "started vm0")
    XCTAssertEqual(status.progress, 1)
    let value11 = try await db.hosts().first { $0.name == "h1" }?.vmCount
    XCTAssertEqual(value11, 1)
  }

  func testAnExpiredLeaseIsQueuedAgainAndItsOldFenceRefused() async throws {
    _ = try await queue(["h1"])
    let value12 = try await db.claimStep(host: "h1", agent: "a", leaseSeconds: 0.2)
    let step = try XCTUnwrap(value12)
    let reaped = try await waitForReap()
    XCTAssertEqual(reaped.map(\.id), [step.id])
    XCTAssertEqual(reaped[0].state, "queued")
    XCTAssertTrue(reaped[0].error.contains("attempt 1 of 3 on host h1 ended: its lease ran out"), reaped[0].error)
    XCTAssertTrue(reaped[0].error.contains("queued again"), reaped[0].error)
    let value13 = try await db.finishStep(step: step.id, fence: step.fence, succeeded: true, message: "stale")
    XCTAssertFalse(value13)
    let value14 = try await db.renewLease(step: step.id, fence: step.fence, leaseSeconds: 30)
    XCTAssertFalse(value14)

    let value15 = try await db.claimStep(host: "h1", agent: "b", leaseSeconds: 30)
    let again = try XCTUnwrap(value15)
    XCTAssertEqual(again.id, step.id)
    XCTAssertEqual(again.attempt, 2)
    XCTAssertGreaterThan(again.fence, step.fence)
    let value16 = try await db.finishStep(step: step.id, fence: step.fence, succeeded: true, message: "stale")
    XCTAssertFalse(value16)
    let value17 = try await db.finishStep(step: step.id, fence: again.fence, succeeded: true, message: "ok")
    XCTAssertTrue(value17)
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
    let value19 = try await db.claimStep(host: "h1", agent: "a", leaseSeconds: 30)
    XCTAssertNil(value19, "a failed step is not claimed")
  }

  func testARunningLeaseIsNotTakenBack() async throws {
    _ = try await queue(["h1"])
    let claimed = try await db.claimStep(host: "h1", agent: "a", leaseSeconds: 60)
    XCTAssertNotNil(claimed)
    let value21 = try await db.reapExpiredLeases()
    XCTAssertEqual(value21, [])
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
    let value22 = try await db.jobs()
    XCTAssertEqual(value22, [])
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
