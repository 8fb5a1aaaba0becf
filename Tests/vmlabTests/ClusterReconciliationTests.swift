import Cluster
import Foundation
import TestSupport
import XCTest

/// An agent compares its library with the cluster's placements every `--reconcile` seconds while
/// it runs: VMs made or removed by local commands beside it are found, logged and shown by
/// `host list`; a round is skipped, not waited for, while a local command holds the library.
final class ClusterReconciliationTests: ClusterTestCase {
  /// Started here and ended in teardown even when the test fails.
  private var background: [Process] = []

  override func tearDown() {
    for process in background where process.isRunning {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
    }
    super.tearDown()
  }

  private func startAgentReconciling(_ host: String, environment: [String: String] = [:]) throws -> AgentProcess {
    try startAgent(host, environment: environment, arguments: ["--reconcile", "0.5"])
  }

  private func vmCount(_ host: String) throws -> Int? { try hostRows()[host]?["vmCount"] as? Int }
  private func differences(_ host: String) throws -> [String] {
    try hostRows()[host]?["differences"] as? [String] ?? []
  }

  func testAVMMadeLocallyAppearsAndOneRemovedLocallyIsReported() throws {
    let agent = try startAgentReconciling("h1")
    try startAgent("h2")
    XCTAssertEqual(try vmCount("h1"), 0)

    let made = try localCommand("h1", ["vm", "create", "extra", "--disk", "8M"])
    XCTAssertEqual(made.status, 0, made.error)
    try agent.waitForLog(
      "reconciliation: VM 'extra' is in this library but was placed on no host; placed here now")
    try waitUntil("h1 shows the VM made beside its agent") { try vmCount("h1") == 1 }

    let removed = try localCommand("h1", ["vm", "remove", "extra"])
    XCTAssertEqual(removed.status, 0, removed.error)
    try agent.waitForLog(
      "reconciliation: VM 'extra' was placed on this host but is not in its library; its placement was removed")
    try waitUntil("h1 shows no VM again") { try vmCount("h1") == 0 }
    try agent.waitForLog("reconciliation: the library and the cluster agree")
  }

  func testAVMPlacedOnAnotherHostStaysADifferenceThatHostListShows() throws {
    try startAgent("h1")
    let agent = try startAgentReconciling("h2")
    let job = try submit(
      "build", [try StepRequest(host: "h1", kind: .createVM, CreateVMStep(name: "web", disks: [8 << 20]))])
    XCTAssertEqual(try waitForJob(job).state, "done")
    // The same name made in h2's library by hand: two libraries hold a VM 'web'.
    let made = try localCommand("h2", ["vm", "create", "web", "--disk", "8M"])
    XCTAssertEqual(made.status, 0, made.error)
    let line = "VM 'web' is in this library, but the cluster places it on host 'h1'; left there"
    try agent.waitForLog("reconciliation: \(line)")
    try waitUntil("host list shows h2's difference") { try differences("h2") == [line] }
    XCTAssertEqual(try vmCount("h1"), 1, "the placement on h1 is left as it was")
    XCTAssertEqual(try vmCount("h2"), 0)
    let table = try clusterCommand(["host", "list"])
    XCTAssertEqual(table.status, 0, table.error)
    let h2Row = try XCTUnwrap(table.output.split(separator: "\n").first { $0.hasPrefix("h2 ") })
    XCTAssertTrue(h2Row.contains("1 (see agent log)"), table.output)
    // Logged once, not at every round.
    try waitUntil("a few more rounds") { (try self.hostRows()["h2"]?["reconciledAge"] as? Double ?? 9) < 0.5 }
    Thread.sleep(forTimeInterval: 1.5)
    XCTAssertEqual(agent.log.components(separatedBy: line).count - 1, 1, agent.log)
  }

  func testARoundIsSkippedWhileALocalCommandHoldsTheLibrary() throws {
    let slow = ["VMLAB_SIMULATED_SHUTDOWN_SECONDS": "4"]
    let agent = try startAgentReconciling("h1", environment: slow)
    for arguments in [
      ["vm", "create", "web", "--disk", "8M", "--additions", "--host-kind", "virtual-server"], ["vm", "start", "web"],
    ] {
      let result = try localCommand("h1", arguments)
      XCTAssertEqual(result.status, 0, result.error)
    }
    // `vm shutdown` holds the library for the 4 s the guest takes.
    let shutdown = Process()
    shutdown.executableURL = URL(fileURLWithPath: try VMLabBinary.path)
    shutdown.arguments = ["vm", "shutdown", "web", "--library", library("h1"), "--wait"]
    shutdown.environment = ProcessInfo.processInfo.environment.merging(slow) { $1 }
    shutdown.standardOutput = FileHandle.nullDevice
    shutdown.standardError = FileHandle.nullDevice
    try shutdown.run()
    background.append(shutdown)
    try agent.waitForLog("reconciliation skipped: another vmlab process is using the library", timeout: 10)
    try waitUntil("the shutdown finished", timeout: 30) { !shutdown.isRunning }
    XCTAssertEqual(shutdown.terminationStatus, 0)
    // Rounds go on once the library is free: a VM made now is found.
    let made = try localCommand("h1", ["vm", "create", "after", "--disk", "8M"])
    XCTAssertEqual(made.status, 0, made.error)
    try agent.waitForLog("reconciliation: VM 'after' is in this library but was placed on no host; placed here now")
  }
}
