import Cluster
import Foundation
import TestSupport
import XCTest

/// One VM driven by scripts with `--cluster`: each call a step on the VM's host, checked against
/// that host's library; wrong or unavailable calls refused with nothing changed.
final class ClusterScriptVMTests: ClusterTestCase {
  private func lua(_ chunk: String) throws -> CommandResult {
    try clusterCommand(["run", "-e", chunk])
  }

  private func localJSON(_ host: String, _ arguments: [String]) throws -> [[String: Any]] {
    let listed = try localCommand(host, arguments + ["--json"])
    XCTAssertEqual(listed.status, 0, listed.error)
    return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]])
  }

  private func read(_ host: String) throws -> Data {
    let path = folder.file("read.bin")
    let read = try localCommand(host, ["vm", "read", "solo", "--offset", "1M", "--length", "4096", "--output", path])
    XCTAssertEqual(read.status, 0, read.error)
    return try Data(contentsOf: URL(fileURLWithPath: path))
  }

  private func write(_ byte: UInt8, _ host: String) throws {
    let path = folder.file("pattern.bin")
    try Data(repeating: byte, count: 4096).write(to: URL(fileURLWithPath: path))
    let written = try localCommand(host, ["vm", "write", "solo", "--offset", "1M", "--input", path])
    XCTAssertEqual(written.status, 0, written.error)
  }

  func testAVMIsCreatedStartedCheckpointedRestoredAndRemovedOnItsHost() throws {
    for host in ["h1", "h2"] { try startAgent(host, arguments: ["--offer-memory", "1G", "--offer-disk", "10G"]) }
    let created = try lua(
      """
      local vm = vmlab.vm.create { name = "solo", disks = { "8M" }, memory = "512M" }
      vm:start()
      local checkpoint = vm:checkpoint { name = "first" }
      print(vm.clusterHost, vm.state, checkpoint.name, vm.id >= (1 << 40), checkpoint.id >= (1 << 40))
      """)
    XCTAssertEqual(created.status, 0, created.error)
    let fields = created.output.split(separator: "\t").map(String.init)
    XCTAssertEqual(fields.count, 5, created.output)
    let host = fields[0]
    let other = host == "h1" ? "h2" : "h1"
    XCTAssertEqual(fields.dropFirst().joined(separator: " "), "running first true true\n")
    XCTAssertEqual(try localJSON(host, ["vm", "list"]).map { $0["name"] as? String }, ["solo"])
    XCTAssertEqual(try localJSON(other, ["vm", "list"]).count, 0)
    XCTAssertEqual(
      try localJSON(host, ["checkpoint", "list", "--vm", "solo"]).map { $0["name"] as? String }, ["first"])

    let clean = try read(host)
    try write(0x77, host)
    let restored = try lua(
      """
      local vm = vmlab.vm.get('solo')
      local checkpoint = vm:mostRecentCheckpoint()
      checkpoint:restore()
      local job = vm:checkpoint { name = "second", async = true }:wait()
      print(job.status, #vm:checkpoints())
      vm:turnOff()
      print(vm.state)
      """)
    XCTAssertEqual(restored.status, 0, restored.error)
    XCTAssertEqual(restored.output, "completed\t2\nstopped\n")
    XCTAssertEqual(try read(host), clean)
    XCTAssertEqual(
      try localJSON(host, ["checkpoint", "list", "--vm", "solo"]).compactMap { $0["name"] as? String }.sorted(),
      ["first", "second"])

    let removed = try lua("local vm = vmlab.vm.get('solo'); vm:remove(); print(vmlab.vm.exists('solo'), #vmlab.vms())")
    XCTAssertEqual(removed.status, 0, removed.error)
    XCTAssertEqual(removed.output, "false\t0\n")
    XCTAssertEqual(try localJSON(host, ["vm", "list"]).count, 0)
    let listed = try clusterCommand(["vm", "list", "--json"])
    XCTAssertEqual(listed.status, 0, listed.error)
    XCTAssertFalse(listed.output.contains("solo"), listed.output)
  }

  func testCallsTheClusterCannotAnswerAreRefusedAndChangeNothing() throws {
    try startAgent("h1", arguments: ["--offer-memory", "1G", "--offer-disk", "10G"])
    let template = folder.file("template.vhd")
    let disk = try vmlab(["disk", "create", template, "--size", "8M"], in: folder.path)
    XCTAssertEqual(disk.status, 0, disk.error)
    let cases: [(String, String)] = [
      (
        "vmlab.vm.create { name = 'a', from = '\(template)' }",
        "vm.create{from=} is not available with --cluster: '\(template)' is a file on this machine"
      ),
      (
        "vmlab.vm.create { name = 'a', disks = { '8M' }, accelerator = 'tcg' }",
        "VM 'a': only memory and cpus can be set with --cluster (not boot, network or accelerator)"
      ),
      ("vmlab.vm.get('nowhere')", "no VM 'nowhere' in cluster"),
    ]
    for (chunk, message) in cases {
      let result = try lua(chunk)
      XCTAssertEqual(result.status, 1, "\(chunk): \(result.output)")
      XCTAssertTrue(result.error.contains(message), "\(chunk): \(result.error)")
    }
    XCTAssertEqual(try localJSON("h1", ["vm", "list"]).count, 0)

    let made = try lua("vmlab.vm.create { name = 'b', disks = { '8M' }, memory = '64M' }:checkpoint { name = 'one' }")
    XCTAssertEqual(made.status, 0, made.error)
    let planned = try lua("vmlab.vm.get('b'):mostRecentCheckpoint():restore { whatIf = true }")
    XCTAssertEqual(planned.status, 1, planned.output)
    XCTAssertTrue(
      planned.error.contains(
        "restore{whatIf=true} is not available with --cluster: it needs the files of VM 'b', which are on host h1"),
      planned.error)
    let exported = try lua("vmlab.vm.get('b'):mostRecentCheckpoint():export('/tmp')")
    XCTAssertEqual(exported.status, 1, exported.output)
    XCTAssertTrue(exported.error.contains("run it on host h1 with vmlab --library \(library("h1"))"), exported.error)
    XCTAssertEqual(
      try localJSON("h1", ["checkpoint", "list", "--vm", "b"]).compactMap { $0["name"] as? String }, ["one"])

    // vm:exec goes to the VM's host, which says what its library says of a simulated guest.
    let exec = try lua("vmlab.vm.get('b'):exec('true')")
    XCTAssertEqual(exec.status, 1, exec.output)
    XCTAssertTrue(
      exec.error.contains("host h1: VM 'b' runs on the host 'simulated', which runs no guest to reach inside"),
      exec.error)
  }
}
