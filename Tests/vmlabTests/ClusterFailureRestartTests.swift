import Cluster
import Foundation
import TestSupport
import XCTest

/// The database restarted (`pg_ctl restart -m fast`) while every host runs a step: the agents
/// reconnect by themselves, the job finishes, and nothing is done twice.
final class ClusterFailureRestartTests: ClusterTestCase {
  let hosts = ["h1", "h2", "h3"]

  func testTheDatabaseRestartedMidJobAndTheJobFinishesWithNothingDoneTwice() throws {
    // A lease far longer than the restart: each claim outlives it, so no step is taken back.
    let slow = ["VMLAB_SIMULATED_SHUTDOWN_SECONDS": "3"]
    for host in hosts { try startAgent(host, lease: 15, environment: slow) }
    let setUp = try submit(
      "set-up",
      try hosts.flatMap { host in
        [
          try StepRequest(
            host: host, kind: .createVM,
            CreateVMStep(name: "\(host)-web", disks: [8 << 20], hostKind: "virtual-server", additions: true)),
          try StepRequest(host: host, kind: .startVMs, VMsStep(vms: ["\(host)-web"])),
        ]
      })
    XCTAssertEqual(try waitForJob(setUp).state, "done")

    let job = try submit(
      "checkpoint-lab",
      try hosts.map { host in
        try StepRequest(host: host, kind: .checkpointVMs, CheckpointVMsStep(vms: ["\(host)-web"], name: "clean"))
      })
    try waitUntil("every host's step running") { try self.job(job).steps.allSatisfy { $0.state == "running" } }
    let startedBefore = try serverStarted()
    try cluster.restartServer()
    XCTAssertGreaterThan(try serverStarted(), startedBefore, "the server did not restart")

    let done = try waitForJob(job)
    XCTAssertEqual(done.state, "done", "\(done.steps)")
    for step in done.steps {
      XCTAssertEqual(step.attempts, 1, "step \(step.id) on \(step.host) ran again: \(step)")
      XCTAssertEqual(step.result, "checkpoint 'clean' of \(step.host)-web")
    }
    for host in hosts {
      let log = agents[host]!.log
      XCTAssertFalse(log.contains("abandoned"), log)
      XCTAssertFalse(log.contains("queued again"), log)
      let check = try localCommand(host, ["library", "check"])
      XCTAssertEqual(check.status, 0, "\(check.output)\(check.error)")
      let list = try localCommand(host, ["checkpoint", "list", "--vm", "\(host)-web", "--json"])
      let checkpoints = try XCTUnwrap(
        try JSONSerialization.jsonObject(with: Data(list.output.utf8)) as? [[String: Any]], list.error)
      XCTAssertEqual(checkpoints.compactMap { $0["name"] as? String }, ["clean"], "one checkpoint, taken once")
    }

    // New work after the restart wakes them as before.
    let after = try submit(
      "after-restart",
      try hosts.map { host in
        try StepRequest(host: host, kind: .createVM, CreateVMStep(name: "\(host)-after", disks: [8 << 20]))
      })
    let finished = try waitForJob(after)
    XCTAssertEqual(finished.state, "done", "\(finished.steps)")
    try waitUntil("every host alive") { try hostStates() == ["h1": "alive", "h2": "alive", "h3": "alive"] }
  }

  private func serverStarted() throws -> Date {
    let url = cluster.url
    return try runBlocking {
      let db = try await ClusterDatabase.connect(url)
      let started = try? await db.serverStarted()
      await db.close()
      return try XCTUnwrap(started, "cannot read the server's start time")
    }
  }
}
