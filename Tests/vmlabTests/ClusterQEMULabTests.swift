import Cluster
import Foundation
import TestSupport
import XCTest

/// The cluster end to end on real guests: `build-lab.lua` on qemu over two agents (separate
/// processes and libraries, one PostgreSQL), a file written in the guests through the per-VM
/// commands and a script, a lab checkpoint and a lab restore from the command line, and the file
/// gone from both guests. Every guest and agent is stopped in teardown, even when the test fails.
final class ClusterQEMULabTests: ClusterTestCase {
  override func tearDown() {
    for host in ["h1", "h2"] { QEMUCommandTests.stopEveryVM(in: library(host)) }
    super.tearDown()
  }

  /// A cluster command with a watchdog: coreutils' `timeout` ends it (and the test fails, saying
  /// which command) if it runs past `seconds`, so a wedged step cannot hang the test run.
  private func bounded(_ arguments: [String], seconds: Int = 150, file: StaticString = #filePath, line: UInt = #line)
    throws -> CommandResult
  {
    let result = try runProgram(
      "/usr/bin/timeout",
      ["--kill-after=5", String(seconds), try VMLabBinary.path, "--cluster", cluster.urlText] + arguments,
      in: folder.path)
    XCTAssertNotEqual(result.status, 124, "\(arguments) ran past \(seconds) s: \(result.error)", file: file, line: line)
    return result
  }

  func testALabOfRealGuestsOverTwoHostsIsCheckpointedAndRestoredInsideItsGuests() throws {
    // The image in both libraries (its pull between agents is ClusterBuildTests' part).
    for host in ["h1", "h2"] { try TinyImageForLibraries.install(into: library(host)) }
    for host in ["h1", "h2"] {
      try startAgent(host, arguments: ["--offer-memory", "1G", "--offer-disk", "20G"])
      try agents[host]!.waitForLog("template 'tiny' registered")
    }

    let built = try bounded([
      "run", "build-lab.lua", "--vms", "2", "--host", "qemu", "--image", "tiny", "--memory", "256M",
    ])
    XCTAssertEqual(built.status, 0, "\(built.output)\(built.error)\n\(agents["h1"]!.log)\n\(agents["h2"]!.log)")
    XCTAssertTrue(built.output.contains("lab 'classroom' ready"), built.output)
    let listed = try bounded(["vm", "list", "--json"])
    let placed = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]])
    let hosts = Dictionary(uniqueKeysWithValues: placed.map { ($0["name"] as! String, $0["host"] as! String) })
    XCTAssertEqual(Set(hosts.keys), ["student01", "student02"], listed.output)
    XCTAssertEqual(Set(hosts.values), ["h1", "h2"], "one guest on each host: \(hosts)")

    let round = try bounded(["lab", "checkpoint", "classroom", "round1", "--timeout", "120"])
    XCTAssertEqual(round.status, 0, "\(round.output)\(round.error)")
    XCTAssertTrue(round.output.contains("committed on 2 hosts"), round.output)

    // A file in each guest: one through `vm exec --cluster`, one through a script's vm:exec.
    let one = try bounded([
      "vm", "exec", "student01", "--timeout", "60", "--", "sh", "-c", "echo homework > /root/work.txt && sync",
    ])
    XCTAssertEqual(one.status, 0, "\(one.output)\(one.error)")
    let two = try bounded([
      "run", "-e",
      "local vm = vmlab.vm.get('student02'); local r = vm:exec('echo homework > /root/work.txt && sync'); print(r.status)",
    ])
    XCTAssertEqual(two.status, 0, two.error)
    XCTAssertEqual(two.output, "0\n")
    let there = try bounded(["vm", "exec", "student02", "--timeout", "60", "--", "cat", "/root/work.txt"])
    XCTAssertEqual(there.output, "homework\n", there.error)

    let restored = try bounded(["lab", "restore", "classroom", "round1", "--timeout", "120"])
    XCTAssertEqual(restored.status, 0, "\(restored.output)\(restored.error)")
    XCTAssertTrue(restored.output.contains("committed on 2 hosts"), restored.output)

    // Each guest runs again from the moment of the checkpoint: its agent answers, the file is gone.
    let after = try bounded([
      "run", "-e",
      """
      for _, name in ipairs { 'student01', 'student02' } do
        local vm = vmlab.vm.get(name)
        vm:waitReady { timeout = 90 }
        local r = vm:exec('test -e /root/work.txt && echo present || echo gone')
        print(name, vm.clusterHost, vm.state, r.stdout)
      end
      """,
    ])
    XCTAssertEqual(after.status, 0, after.error)
    XCTAssertEqual(
      after.output,
      "student01\t\(hosts["student01"]!)\trunning\tgone\n\nstudent02\t\(hosts["student02"]!)\trunning\tgone\n\n")

    // The per-VM commands stop the guests on their hosts; each host's library says so.
    let off = try bounded(["vm", "turn-off", "student01", "student02"])
    XCTAssertEqual(off.status, 0, off.error)
    for (vm, host) in hosts {
      let local = try localCommand(host, ["vm", "list", "--json"])
      let vms = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(local.output.utf8)) as? [[String: Any]])
      XCTAssertEqual(vms.first { $0["name"] as? String == vm }?["state"] as? String, "stopped", local.output)
    }
  }
}
