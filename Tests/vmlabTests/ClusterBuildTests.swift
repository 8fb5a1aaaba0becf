import Cluster
import Foundation
import TestSupport
import XCTest

/// New VMs across three `vmlab agent` processes (libraries of their own): `vm create --cluster`
/// spread by room, `--host-name`, nothing created when nothing fits, `vm list --cluster`, and
/// templates that reach the host that needs them (one test boots a pulled image on qemu).
final class ClusterBuildTests: ClusterTestCase {
  override func tearDown() {
    // No supervisor or qemu of a test outlives it, whatever it did.
    for host in ["h1", "h2", "h3"] { QEMUCommandTests.stopEveryVM(in: library(host)) }
    super.tearDown()
  }

  /// Three agents offering 4, 2 and 2 GiB of memory (the machine is the same for all three).
  private func startThreeHosts() throws {
    for (host, memory) in [("h1", "4G"), ("h2", "2G"), ("h3", "2G")] {
      try startAgent(host, arguments: ["--offer-memory", memory, "--offer-disk", "100G"])
    }
  }

  private func localVMs(_ host: String) throws -> [String] {
    let listed = try localCommand(host, ["vm", "list", "--json"])
    XCTAssertEqual(listed.status, 0, listed.error)
    let vms = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]])
    return vms.compactMap { $0["name"] as? String }.sorted()
  }

  private func clusterVMs() throws -> [String: String] {
    let listed = try clusterCommand(["vm", "list", "--json"])
    XCTAssertEqual(listed.status, 0, listed.error)
    let vms = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]])
    return Dictionary(uniqueKeysWithValues: vms.map { ($0["name"] as! String, $0["host"] as! String) })
  }

  func testVMsCreatedOneByOneSpreadByRoomAndTheOneThatDoesNotFitIsRefused() throws {
    try startThreeHosts()
    for number in 1...8 {
      let made = try clusterCommand(["vm", "create", "vm\(number)", "--disk", "8M", "--memory", "1G"])
      XCTAssertEqual(made.status, 0, "\(made.output)\(made.error)")
      XCTAssertTrue(made.output.hasPrefix("created VM vm\(number) on host h"), made.output)
    }
    let placed = try clusterVMs()
    XCTAssertEqual(placed.count, 8)
    XCTAssertEqual(Dictionary(placed.values.map { ($0, 1) }, uniquingKeysWith: +), ["h1": 4, "h2": 2, "h3": 2])
    for host in ["h1", "h2", "h3"] {
      XCTAssertEqual(try localVMs(host), placed.filter { $0.value == host }.keys.sorted(), "library of \(host)")
    }

    let refused = try clusterCommand(["vm", "create", "vm9", "--disk", "8M", "--memory", "1G"])
    XCTAssertEqual(refused.status, 1, refused.output)
    XCTAssertEqual(
      refused.error,
      "vmlab: error: 1 VM of 1 GiB need 1 GiB of memory; the live hosts have 0 bytes free: h1 0 bytes, h2 0 bytes, h3 0 bytes; nothing was created\n"
    )
    XCTAssertEqual(try clusterVMs().count, 8)
    for host in ["h1", "h2", "h3"] { XCTAssertFalse(try localVMs(host).contains("vm9")) }

    let taken = try clusterCommand(["vm", "create", "VM1", "--disk", "8M", "--memory", "16M"])
    XCTAssertEqual(taken.status, 2, taken.output)
    XCTAssertTrue(taken.error.contains("VM name in use in the cluster: 'vm1' on host h"), taken.error)

    let table = try clusterCommand(["vm", "list"])
    XCTAssertTrue(table.output.hasPrefix("NAME"), table.output)
    XCTAssertTrue(table.output.contains("vm8"), table.output)
    XCTAssertTrue(table.output.contains("alive"), table.output)
  }

  func testAHostNameIsHonouredAndAWrongOneIsAClearError() throws {
    try startThreeHosts()
    let made = try clusterCommand(["vm", "create", "pinned", "--disk", "8M", "--memory", "1G", "--host-name", "h3"])
    XCTAssertEqual(made.status, 0, made.error)
    XCTAssertEqual(try clusterVMs(), ["pinned": "h3"])
    XCTAssertEqual(try localVMs("h3"), ["pinned"])

    let unknown = try clusterCommand(["vm", "create", "x", "--disk", "8M", "--host-name", "h9"])
    XCTAssertEqual(unknown.status, 1)
    XCTAssertEqual(
      unknown.error, "vmlab: error: VM 'x': no host 'h9' in the cluster (hosts: h1, h2, h3); nothing was created\n")
    let full = try clusterCommand(["vm", "create", "x", "--disk", "8M", "--memory", "2G", "--host-name", "h3"])
    XCTAssertEqual(full.status, 1)
    XCTAssertTrue(
      full.error.contains(
        "VM 'x' needs 2 GiB of memory and 8 MiB of disk; host 'h3' (--host-name) has 1 GiB of memory"),
      full.error)
    let local = try vmlab(["vm", "create", "x", "--disk", "8M", "--host-name", "h3"], in: folder.path)
    XCTAssertEqual(local.status, 2)
    XCTAssertTrue(local.error.contains("--host-name places a VM on a cluster's host: give --cluster URL"), local.error)
    let path = try clusterCommand(["vm", "create", "x", "--from", "/tmp/a.vhd"])
    XCTAssertEqual(path.status, 2)
    XCTAssertTrue(path.error.contains("--from is not taken with --cluster"), path.error)
    XCTAssertEqual(try clusterVMs(), ["pinned": "h3"])

    agents["h2"]!.signal(SIGTERM)
    XCTAssertTrue(agents["h2"]!.waitForExit())
    let stopped = try clusterCommand(["vm", "create", "x", "--disk", "8M", "--host-name", "h2"])
    XCTAssertEqual(stopped.status, 1)
    XCTAssertTrue(stopped.error.contains("host 'h2' is stopped (its agent does not heartbeat)"), stopped.error)
  }

  func testATemplateOnOneAgentIsPulledByAnotherByteForByte() throws {
    let source = try StandInImage.make(in: library("h1"))
    try startAgent("h1")
    try startAgent("h2")
    try agents["h1"]!.waitForLog("template 'tiny' registered (5 files")
    let job = try submit("pull", [try StepRequest(host: "h2", kind: .pullTemplate, ImageStep(image: "tiny"))])
    let done = try waitForJob(job)
    XCTAssertEqual(done.state, "done", "\(done.steps)\n\(agents["h2"]!.log)")
    XCTAssertTrue(
      done.steps[0].result?.hasPrefix("image 'tiny' copied from host h1: 5 files") == true, "\(done.steps[0])")
    XCTAssertEqual(
      try StandInImage.contents(of: library("h2") + "/templates/tiny"), try StandInImage.contents(of: source))
    XCTAssertTrue(agents["h1"]!.log.contains("sent template 'tiny' to host h2"), agents["h1"]!.log)
    XCTAssertTrue(agents["h2"]!.log.contains("pulling: 100%"), agents["h2"]!.log)

    let images = try clusterCommand(["image", "list"])
    XCTAssertEqual(images.status, 0, images.error)
    XCTAssertTrue(images.output.contains("tiny   h1,h2"), images.output)

    // The source gone: a third host cannot get it, and says from where it would have.
    agents["h1"]!.signal(SIGTERM)
    XCTAssertTrue(agents["h1"]!.waitForExit())
    agents["h2"]!.signal(SIGTERM)
    XCTAssertTrue(agents["h2"]!.waitForExit())
    try startAgent("h3")
    let orphan = try submit("pull", [try StepRequest(host: "h3", kind: .pullTemplate, ImageStep(image: "tiny"))])
    let failed = try waitForJob(orphan)
    XCTAssertEqual(failed.state, "failed")
    XCTAssertEqual(
      failed.steps[0].error,
      "image 'tiny' is only on host h1 (stopped), h2 (stopped), which is not live; start that host's agent, or build the image on a live host"
    )
    XCTAssertEqual(
      (try? FileManager.default.contentsOfDirectory(atPath: library("h3") + "/templates")) ?? [], [],
      "h3 kept something")
  }

  func testAnImageVMOnAHostWithoutTheImageIsRefusedWhenNoLiveHostHasIt() throws {
    try startThreeHosts()
    let refused = try clusterCommand([
      "vm", "create", "web", "--host", "qemu", "--image", "tiny", "--memory", "256M",
    ])
    XCTAssertEqual(refused.status, 1)
    XCTAssertTrue(
      refused.error.contains(
        "image 'tiny' cannot reach the chosen hosts: no host has it; build it with `vmlab --cluster URL image build tiny --host-name HOST`"
      ), refused.error)
    XCTAssertEqual(try clusterVMs(), [:])
  }

  /// The tiny image built into h1's library only; a VM placed on h2 pulls it and boots.
  func testARealGuestFromAnImagePulledFromAnotherHostBoots() throws {
    try TinyImageForLibraries.install(into: library("h1"))
    try startAgent("h1", arguments: ["--offer-memory", "1G"])
    try startAgent("h2", arguments: ["--offer-memory", "2G"])
    try agents["h1"]!.waitForLog("template 'tiny' registered")
    let made = try clusterCommand([
      "vm", "create", "web", "--host", "qemu", "--image", "tiny", "--memory", "256M", "--disk", "16M",
      "--host-kind", "hypervisor",
    ])
    XCTAssertEqual(made.status, 0, "\(made.error)\n\(agents["h2"]!.log)")
    XCTAssertTrue(made.output.contains("created VM web on host h2: image 'tiny' copied from host h1"), made.output)
    XCTAssertTrue(
      made.output.contains("SHA-256 verified; created VM 'web' from image 'tiny' on host qemu"), made.output)
    XCTAssertEqual(try clusterVMs(), ["web": "h2"])

    let started = try localCommand("h2", ["vm", "start", "web", "--ready-timeout", "120"])
    XCTAssertEqual(started.status, 0, "\(started.output)\(started.error)")
    XCTAssertTrue(started.output.contains("its guest agent answered after"), started.output)
    let hostname = try vmlab(
      ["--library", library("h2"), "--wait", "vm", "exec", "web", "--timeout", "60", "--", "/bin/hostname"],
      in: folder.path)
    XCTAssertEqual(hostname.output, "web\n", hostname.error)
    let off = try localCommand("h2", ["vm", "turn-off", "web"])
    XCTAssertEqual(off.status, 0, off.error)
  }
}
