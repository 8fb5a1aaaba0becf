import Foundation
import LabKit
import TestSupport
import XCTest

/// Real guests that go wrong, from the command line: an agent that never answers, a guest that
/// powers itself off, and a VM asking for more memory than the host has free. Each says what
/// happened and what to do, and loses nothing.
final class QEMUGuestFailureTests: LibraryCommandTestCase {
  override func tearDown() {
    QEMUCommandTests.stopEveryVM(in: folder.file("library"))
    super.tearDown()
  }

  func testAnAgentThatNeverAnswersFailsTheStartWithTheConsoleAndLeavesTheVMRunning() throws {
    try TinyImageForLibraries.install(into: folder.file("library"))
    let image = ImageTemplates(library: folder.file("library"))
    let manifest = try image.manifest(of: "tiny")
    let tiny = image.folder(of: "tiny")
    // The image's kernel, but disk 1 is blank: the initramfs cannot mount it, says so and leaves a
    // shell on the console; no agent ever starts. The VM still claims additions.
    try run([
      "vm", "create", "noagent", "--host", "qemu", "--disk", "8M", "--additions", "--memory", "128M",
      "--accelerator", "tcg", "--kernel", "\(tiny)/\(manifest.kernel)", "--initrd", "\(tiny)/\(manifest.initrd)",
      "--append", "console=ttyS0 root=/dev/vda rw panic=-1",
    ])
    let started = Date()
    let result = try run(["vm", "start", "noagent", "--ready-timeout", "15"], expect: 1)
    XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 15, "it waited its time limit")
    XCTAssertTrue(result.error.contains("did not answer within 15 s"), result.error)
    XCTAssertTrue(result.error.contains("the last lines of VM 'noagent''s console:"), result.error)
    XCTAssertTrue(result.error.contains("vmlab-initramfs: cannot mount /dev/vda"), result.error)
    XCTAssertTrue(
      result.error.contains(
        "VM 'noagent' was left running (its guest may still be starting): `vmlab vm console noagent` shows its console, `vmlab vm turn-off noagent` stops it"
      ), result.error)
    XCTAssertEqual(
      try parseJSON(try run(["vm", "show", "noagent", "--json"]).output)["runState"] as? String, "running")
    // A command in it fails after the agent's own limit, naming the agent.
    let exec = try runFirst(["vm", "exec", "noagent", "--timeout", "3", "--", "true"], expect: 1)
    XCTAssertTrue(exec.error.contains("did not answer"), exec.error)
    try run(["vm", "turn-off", "noagent"])
    try run(["library", "check"])
  }

  func testAGuestThatPowersItselfOffIsShownOffAndWhy() throws {
    try TinyImageForLibraries.install(into: folder.file("library"))
    try run([
      "vm", "create", "self", "--host", "qemu", "--image", "tiny", "--memory", "256M", "--accelerator", "tcg",
    ])
    try run(["vm", "start", "self"])
    try runFirst(["vm", "exec", "self", "--", "/bin/sh", "-c", "echo before > /root/kept.txt"])
    // Powered off a moment after the command returns: a `poweroff` run directly can take the
    // agent down before it reports the command's end.
    try runFirst(["vm", "exec", "self", "--", "/bin/sh", "-c", "(sleep 1; poweroff) >/dev/null 2>&1 &"])
    let deadline = Date().addingTimeInterval(60)
    var list = ""
    while Date() < deadline {
      list = try run(["vm", "list"]).output
      if list.contains("stopped outside vmlab") { break }
      usleep(200_000)
    }
    XCTAssertTrue(list.contains("self") && list.contains("stopped outside vmlab at "), list)
    XCTAssertTrue(list.contains(": the guest powered off"), list)
    XCTAssertEqual(try parseJSON(try run(["vm", "show", "self", "--json"]).output)["runState"] as? String, "stopped")
    let exec = try runFirst(["vm", "exec", "self", "--", "true"], expect: 1)
    XCTAssertTrue(exec.error.contains("VM 'self' is stopped; commands run only in a running guest"), exec.error)
    try run(["library", "check"])
    // Nothing was lost: its clean power-off wrote the file, and it boots again.
    try run(["vm", "start", "self"])
    XCTAssertEqual(try runFirst(["vm", "exec", "self", "--", "cat", "/root/kept.txt"]).output, "before\n")
  }

  func testAVMWithMoreMemoryThanTheHostHasFreeIsRefusedBeforeQemuRuns() throws {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") else {
      throw XCTSkip("qemu-system-x86_64 is not installed (Debian qemu-system-x86; Scripts/bootstrap installs it)")
    }
    try run(["vm", "create", "big", "--host", "qemu", "--disk", "8M", "--memory", "1T", "--accelerator", "tcg"])
    let result = try run(["vm", "start", "big"], expect: 1)
    XCTAssertTrue(result.error.contains("VM 'big' needs 1.00 TiB of memory, but this host has "), result.error)
    XCTAssertTrue(result.error.contains(" free (MemAvailable in /proc/meminfo); nothing was started."), result.error)
    XCTAssertTrue(result.error.contains("make the VM with a smaller --memory"), result.error)
    let shown = try parseJSON(try run(["vm", "show", "big", "--json"]).output)
    XCTAssertEqual(shown["runState"] as? String, "stopped")
    XCTAssertNil(shown["qemu"])
    XCTAssertFalse(
      FileManager.default.fileExists(atPath: folder.file("library/vms/big/console.log")), "qemu never ran")
    try run(["library", "check"])
  }
}
