import Cluster
import Foundation
import TestSupport
import XCTest

/// Agents whose clocks are minutes apart (libfaketime's `FAKETIME` on the dynamically linked vmlab)
/// claim, renew and take back leases as if their clocks agreed: leases are computed from the
/// database's `now()`, so a skewed agent neither takes a live lease nor loses its own.
///
/// The clocks are 0, +2 min and +4 min: each agent is behind the next by two minutes, sixty times
/// the lease, so every direction of skew between a lease's holder and an agent looking at it is
/// covered. No agent is set behind the database itself: with a negative offset, libfaketime
/// 0.9.10 moves the absolute deadlines of monotonic timerfds by the offset too (seen here: every
/// `Task.sleep` of a process 1 min behind waited 1 min more), which no real host with a wrong
/// clock does. A positive offset moves them earlier by as much, and one larger than the machine's
/// uptime makes them negative: `timerfd_settime` refuses them and every sleep of the agent hangs
/// (hours of skew did, on a machine booted an hour before). Minutes keep the deadlines positive on
/// any machine up long enough to have built the tests; on one booted less than that ago, the test
/// waits until it has been up long enough.
final class ClusterFailureClockTests: ClusterTestCase {
  static let libfaketime = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
  ].first(where: FileManager.default.fileExists)

  private func skewed(_ offset: String) throws -> [String: String] {
    guard let library = Self.libfaketime else {
      throw XCTSkip("libfaketime is not installed (Debian's faketime; run Scripts/bootstrap)")
    }
    return [
      "LD_PRELOAD": library, "FAKETIME": offset,
      // The wall clock is what hosts disagree on; the monotonic clock (sleeps, the agent's own
      // measure of its lease) stays true, as it does on a real host with a wrong time.
      "FAKETIME_DONT_FAKE_MONOTONIC": "1",
      // Given, libfaketime does not setenv() it at start: that moves `environ`, and Swift's
      // runtime finds argv by walking back from `environ` (the agent would see no arguments).
      // No such semaphore or memory exists; libfaketime then keeps its state to itself.
      "FAKETIME_SHARED": "/vmlab_no_faketime_sem /vmlab_no_faketime_shm",
      "VMLAB_SIMULATED_SHUTDOWN_SECONDS": "3",
    ]
  }

  /// How far ahead of this process's clock an agent's clock is, from the start time in its
  /// identity ("… since 2026-11-30T23:01:02Z"), which it read from its own clock.
  private func skew(of host: String) throws -> Double {
    let agent = try XCTUnwrap(try hostRows()[host]?["agent"] as? String)
    let since = try XCTUnwrap(agent.components(separatedBy: " since ").last)
    let started = try XCTUnwrap(ISO8601DateFormatter().date(from: since), agent)
    return started.timeIntervalSinceNow
  }

  /// Waits until the machine has been up more than `seconds` (see the class's comment): only a
  /// machine booted minutes ago waits at all.
  private func waitForUptime(beyond seconds: Double) throws {
    let text = try String(contentsOfFile: "/proc/uptime", encoding: .utf8)
    let uptime = try XCTUnwrap(text.split(separator: " ").first.flatMap { Double($0) }, text)
    if uptime < seconds + 5 { Thread.sleep(forTimeInterval: seconds + 5 - uptime) }
  }

  private func slowVM(on host: String) throws {
    let job = try submit(
      "set-up \(host)",
      [
        try StepRequest(
          host: host, kind: .createVM,
          CreateVMStep(name: "\(host)-web", disks: [8 << 20], hostKind: "virtual-server", additions: true)),
        try StepRequest(host: host, kind: .startVMs, VMsStep(vms: ["\(host)-web"])),
      ])
    XCTAssertEqual(try waitForJob(job).state, "done")
  }

  func testSkewedAgentsNeitherTakeLiveLeasesNorLoseTheirOwnAndStillTakeBackExpiredOnes() throws {
    let lease = 2.0
    let plain = try startAgent("plain", lease: lease, environment: ["VMLAB_SIMULATED_SHUTDOWN_SECONDS": "3"])
    try waitForUptime(beyond: 240)
    let ahead = try startAgent("ahead", lease: lease, environment: try skewed("+120"))
    let further = try startAgent("further", lease: lease, environment: try skewed("+240"))
    let hosts = ["plain", "ahead", "further"]
    // The skew really applies to the agents' own clocks.
    XCTAssertEqual(try skew(of: "plain"), 0, accuracy: 10)
    XCTAssertEqual(try skew(of: "ahead"), 120, accuracy: 10)
    XCTAssertEqual(try skew(of: "further"), 240, accuracy: 10)
    try waitUntil("three hosts alive") { try hostStates().values.allSatisfy { $0 == "alive" } }

    // Steps that outlast the lease on every host: renewed by each, taken by none.
    for host in hosts { try slowVM(on: host) }
    let job = try submit(
      "checkpoint",
      try hosts.map { host in
        try StepRequest(host: host, kind: .checkpointVMs, CheckpointVMsStep(vms: ["\(host)-web"], name: "clean"))
      })
    let done = try waitForJob(job)
    XCTAssertEqual(done.state, "done", "\(done.steps)")
    for step in done.steps {
      XCTAssertEqual(step.attempts, 1, "the lease of step \(step.id) on \(step.host) was taken back: \(step)")
      XCTAssertNil(step.error, "\(step)")
    }
    for agent in [plain, ahead, further] {
      XCTAssertFalse(agent.log.contains("queued again"), agent.log)
      XCTAssertFalse(agent.log.contains("abandoned"), agent.log)
    }

    // A lease that really runs out is taken back in lease time by an agent two minutes behind
    // its holder: the only one left to notice.
    further.signal(SIGTERM)
    XCTAssertTrue(further.waitForExit())
    let second = try submit(
      "second",
      [try StepRequest(host: "ahead", kind: .checkpointVMs, CheckpointVMsStep(vms: ["ahead-web"], name: "second"))])
    try waitUntil("the step on the agent ahead running") { try self.job(second).steps[0].state == "running" }
    try ahead.waitForLog("(checkpoint-vms, job \(second), attempt 1 of 3")
    ahead.signal(SIGKILL)
    XCTAssertTrue(ahead.waitForExit())
    let killedAt = Date()
    var step: StepStatus?
    try waitUntil("the agent two minutes behind takes the lease back", timeout: 20) {
      step = try self.job(second).steps[0]
      return step!.state == "queued"
    }
    XCTAssertLessThan(Date().timeIntervalSince(killedAt), 15, "taken back long after the lease ran out")
    XCTAssertTrue(step!.error?.contains("its lease ran out") == true, "\(step!)")
    try plain.waitForLog("step \(step!.id) on host 'ahead' queued again")
  }
}
