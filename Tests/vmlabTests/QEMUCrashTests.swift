import Foundation
import LabKit
import QEMUHost
import TestSupport
import XCTest

/// SIGKILL of `vmlab checkpoint new` (and `checkpoint restore`) while it works on a running qemu VM, at moments
/// spread over the operation (before the pause, while paused, after the commit, after the switch).
/// After each kill the library reopens clean (`library check`), and the VM runs with its exports
/// writing exactly the leaves the catalog names, or is off and says why.
final class QEMUCrashTests: LibraryCommandTestCase {
  override func tearDown() {
    QEMUCommandTests.stopEveryVM(in: folder.file("library"))
    super.tearDown()
  }

  func testKillingAnOnlineCheckpointLeavesTheVMRunningOnTheCatalogsLeaves() throws {
    try startRunningVM()
    // How long a whole checkpoint takes here, so the kills spread over it whatever the load.
    let started = Date()
    try run(["checkpoint", "new", "web", "measured"])
    let window = Date().timeIntervalSince(started)
    let kills = Int(ProcessInfo.processInfo.environment["VMLAB_QEMU_CRASH_SEEDS"] ?? "") ?? 16
    var outcomes: [String: Int] = [:]
    for round in 0..<kills {
      // Spread over the first 90 %: the last part of the window is the command's own exit.
      let delay = window * 0.9 * Double(round) / Double(max(kills - 1, 1))
      let checkpoint = try BackgroundVMLab(["checkpoint", "new", "web", "k\(round)"] + library)
      if round % 2 == 1 {
        // Every other kill waits until the VM is seen paused, then lets a little more happen.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline && checkpoint.process.isRunning && !isPaused(qemuState()) {}
        usleep(useconds_t(round * 1_500))
      } else {
        let deadline = Date().addingTimeInterval(delay)
        while Date() < deadline && checkpoint.process.isRunning { usleep(1_000) }
      }
      var landed = checkpoint.process.isRunning ? "killed" : "finished first"
      kill(checkpoint.process.processIdentifier, SIGKILL)
      checkpoint.process.waitUntilExit()
      // What qemu was doing when the command died, asked of the supervisor before vmlab reopens.
      if landed == "killed", isPaused(qemuState()) { landed = "killed while paused" }
      outcomes[landed, default: 0] += 1

      try assertRunsOnTheCatalogsLeavesOrSaysWhyItIsOff(round: round)
    }
    XCTAssertGreaterThan(outcomes["killed while paused", default: 0] + outcomes["killed", default: 0], 0)
    print("qemu crash rounds: window \(Int(window * 1000)) ms, \(outcomes)")
    let names = try run(["checkpoint", "list", "--vm", "web"]).output
    XCTAssertTrue(names.contains("measured"), names)
  }

  /// SIGKILL of `vmlab checkpoint restore` of a running VM to a checkpoint with memory, at moments
  /// spread over the restore (the old qemu turned off, the new disks, the commit, the new qemu
  /// loading the memory): the library reopens clean, and the VM either runs with its exports
  /// writing exactly the catalog's leaves, or is off and says why.
  func testKillingARestoreOfARunningVMLeavesItRunningOnTheCatalogsLeavesOrOffSayingWhy() throws {
    try startRunningVM()
    try run(["checkpoint", "new", "web", "clean"])
    let started = Date()
    try run(["checkpoint", "restore", "clean", "--vm", "web"])
    let window = Date().timeIntervalSince(started)
    let kills = Int(ProcessInfo.processInfo.environment["VMLAB_QEMU_CRASH_SEEDS"] ?? "") ?? 8
    var outcomes: [String: Int] = [:]
    for round in 0..<kills {
      let delay = window * 0.9 * Double(round) / Double(max(kills - 1, 1))
      let restore = try BackgroundVMLab(["checkpoint", "restore", "clean", "--vm", "web"] + library)
      let deadline = Date().addingTimeInterval(delay)
      while Date() < deadline && restore.process.isRunning { usleep(1_000) }
      outcomes[restore.process.isRunning ? "killed" : "finished first", default: 0] += 1
      kill(restore.process.processIdentifier, SIGKILL)
      restore.process.waitUntilExit()

      try assertRunsOnTheCatalogsLeavesOrSaysWhyItIsOff(round: round)
    }
    XCTAssertGreaterThan(outcomes["killed", default: 0], 0)
    print("qemu restore crash rounds: window \(Int(window * 1000)) ms, \(outcomes)")
  }

  /// A running qemu VM `web` with two small disks (the guest sits in its firmware).
  private func startRunningVM() throws {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") else {
      throw XCTSkip("qemu-system-x86_64 is not installed (Debian qemu-system-x86; Scripts/bootstrap installs it)")
    }
    try run([
      "vm", "create", "web", "--host", "qemu", "--host-kind", "hypervisor", "--disk", "16M", "--disk", "16M",
      "--memory", "64M", "--accelerator", "tcg",
    ])
    try run(["vm", "start", "web"])
  }

  /// After a kill: the library checks clean, and the VM runs (not left paused) with its exports
  /// writing exactly the catalog's leaves, or it is stopped and says why (then it is started again
  /// for the next round).
  private func assertRunsOnTheCatalogsLeavesOrSaysWhyItIsOff(round: Int) throws {
    let check = try run(["library", "check"])
    XCTAssertEqual(check.status, 0, "round \(round): \(check.output)")
    let vm = try parseJSON(try run(["vm", "show", "web", "--json"]).output)
    let catalog = ((vm["disks"] as? [[String: Any]]) ?? []).compactMap { $0["path"] as? String }
    if vm["state"] as? String == "running" {
      XCTAssertEqual(vm["runState"] as? String, "running", "round \(round): running, not left paused")
      let exports = (vm["qemu"] as? [String: Any])?["leaves"] as? [String]
      XCTAssertEqual(exports, catalog, "round \(round): the exports write the catalog's leaves")
    } else {
      XCTAssertEqual(vm["state"] as? String, "stopped", "round \(round)")
      XCTAssertNotNil(vm["stopReason"], "round \(round): off, and says why: \(vm)")
      try run(["vm", "start", "web"])
    }
  }

  /// Stopped by the checkpoint: `paused`, or `postmigrate` once its memory was saved.
  private func isPaused(_ state: String) -> Bool { state == "paused" || state == "postmigrate" }

  /// qemu's run state as the VM's supervisor reports it, through its control socket ("" when
  /// it does not answer).
  private func qemuState() -> String {
    let socket = folder.file("library") + "/vms/web/control.sock"
    guard let connection = try? JSONLineConnection(path: socket, timeout: 0) else { return "" }
    defer { connection.close() }
    guard (try? connection.send(["command": "status"])) != nil, let reply = try? connection.receive(timeout: 5)
    else { return "" }
    return reply["state"]?.string ?? ""
  }
}
