import Cluster
import Foundation
import TestSupport
import XCTest

/// Three `vmlab agent` processes with libraries of their own (simulated host) and one database:
/// hosts alive and dead, steps run on their own hosts, and the failures leases and fences are for.
final class ClusterAgentTests: ClusterTestCase {
  let hosts = ["h1", "h2", "h3"]

  func testThreeHostsAliveThenAKilledOneShowsDeadAndStoppedOnesStopped() throws {
    for host in hosts { try startAgent(host) }
    try waitUntil("three hosts alive") { try hostStates() == ["h1": "alive", "h2": "alive", "h3": "alive"] }
    let table = try clusterCommand(["host", "list"])
    XCTAssertEqual(table.status, 0, table.error)
    for host in hosts {
      XCTAssertTrue(table.output.contains("\(host)    alive"), table.output)
      XCTAssertTrue(table.output.contains(library(host)), table.output)
    }

    agents["h2"]!.signal(SIGKILL)
    try waitUntil("h2 dead after its heartbeat aged") { try hostStates()["h2"] == "dead" }
    XCTAssertEqual(try hostStates(), ["h1": "alive", "h2": "dead", "h3": "alive"])

    agents["h3"]!.signal(SIGTERM)
    XCTAssertTrue(agents["h3"]!.waitForExit(), "the agent did not stop on SIGTERM")
    XCTAssertEqual(agents["h3"]!.process.terminationStatus, 0, agents["h3"]!.log)
    XCTAssertEqual(try hostStates()["h3"], "stopped")
    XCTAssertTrue(agents["h3"]!.log.contains("stopped"), agents["h3"]!.log)

    agents["h1"]!.signal(SIGINT)
    XCTAssertTrue(agents["h1"]!.waitForExit(), "the agent did not stop on SIGINT")
    XCTAssertEqual(agents["h1"]!.process.terminationStatus, 0, agents["h1"]!.log)
    XCTAssertEqual(try hostStates(), ["h1": "stopped", "h2": "dead", "h3": "stopped"])
  }

  func testStepsRunOnTheirOwnHostsAndTheLibrariesHoldTheirVMs() throws {
    for host in hosts { try startAgent(host) }
    let build = try submit(
      "build-lab",
      try hosts.flatMap { host in
        try (1...2).map { number in
          try StepRequest(host: host, kind: .createVM, CreateVMStep(name: "\(host)-vm\(number)", disks: [8 << 20]))
        }
      })
    XCTAssertEqual(try waitForJob(build).state, "done")
    let checkpoint = try submit(
      "checkpoint-lab",
      try hosts.map { host in
        try StepRequest(
          host: host, kind: .checkpointVMs, CheckpointVMsStep(vms: ["\(host)-vm1", "\(host)-vm2"], name: "clean"))
      })
    let done = try waitForJob(checkpoint)
    XCTAssertEqual(done.state, "done", "\(done.steps)")
    XCTAssertEqual(done.hosts.map(\.host), hosts)
    XCTAssertTrue(done.hosts.allSatisfy { $0.done == 1 && $0.progress == 1 }, "\(done.hosts)")

    // An idle agent lets go of its library: local commands work beside it without --wait.
    try waitUntil("h1's library free while its agent is idle") {
      try vmlab(["vm", "list", "--library", library("h1")], in: folder.path).status == 0
    }
    for host in hosts {
      let listed = try localCommand(host, ["vm", "list", "--json"])
      XCTAssertEqual(listed.status, 0, listed.error)
      let vms = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]])
      XCTAssertEqual(vms.compactMap { $0["name"] as? String }.sorted(), ["\(host)-vm1", "\(host)-vm2"])
      let checkpoints = try localCommand(host, ["checkpoint", "list", "--vm", "\(host)-vm2"])
      XCTAssertTrue(checkpoints.output.contains("clean"), checkpoints.output)
    }
    let jobs = try clusterCommand(["job", "list"])
    XCTAssertEqual(jobs.status, 0, jobs.error)
    XCTAssertTrue(jobs.output.contains("checkpoint-lab"), jobs.output)
    XCTAssertTrue(jobs.output.contains("h1 1/1, h2 1/1, h3 1/1"), jobs.output)
    XCTAssertTrue(jobs.output.contains("h1 2/2, h2 2/2, h3 2/2"), jobs.output)
    let hostTable = try clusterCommand(["host", "list", "--json"])
    let listed = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(hostTable.output.utf8)) as? [[String: Any]])
    XCTAssertEqual(listed.map { $0["vmCount"] as? Int }, [2, 2, 2])
    let onOneHost = try clusterCommand(["job", "list", "--host", "h2", "--json"])
    XCTAssertEqual(onOneHost.status, 0, onOneHost.error)
  }

  /// A running VM that takes 3 s to shut down, on h1: its checkpoint is a step that lasts.
  private func slowCheckpointStep(lease: Double) throws -> (agent: AgentProcess, job: Int64) {
    let slow = ["VMLAB_SIMULATED_SHUTDOWN_SECONDS": "3"]
    let agent = try startAgent("h1", lease: lease, environment: slow)
    try startAgent("h2")
    try startAgent("h3")
    let job = try submitCheckpointOfARunningVM()
    try waitUntil("the checkpoint step running") { try self.job(job).steps[0].state == "running" }
    try agent.waitForLog("(checkpoint-vms, job \(job), attempt 1 of 3")
    return (agent, job)
  }

  /// Nothing half done: the library checks clean and the VM has exactly one checkpoint `clean`.
  private func assertLibraryWhole(_ host: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let check = try localCommand(host, ["library", "check"])
    XCTAssertEqual(check.status, 0, "\(check.output)\(check.error)", file: file, line: line)
    let list = try localCommand(host, ["checkpoint", "list", "--vm", "web", "--json"])
    let checkpoints = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(list.output.utf8)) as? [[String: Any]], file: file, line: line)
    XCTAssertEqual(checkpoints.compactMap { $0["name"] as? String }, ["clean"], file: file, line: line)
  }

  func testAnAgentKilledMidStepLosesItsLeaseAndTheStepRunsAgainWhole() throws {
    let (agent, job) = try slowCheckpointStep(lease: 1.5)
    agent.signal(SIGKILL)
    XCTAssertTrue(agent.waitForExit())
    var step: StepStatus?
    try waitUntil("the step queued again by another agent's reaper") {
      step = try self.job(job).steps[0]
      return step!.state == "queued"
    }
    XCTAssertTrue(step!.error?.contains("attempt 1 of 3 on host h1 ended: its lease ran out") == true, "\(step!)")
    let reporters = ["h2", "h3"].filter { agents[$0]!.log.contains("step \(step!.id) on host 'h1' queued again") }
    XCTAssertFalse(reporters.isEmpty, "no other agent reported taking the lease back")

    try waitUntil("h1 dead, so a new agent may take its name") { try hostStates()["h1"] == "dead" }
    let again = try startAgent("h1", lease: 1.5, environment: ["VMLAB_SIMULATED_SHUTDOWN_SECONDS": "3"])
    let finished = try waitForJob(job)
    XCTAssertEqual(finished.state, "done", "\(finished.steps)\n\(again.log)")
    XCTAssertEqual(finished.steps[0].attempts, 2)
    XCTAssertEqual(finished.steps[0].result, "checkpoint 'clean' of web")
    try assertLibraryWhole("h1")
  }

  func testAPausedAgentsStaleFenceIsRefusedAndItAbandonsTheStep() throws {
    let (agent, job) = try slowCheckpointStep(lease: 1.5)
    let firstFence = try self.job(job).steps[0].fence
    agent.signal(SIGSTOP)
    try waitUntil("the paused agent's lease taken back") {
      let step = try self.job(job).steps[0]
      return step.state == "queued" && step.error?.contains("its lease ran out") == true
    }
    agent.signal(SIGCONT)
    try agent.waitForLog("fence \(firstFence)): abandoned")
    let finished = try waitForJob(job)
    XCTAssertEqual(finished.state, "done", "\(finished.steps)\n\(agent.log)")
    XCTAssertEqual(finished.steps[0].attempts, 2)
    XCTAssertGreaterThan(finished.steps[0].fence, firstFence)
    XCTAssertFalse(
      agent.log.contains("fence \(firstFence)): done"), "the stale attempt recorded its result:\n\(agent.log)")
    try assertLibraryWhole("h1")
  }

  func testAnAgentCutOffFromTheDatabaseComesBackAndRunsWhatWasQueued() throws {
    let socket = try XCTUnwrap(cluster.url.endpoint.socketPath)
    let link = try SocketForwarder(to: socket)
    forwarders.append(link)
    let overTCP = "postgresql://\(cluster.url.user)@127.0.0.1:\(link.port)/\(cluster.url.database)"
    let agent = try startAgent("h1", url: overTCP)
    try startAgent("h2")

    link.stop()
    try agent.waitForLog("cannot reach the cluster database")
    try agent.waitForLog("starting no new step until it answers")
    try waitUntil("h1 dead while cut off") { try hostStates()["h1"] == "dead" }
    let job = try submit(
      "while-cut-off", [try StepRequest(host: "h1", kind: .createVM, CreateVMStep(name: "web", disks: [8 << 20]))])
    XCTAssertEqual(try self.job(job).steps[0].state, "queued")

    // The same port again: the agent reconnects by itself.
    forwarders.append(try SocketForwarder(to: socket, port: link.port))
    try agent.waitForLog("the cluster database answers again")
    let done = try waitForJob(job)
    XCTAssertEqual(done.state, "done", "\(done.steps)\n\(agent.log)")
    XCTAssertEqual(done.steps[0].attempts, 1)
    try waitUntil("h1 alive again") { try hostStates()["h1"] == "alive" }
    XCTAssertEqual(agent.process.isRunning, true)
  }
}
