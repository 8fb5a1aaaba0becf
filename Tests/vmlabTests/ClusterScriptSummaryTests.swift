import Foundation
import TestSupport
import XCTest

@testable import Cluster

/// Scripts with `--cluster` read VMs from what the agents publish (no step per read): a change is
/// read back by the next script right after its step, a change made by hand on a host shows up
/// after the agent's next reconciliation, and a dead host's VMs are listed but never read as if the
/// host were alive. Agents are separate processes, SIGKILLed in teardown.
final class ClusterScriptSummaryTests: ClusterTestCase {
  private func lua(_ chunk: String) throws -> CommandResult {
    try clusterCommand(["run", "-e", chunk])
  }

  /// Jobs that asked a host to describe its VMs: none while every agent publishes.
  private func describeJobs() throws -> Int {
    try database { db in try await db.jobs(limit: 1000) }.filter { $0.kind == "script-describe-vms" }.count
  }

  func testAChangeIsReadBackByTheNextScriptWithoutAskingTheHost() throws {
    for host in ["h1", "h2"] { try startAgent(host, arguments: ["--offer-memory", "1G", "--offer-disk", "10G"]) }
    let made = try lua(
      """
      local vm = vmlab.vm.create { name = "solo", disks = { "8M" }, memory = "64M" }
      vm:start()
      vm:checkpoint { name = "first" }
      print(vm.clusterHost)
      """)
    XCTAssertEqual(made.status, 0, made.error)
    let host = made.output.trimmingCharacters(in: .whitespacesAndNewlines)
    XCTAssertTrue(["h1", "h2"].contains(host), made.output)

    // Each script is a new engine with nothing remembered: it reads what the last step published.
    let first = try lua("local vm = vmlab.vm.get('solo'); print(vm.state, #vm:checkpoints(), vm.clusterHost)")
    XCTAssertEqual(first.status, 0, first.error)
    XCTAssertEqual(first.output, "running\t1\t\(host)\n")
    let turnedOff = try lua("vmlab.vm.get('solo'):turnOff()")
    XCTAssertEqual(turnedOff.status, 0, turnedOff.error)
    let second = try lua(
      "local vm = vmlab.vm.get('solo'); print(vm.state); vm:checkpoint { name = 'second' }; print(#vm:checkpoints())")
    XCTAssertEqual(second.status, 0, second.error)
    XCTAssertEqual(second.output, "stopped\n2\n")
    let listed = try lua(
      """
      for _, c in ipairs(vmlab.vm.get('solo'):checkpoints()) do print(c.name, c.vm.name, c.space >= 0) end
      print(vmlab.vm.get('solo').currentCheckpoint.name)
      """)
    XCTAssertEqual(listed.status, 0, listed.error)
    XCTAssertEqual(listed.output, "first\tsolo\ttrue\nsecond\tsolo\ttrue\nsecond\n")
    XCTAssertEqual(try describeJobs(), 0, "a read asked a host instead of reading what it published")

    // The library agrees with what the scripts read.
    let local = try localCommand(host, ["checkpoint", "list", "--vm", "solo", "--json"])
    XCTAssertEqual(local.status, 0, local.error)
    XCTAssertTrue(local.output.contains("\"second\""), local.output)
  }

  func testAVMItsHostNeverPublishedIsAskedOfTheHostOnceAndThenRead() throws {
    try startAgent("h1", arguments: ["--offer-memory", "1G", "--offer-disk", "10G"])
    let made = try clusterCommand(["vm", "create", "web", "--disk", "8M", "--memory", "64M"])
    XCTAssertEqual(made.status, 0, made.error)
    // As an agent of an older vmlab leaves it: placed, with nothing published.
    try database { db in try await db.execute("DELETE FROM vm_summary") }

    let first = try lua("local vm = vmlab.vm.get('web'); print(vm.state, vm.clusterHost, #vm.disks)")
    XCTAssertEqual(first.status, 0, first.error)
    XCTAssertEqual(first.output, "stopped\th1\t1\n")
    XCTAssertEqual(try describeJobs(), 1, "the VM nothing was published of was not asked of its host")
    // The host published what it described: the next script reads it without a step.
    let second = try lua("print(vmlab.vm.get('web').state)")
    XCTAssertEqual(second.output, "stopped\n", second.error)
    XCTAssertEqual(try describeJobs(), 1)
  }

  func testAChangeMadeByHandOnAHostShowsUpAfterTheNextReconciliation() throws {
    let agent = try startAgent("h1", arguments: ["--offer-memory", "1G", "--offer-disk", "10G", "--reconcile", "0.5"])
    let made = try clusterCommand(["vm", "create", "web", "--disk", "8M", "--memory", "64M"])
    XCTAssertEqual(made.status, 0, made.error)
    XCTAssertEqual(try lua("print(vmlab.vm.get('web').state)").output, "stopped\n")

    // On the host, beside the agent: the VM is started and checkpointed, and a new VM is made.
    for arguments in [
      ["vm", "start", "web"], ["checkpoint", "new", "web", "by-hand"], ["vm", "create", "extra", "--disk", "8M"],
    ] {
      let result = try localCommand("h1", arguments)
      XCTAssertEqual(result.status, 0, "\(arguments): \(result.error)")
    }
    try agent.waitForLog("reconciliation: VM 'extra' is in this library but was placed on no host; placed here now")
    try waitUntil("a script reads what was done by hand") {
      let read = try lua(
        """
        local vm = vmlab.vm.get('web')
        local names = {}
        for _, c in ipairs(vm:checkpoints()) do names[#names + 1] = c.name end
        print(vm.state, table.concat(names, ','), vmlab.vm.exists('extra'))
        """)
      return read.status == 0 && read.output == "running\tby-hand\ttrue\n"
    }

    // A VM removed by hand is gone from the scripts' view too.
    let removed = try localCommand("h1", ["vm", "remove", "extra"])
    XCTAssertEqual(removed.status, 0, removed.error)
    try waitUntil("a script no longer finds the VM removed by hand") {
      try lua("print(vmlab.vm.exists('extra'), #vmlab.vms())").output == "false\t1\n"
    }
    XCTAssertEqual(try describeJobs(), 0)
  }

  func testADeadHostsVMsAreListedButNotReadAsIfItWereAlive() throws {
    try startAgent("h1", arguments: ["--offer-memory", "1G", "--offer-disk", "10G"])
    let doomed = try startAgent("h2", arguments: ["--offer-memory", "1G", "--offer-disk", "10G"])
    for (vm, host) in [("alpha", "h1"), ("beta", "h2")] {
      let made = try clusterCommand(["vm", "create", vm, "--disk", "8M", "--memory", "64M", "--host-name", host])
      XCTAssertEqual(made.status, 0, made.error)
    }
    let started = try lua("vmlab.vm.get('beta'):start()")
    XCTAssertEqual(started.status, 0, started.error)

    doomed.signal(SIGKILL)
    XCTAssertTrue(doomed.waitForExit())
    try waitUntil("h2 is dead") { try hostStates()["h2"] == "dead" }

    // Listed with the rest; its host shown; reading its state says the host is dead.
    let listed = try lua(
      """
      local names = {}
      for _, vm in ipairs(vmlab.vms()) do names[#names + 1] = vm.name end
      print(table.concat(names, ','), vmlab.vm.get('alpha').state, vmlab.vms()[2].clusterHost)
      """)
    XCTAssertEqual(listed.status, 0, listed.error)
    XCTAssertEqual(listed.output, "alpha,beta\tstopped\th2\n")
    let read = try lua("print(vmlab.vm.get('beta').state)")
    XCTAssertEqual(read.status, 1, read.output)
    XCTAssertEqual(read.output, "", "a dead host's VM was read as if its host were alive")
    XCTAssertTrue(
      read.error.contains("VM 'beta' is on host h2, which is dead: its agent last published it at "), read.error)
    XCTAssertTrue(read.error.contains(" as running with 0 checkpoints, which may no longer hold"), read.error)
    XCTAssertTrue(read.error.contains("start its agent (`vmlab agent`) and try again"), read.error)
    // Nothing is asked of the dead host: an operation on its VM is refused before any step.
    let refused = try lua("vmlab.vms()[2]:turnOff()")
    XCTAssertEqual(refused.status, 1, refused.output)
    XCTAssertTrue(refused.error.contains("host h2, which is dead"), refused.error)

    // A dead host that never published its VM (an older agent): nothing to show, and it says so.
    try database { db in try await db.execute("DELETE FROM vm_summary WHERE host = 'h2'") }
    let unknown = try lua("print(#vmlab.vms())")
    XCTAssertEqual(unknown.status, 1, unknown.output)
    XCTAssertTrue(
      unknown.error.contains(
        "VM 'beta' is on host h2, which is dead and never published it; start its agent (`vmlab agent`) and try again"),
      unknown.error)
  }
}
