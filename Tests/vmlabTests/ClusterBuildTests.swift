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
    XCTAssertTrue(table.output.hasPrefix("NAME  STATE    DISKS  CHECKPOINTS  HOST  HOST STATE\n"), table.output)
    XCTAssertTrue(table.output.contains("vm8"), table.output)
    XCTAssertTrue(table.output.contains("alive"), table.output)
  }

  func testThirtyVMsAskedAtOnceAsOneJobSpreadInProportionToRoom() throws {
    try startThreeHosts()
    let steps = (1...30).map { CreateVMStep(name: "s\($0)", disks: [8 << 20], memory: 256 << 20) }
    let placed = try database { db in try await ClusterPlacement(db).createVMs(steps, kind: "build-lab") }
    XCTAssertEqual(placed.map(\.vm), steps.map(\.name))
    let counts = Dictionary(placed.map { ($0.host, 1) }, uniquingKeysWith: +)
    // 4, 2 and 2 GiB offered: 16, 8 and 8 VMs of 256 MiB fit; 30 fill all three in proportion.
    XCTAssertEqual(counts.values.reduce(0, +), 30)
    XCTAssertGreaterThanOrEqual(counts["h1"] ?? 0, 14, "\(counts)")
    XCTAssertGreaterThanOrEqual(counts["h2"] ?? 0, 7, "\(counts)")
    XCTAssertGreaterThanOrEqual(counts["h3"] ?? 0, 7, "\(counts)")
    for host in ["h1", "h2", "h3"] {
      XCTAssertEqual(try localVMs(host), placed.filter { $0.host == host }.map(\.vm).sorted(), "library of \(host)")
    }
    let jobs = try clusterCommand(["job", "list"])
    XCTAssertTrue(jobs.output.contains("build-lab"), jobs.output)
    XCTAssertTrue(jobs.output.contains("30 VMs"), jobs.output)
  }

  func testCommandsRunAtOnceDoNotFillTheSameRoom() throws {
    try startThreeHosts()
    // 8 VMs of 1 GiB for 4 + 2 + 2 GiB, asked by 8 processes at the same moment.
    let processes = try (1...8).map { number -> Process in
      let process = Process()
      process.executableURL = URL(fileURLWithPath: try VMLabBinary.path)
      process.arguments = [
        "--cluster", cluster.urlText, "vm", "create", "p\(number)", "--disk", "8M", "--memory", "1G",
      ]
      process.standardOutput = FileHandle.nullDevice
      process.standardError = FileHandle.nullDevice
      try process.run()
      return process
    }
    defer { for process in processes where process.isRunning { process.terminate() } }
    try waitUntil("the 8 commands ended", timeout: 60) { processes.allSatisfy { !$0.isRunning } }
    XCTAssertEqual(processes.map(\.terminationStatus), Array(repeating: 0, count: 8))
    let placed = try clusterVMs()
    XCTAssertEqual(Dictionary(placed.values.map { ($0, 1) }, uniquingKeysWith: +), ["h1": 4, "h2": 2, "h3": 2])
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

  func testACorruptedTemplateIsRefusedByThePullingAgentAndNothingIsLeft() throws {
    let source = try StandInImage.make(in: library("h1"))
    try startAgent("h1")
    try startAgent("h2")
    try agents["h1"]!.waitForLog("template 'tiny' registered (5 files")
    // One byte of h1's kernel rots after it was registered (same size, same time: not hashed again).
    let path = source + "/vmlinuz"
    var status = stat()
    XCTAssertEqual(stat(path, &status), 0)
    let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
    try handle.seek(toOffset: 4096)
    let byte = try XCTUnwrap(try handle.read(upToCount: 1))
    try handle.seek(toOffset: 4096)
    try handle.write(contentsOf: Data([byte[0] ^ 0x20]))
    try handle.close()
    var times = [status.st_atim, status.st_mtim]
    XCTAssertEqual(utimensat(AT_FDCWD, path, &times, 0), 0)

    let job = try submit("pull", [try StepRequest(host: "h2", kind: .pullTemplate, ImageStep(image: "tiny"))])
    let failed = try waitForJob(job)
    XCTAssertEqual(failed.state, "failed")
    let error = failed.steps[0].error ?? ""
    XCTAssertTrue(
      error.hasPrefix("the copy of image 'tiny' from host h1 does not match its checksum: vmlinuz has SHA-256"),
      error)
    XCTAssertTrue(error.hasSuffix("nothing was kept"), error)
    XCTAssertEqual(
      (try? FileManager.default.contentsOfDirectory(atPath: library("h2") + "/templates")) ?? [], [],
      "h2 kept something")
    let images = try clusterCommand(["image", "list", "--json"])
    let listed = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(images.output.utf8)) as? [[String: Any]])
    XCTAssertEqual(listed.compactMap { $0["host"] as? String }, ["h1"])
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
    // `image build` as h1's step, through its agent's builder: the image is there already.
    let again = try clusterCommand(["image", "build", "tiny", "--host-name", "h1"])
    XCTAssertEqual(again.status, 1, again.output)
    XCTAssertTrue(
      again.error.contains("host h1 could not build image 'tiny': image 'tiny' is already built in"), again.error)
    let noHost = try clusterCommand(["image", "build", "tiny"])
    XCTAssertEqual(noHost.status, 2)
    XCTAssertTrue(noHost.error.contains("with --cluster, say which host builds it: --host-name NAME"), noHost.error)
    let made = try clusterCommand([
      "vm", "create", "web", "--host", "qemu", "--image", "tiny", "--memory", "256M", "--disk", "16M",
      "--host-kind", "hypervisor",
    ])
    XCTAssertEqual(made.status, 0, "\(made.error)\n\(agents["h2"]!.log)")
    XCTAssertTrue(made.output.contains("created VM web on host h2: image 'tiny' copied from host h1"), made.output)
    XCTAssertTrue(
      made.output.contains("SHA-256 verified; created VM 'web' from image 'tiny' (qemu host)"), made.output)
    XCTAssertEqual(try clusterVMs(), ["web": "h2"])
    XCTAssertTrue(made.error.contains("vmlab: VM web on host h2: "), made.error)

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
