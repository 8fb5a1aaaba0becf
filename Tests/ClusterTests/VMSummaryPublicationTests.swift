import LabKit
import TestSupport
import XCTest

@testable import Cluster

/// What agents publish of their libraries (`vm_summary`), against a real PostgreSQL and a real
/// library: read back across hosts in one query, never overwritten by an older publication, refused
/// from a stale step or another agent, and shown with the state of a host that died.
final class VMSummaryPublicationTests: AgentLibraryTestCase {
  var cluster: TestCluster!

  override func setUpWithError() throws {
    try super.setUpWithError()
    cluster = try TestCluster()
  }

  override func tearDownWithError() throws {
    cluster?.remove()
    try super.tearDownWithError()
  }

  private func database<T: Sendable>(_ body: @escaping @Sendable (ClusterDatabase) async throws -> T) throws -> T {
    let url = cluster.url
    return try runBlocking { try await ClusterDatabase.using(url, body) }
  }

  /// Hosts h1 and h2 registered by agents `agent-h1` and `agent-h2`, with `vms` placed on h1.
  private func registerHosts(placingOnH1 vms: [String]) throws {
    try database { db in
      for host in ["h1", "h2"] {
        try await db.register(
          host: host, agent: "agent-\(host)", address: "", library: "/lib/\(host)",
          capacity: HostCapacity(memoryTotal: 0, memoryFree: 0, diskTotal: 0, diskFree: 0), capabilities: [],
          heartbeatSeconds: 60)
      }
      _ = try await db.reconcilePlacements(
        host: "h1", vms: Dictionary(uniqueKeysWithValues: vms.map { (NameRules.key($0), $0) }))
    }
  }

  private func published() throws -> [String: PublishedVM] {
    Dictionary(uniqueKeysWithValues: try database { db in try await db.publishedVMs() }.map { ($0.name, $0) })
  }

  /// A step of `kind` queued for h1 and claimed by its agent.
  private func claimStep(_ vm: String) throws -> ClaimedStep {
    try database { db in
      _ = try await db.submitJob(
        kind: "test", steps: [try StepRequest(host: "h1", kind: .startVMs, VMsStep(vms: [vm]))], maxAttempts: 3)
      return try await db.claimStep(host: "h1", agent: "agent-h1", leaseSeconds: 30)!
    }
  }

  func testAWholePublicationIsReadBackAsTheLibraryHoldsIt() throws {
    try library.createVM(name: "web", diskSizes: [1 << 20])
    try library.checkpoint(vm: "web", name: "clean")
    _ = try library.start(vm: "web")
    try registerHosts(placingOnH1: ["web"])
    let publication = try VMPublication.whole(library)
    let accepted = try database { db in try await db.publish(publication, host: "h1", agent: "agent-h1") }
    XCTAssertTrue(accepted)

    let web = try XCTUnwrap(try published()["web"])
    XCTAssertEqual(web.host, "h1")
    XCTAssertEqual(web.hostState, .alive)
    let summary = try XCTUnwrap(web.summary)
    XCTAssertEqual(summary.vm.state, .running)
    XCTAssertEqual(summary.vm.id, try library.vm(named: "web").id)
    XCTAssertEqual(summary.vm.disks, try library.vm(named: "web").disks)
    XCTAssertEqual(summary.checkpoints.map(\.name), ["clean"])
    XCTAssertEqual(summary.checkpoints.map(\.id), try library.checkpoints(vm: "web").map(\.id))
    XCTAssertEqual(summary.spaces, [try library.space(of: summary.checkpoints[0].id)])
  }

  func testAStepPublishesWithItsResultAndAStaleFenceWritesNeither() throws {
    try library.createVM(name: "web", diskSizes: [1 << 20])
    try registerHosts(placingOnH1: ["web"])
    let step = try claimStep("web")
    _ = try library.start(vm: "web")
    let running = try VMPublication.of(["web"], in: library)
    let finished = try database { db in
      try await db.finishStep(
        step: step, succeeded: true, message: "started web", publishing: running, host: "h1", agent: "agent-h1")
    }
    XCTAssertEqual(finished, StepEnding(moreQueued: false))
    XCTAssertEqual(try published()["web"]?.summary?.vm.state, .running)
    let job = try database { db in try await db.jobs(ids: [step.jobID]) }
    XCTAssertEqual(job.first?.steps.first?.state, "done")

    // A claim whose lease was taken back: neither its result nor its VMs are written.
    let stale = try claimStep("web")
    try database { db in
      try await db.execute("UPDATE job_step SET lease_until = now() - interval '1 second' WHERE id = \(stale.id)")
      _ = try await db.reapExpiredLeases()
    }
    _ = try library.turnOff(vm: "web")
    let stopped = try VMPublication.of(["web"], in: library)
    let refused = try database { db in
      try await db.finishStep(
        step: stale, succeeded: true, message: "forged", publishing: stopped, host: "h1", agent: "agent-h1")
    }
    XCTAssertNil(refused)
    XCTAssertEqual(try published()["web"]?.summary?.vm.state, .running, "the stale step's VM was published")
    let requeued = try database { db in try await db.jobs(ids: [stale.jobID]) }
    XCTAssertEqual(requeued.first?.steps.first?.state, "queued", "the stale step's result was recorded")
  }

  func testAnOlderPublicationNeverOverwritesANewerOne() throws {
    try library.createVM(name: "web", diskSizes: [1 << 20])
    try registerHosts(placingOnH1: ["web"])
    let older = try claimStep("web")
    let newer = try claimStep("web")
    XCTAssertLessThan(older.fence, newer.fence)
    let stopped = try VMPublication.of(["web"], in: library)
    _ = try library.start(vm: "web")
    let running = try VMPublication.of(["web"], in: library)
    try database { db in
      let first = try await db.finishStep(
        step: newer, succeeded: true, message: "done", publishing: running, host: "h1", agent: "agent-h1")
      XCTAssertNotNil(first)
      // The older step's reading arrives last: its row is not replaced.
      _ = try await db.finishStep(
        step: older, succeeded: true, message: "done", publishing: stopped, host: "h1", agent: "agent-h1")
    }
    XCTAssertEqual(try published()["web"]?.summary?.vm.state, .running)

    // A whole publication sets the host's floor: a step claimed before it is refused outright,
    // so a VM the whole publication dropped cannot come back.
    let beforeWhole = try claimStep("web")
    _ = try library.turnOff(vm: "web")
    try library.removeVM(named: "web")
    let whole = try VMPublication.whole(library)
    try database { db in
      let accepted = try await db.publish(whole, host: "h1", agent: "agent-h1")
      XCTAssertTrue(accepted)
      let late = try await db.finishStep(
        step: beforeWhole, succeeded: true, message: "done", publishing: running, host: "h1", agent: "agent-h1")
      XCTAssertNil(late, "a publication older than the host's whole publication was accepted")
      let rows = try await db.rows("SELECT count(*) FROM vm_summary WHERE host = 'h1'")
      XCTAssertEqual(try rows[0].decode(Int.self), 0, "the whole publication left a VM the library no longer holds")
    }
  }

  func testAnAgentThatNoLongerHoldsTheHostNameIsRefused() throws {
    try library.createVM(name: "web", diskSizes: [1 << 20])
    try registerHosts(placingOnH1: ["web"])
    let publication = try VMPublication.whole(library)
    let refused = try database { db in try await db.publish(publication, host: "h1", agent: "agent-h2") }
    XCTAssertFalse(refused)
    let web = try XCTUnwrap(try published()["web"])
    XCTAssertNil(web.summary, "another agent's publication was written")
  }

  func testAVMPublishedAsGoneIsLeftOutAndADeadHostsVMsComeWithItsState() throws {
    try library.createVM(name: "web", diskSizes: [1 << 20])
    try library.createVM(name: "db", diskSizes: [1 << 20])
    _ = try library.start(vm: "db")
    try registerHosts(placingOnH1: ["web", "db"])
    let whole = try VMPublication.whole(library)
    try database { db in _ = try await db.publish(whole, host: "h1", agent: "agent-h1") }

    try library.removeVM(named: "web")
    let step = try claimStep("web")
    let gone = try VMPublication.of(["web"], in: library)
    XCTAssertEqual(gone.removed, ["web"])
    try database { db in
      _ = try await db.finishStep(
        step: step, succeeded: true, message: "done", publishing: gone, host: "h1", agent: "agent-h1")
    }
    XCTAssertEqual(try published().keys.sorted(), ["db"], "a VM published as gone is still listed")

    // h1 goes silent past three heartbeats: its last publication stays, marked dead.
    try database { db in
      try await db.execute("UPDATE host SET last_heartbeat = now() - interval '10 minutes' WHERE name = 'h1'")
    }
    let dbVM = try XCTUnwrap(try published()["db"])
    XCTAssertEqual(dbVM.hostState, .dead)
    XCTAssertEqual(dbVM.summary?.vm.state, .running)
    XCTAssertNotNil(dbVM.publishedAt)
    let one = try database { db in try await db.publishedVMs(["DB"]) }
    XCTAssertEqual(one.map(\.name), ["db"], "names are compared as the engine compares them")
  }

  func testAStepsVMsAreTheOnesItsArgumentsName() {
    let operation = claimed("vm-operation", #"{"vm": "web", "operation": "start"}"#)
    XCTAssertEqual(VMPublication.vmsChanged(by: operation), ["web"])
    XCTAssertEqual(
      VMPublication.vmsChanged(
        by: claimed("decide", #"{"operation": 1, "kind": "restore", "vms": ["a", "b"], "commit": true}"#)),
      ["a", "b"])
    // A lab's prepare step leaves its VMs to the decide step that follows it to publish.
    XCTAssertNil(
      VMPublication.vmsChanged(
        by: claimed("prepare-restore", #"{"operation": 1, "vms": ["a", "b"], "checkpoint": "clean"}"#)))
    XCTAssertNil(VMPublication.vmsChanged(by: claimed("build-image", #"{"image": "tiny"}"#)))
    XCTAssertNil(VMPublication.vmsChanged(by: claimed("describe-vms", #"{}"#)))
    XCTAssertNil(
      VMPublication.vmsChanged(by: claimed("start-vms", #"{"vms": ["../escape"]}"#)),
      "a name a user could not type is not read from the library")
    XCTAssertNil(VMPublication.vmsChanged(by: claimed("start-vms", "not json")))
  }

  func testAnAgentPublishesAVMAgainOnlyWhenItsSummaryChanged() throws {
    try library.createVM(name: "web", diskSizes: [1 << 20])
    try library.createVM(name: "db", diskSizes: [1 << 20])
    let memory = PublishedSummaries()
    let whole = try VMPublication.whole(library)
    XCTAssertNotNil(memory.unpublished(whole), "a whole publication always goes out (it drops rows)")
    memory.remember(whole)

    // Nothing changed: nothing to publish.
    XCTAssertNil(memory.unpublished(try VMPublication.of(["web", "db"], in: library)))
    // A start changes web's summary: only web goes out, and once remembered not again.
    _ = try library.start(vm: "web")
    let started = try XCTUnwrap(memory.unpublished(try VMPublication.of(["web", "db"], in: library)))
    XCTAssertEqual(started.summaries.map(\.vm.name), ["web"])
    XCTAssertEqual(started.summaries.first?.vm.state, .running)
    memory.remember(started)
    XCTAssertNil(memory.unpublished(try VMPublication.of(["web"], in: library)))
    // A checkpoint changes it too; a VM gone is always published as gone.
    try library.checkpoint(vm: "web", name: "clean")
    XCTAssertEqual(
      memory.unpublished(try VMPublication.of(["web"], in: library))?.summaries.first?.checkpoints.map(\.name),
      ["clean"])
    try library.removeVM(named: "db")
    XCTAssertEqual(memory.unpublished(try VMPublication.of(["db"], in: library))?.removed, ["db"])
  }
}
