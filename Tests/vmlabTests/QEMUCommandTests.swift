import Foundation
import LabKit
import TestSupport
import XCTest

/// The command line on the qemu host: real qemu under TCG with two disks it does not boot from (it
/// sits in SeaBIOS), so the supervisor, the exports, online checkpoints and restores are real.
final class QEMUCommandTests: LibraryCommandTestCase {
  override func setUp() {
    super.setUp()
  }

  override func tearDown() {
    // Whatever the test did, no supervisor or qemu it started outlives it.
    QEMUCommandTests.stopEveryVM(in: folder.file("library"))
    super.tearDown()
  }

  static func stopEveryVM(in library: String) {
    let vms = library + "/vms"
    for name in (try? FileManager.default.contentsOfDirectory(atPath: vms)) ?? [] {
      guard let data = FileManager.default.contents(atPath: "\(vms)/\(name)/qemu-status.json"),
        let status = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
      else { continue }
      for key in ["supervisorPid", "qemuPid"] {
        if let pid = status[key] as? Int, pid > 0 { kill(Int32(pid), SIGKILL) }
      }
    }
  }

  /// Whether a process runs (a zombie waiting for its new parent to reap it does not).
  private func isRunning(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let end = stat.lastIndex(of: ")")
    else { return false }
    return !stat[stat.index(end, offsetBy: 2)...].hasPrefix("Z")
  }

  private func requireQEMU() throws {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") else {
      throw XCTSkip("qemu-system-x86_64 is not installed (Debian qemu-system-x86; Scripts/bootstrap installs it)")
    }
  }

  private func createRunningVM(_ name: String, kind: String = "hypervisor") throws {
    try run([
      "vm", "create", name, "--host", "qemu", "--host-kind", kind, "--disk", "8M", "--disk", "8M", "--memory", "64M",
      "--accelerator", "tcg",
    ])
    XCTAssertEqual(try run(["vm", "start", name]).output, "\(name) is running\n")
  }

  private func shown(_ name: String) throws -> [String: Any] {
    try parseJSON(try run(["vm", "show", name, "--json"]).output)
  }

  private func catalogLeaves(_ json: [String: Any]) -> [String] {
    ((json["disks"] as? [[String: Any]]) ?? []).compactMap { $0["path"] as? String }
  }

  private func exportLeaves(_ json: [String: Any]) -> [String] {
    ((json["qemu"] as? [String: Any])?["leaves"] as? [String]) ?? []
  }

  func testStartOnlineCheckpointRestoreAndTurnOff() throws {
    try requireQEMU()
    try createRunningVM("web")
    var vm = try shown("web")
    XCTAssertEqual(vm["runState"] as? String, "running")
    XCTAssertEqual(vm["accelerator"] as? String, "tcg")
    let first = catalogLeaves(vm)
    XCTAssertEqual(exportLeaves(vm), first, "qemu's exports write the catalog's leaves")

    let taken = try run(["checkpoint", "new", "web", "clean"]).output
    XCTAssertTrue(taken.contains("(online, paused ") && taken.contains("ms, memory saved)"), taken)
    vm = try shown("web")
    XCTAssertEqual(vm["runState"] as? String, "running")
    XCTAssertNotEqual(catalogLeaves(vm), first)
    XCTAssertEqual(exportLeaves(vm), catalogLeaves(vm), "switched to the new leaves")

    let disksOnly = try run(["checkpoint", "new", "web", "second", "--disks-only"]).output
    XCTAssertTrue(disksOnly.contains("disks only)"), disksOnly)
    let pid = (try shown("web")["qemu"] as? [String: Any])?["qemuPid"] as? Int

    // Without memory: the VM that ran is stopped and boots cold on the new leaves, a new qemu.
    try run(["checkpoint", "restore", "second", "--vm", "web"])
    vm = try shown("web")
    XCTAssertEqual(vm["runState"] as? String, "running")
    XCTAssertEqual(exportLeaves(vm), catalogLeaves(vm))
    XCTAssertNotEqual((vm["qemu"] as? [String: Any])?["qemuPid"] as? Int, pid, "a cold boot")

    // Back to the first moment with its memory: a new qemu from the state file on new leaves.
    try run(["checkpoint", "restore", "clean", "--vm", "web"])
    vm = try shown("web")
    XCTAssertEqual(vm["runState"] as? String, "running")
    XCTAssertEqual(exportLeaves(vm), catalogLeaves(vm))
    XCTAssertTrue(try run(["vm", "list"]).output.contains("running"))

    let remove = try run(["checkpoint", "remove", "second", "--vm", "web"], expect: 1)
    XCTAssertTrue(remove.error.contains("cannot be removed while it runs on the qemu host"), remove.error)
    try run(["library", "check"])

    XCTAssertEqual(try run(["vm", "turn-off", "web"]).output, "web is stopped\n")
    vm = try shown("web")
    XCTAssertEqual(vm["runState"] as? String, "stopped")
    XCTAssertNil(vm["qemu"])
    try run(["checkpoint", "remove", "second", "--vm", "web"])
    try run(["library", "check"])
  }

  func testAKilledSupervisorOrQemuIsAStoppedVMThatSaysWhy() throws {
    try requireQEMU()
    try createRunningVM("a")
    try createRunningVM("b", kind: "virtual-server")
    let a = try XCTUnwrap(try shown("a")["qemu"] as? [String: Any])
    let b = try XCTUnwrap(try shown("b")["qemu"] as? [String: Any])
    kill(Int32(a["supervisorPid"] as! Int), SIGKILL)
    kill(Int32(b["qemuPid"] as! Int), SIGKILL)
    // The killed supervisor's qemu dies with it; the killed qemu's supervisor records why and ends.
    let deadline = Date().addingTimeInterval(30)
    var list = ""
    while Date() < deadline {
      list = try run(["vm", "list"]).output
      if list.components(separatedBy: "stopped outside vmlab").count == 3 && list.contains("signal 9") { break }
      usleep(200_000)
    }
    XCTAssertTrue(list.contains("(it was killed)"), list)
    XCTAssertTrue(list.contains("qemu was killed by signal 9"), list)
    XCTAssertFalse(isRunning(Int32(a["qemuPid"] as! Int)), "the supervisor's qemu is gone too")
    try run(["library", "check"])
    // Started again by vmlab, it runs and no longer says it was stopped outside.
    try run(["vm", "start", "a"])
    XCTAssertEqual(try shown("a")["runState"] as? String, "running")
  }

  func testTheConsoleOfAVMThatNeverRanOrIsNotOnQEMUIsAClearError() throws {
    try run(["vm", "create", "q", "--disk", "8M", "--host", "qemu"])
    let never = try run(["vm", "console", "q"], expect: 1)
    XCTAssertEqual(never.error, "vmlab: error: VM 'q' has no console log yet; start it with `vmlab vm start q`\n")
    try run(["vm", "create", "s", "--disk", "8M"])
    let simulated = try run(["vm", "console", "s"], expect: 1)
    XCTAssertTrue(simulated.error.contains("has no serial console; only qemu VMs do"), simulated.error)
    try run(["vm", "console", "q", "--lines", "-1"], expect: 2)
  }
}
