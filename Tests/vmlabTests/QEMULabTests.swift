import Foundation
import TestSupport
import XCTest

/// A lab of real guests (the tiny image under TCG) from the command line, the way CI runs it: two
/// VMs through create, start, exec, an online lab checkpoint, changes, a restore with memory, the
/// check inside the guests, and a merge (refused while they run, then done with them off); and a
/// `virtual-server` VM shut down through its agent for a checkpoint and started again.
final class QEMULabTests: LibraryCommandTestCase {
  override func tearDown() {
    // Whatever the test did, no supervisor or qemu it started outlives it.
    QEMUCommandTests.stopEveryVM(in: folder.file("library"))
    super.tearDown()
  }

  /// Runs a shell line in the VM's guest and returns its standard output (exit status 0 expected).
  @discardableResult
  func guest(_ vm: String, _ line: String, file: StaticString = #filePath, line sourceLine: UInt = #line) throws
    -> String
  {
    try runFirst(["vm", "exec", vm, "--timeout", "60", "--", "/bin/sh", "-c", line], file: file, line: sourceLine)
      .output
  }

  /// Waits (at most 120 s each) until every VM's guest agent answers, through Lua's vm:waitReady.
  func waitForAgents(_ vms: [String]) throws {
    let names = vms.map { "\"\($0)\"" }.joined(separator: ", ")
    try runFirst(["run", "-e", "for _, n in ipairs{\(names)} do vmlab.vm.get(n):waitReady{timeout=120} end"])
  }

  func testATwoVMLabOfRealGuestsThroughCheckpointRestoreAndMerge() throws {
    try TinyImageForLibraries.install(into: folder.file("library"))
    let vms = ["web1", "web2"]
    for vm in vms {
      try run([
        "vm", "create", vm, "--host", "qemu", "--image", "tiny", "--disk", "64M", "--memory", "256M",
        "--host-kind", "hypervisor", "--accelerator", "tcg",
      ])
      XCTAssertTrue(try run(["vm", "start", vm]).output.contains("its guest agent answered after"))
    }
    try run(["lab", "create", "class"] + vms)

    // The serial console takes typing (here from a pipe, not a terminal) and answers; its log keeps it.
    let typed = try vmlab(
      library + ["vm", "console", "web1", "--attach"], in: folder.path, input: "echo console-$((6*7))\n")
    XCTAssertEqual(typed.status, 0, typed.error)
    XCTAssertTrue(typed.output.contains("console-42"), typed.output)
    XCTAssertTrue(try run(["vm", "console", "web1", "--lines", "5"]).output.contains("console-42"))

    // The "installed system": a file on the root disk and bytes on disk 2, written by each guest.
    for vm in vms {
      try guest(
        vm,
        "echo clean \(vm) > /root/clean.txt && printf disk2-\(vm) | dd of=/dev/vdb bs=512 seek=1 conv=fsync 2>/dev/null && sync"
      )
      XCTAssertEqual(try guest(vm, "hostname"), "\(vm)\n")
    }
    let checkpoint = try run(["lab", "checkpoint", "class", "clean"]).output
    XCTAssertEqual(checkpoint.components(separatedBy: "online").count - 1, 2, checkpoint)

    // Students change things; the guests keep running through the checkpoint.
    for vm in vms {
      try guest(
        vm,
        "rm /root/clean.txt && echo student > /root/student.txt && printf XXXXXXXXXXXX | dd of=/dev/vdb bs=512 seek=1 conv=fsync 2>/dev/null && sync"
      )
    }
    try run(["lab", "restore", "class", "clean"])
    try waitForAgents(vms)
    func verify() throws {
      for vm in vms {
        XCTAssertEqual(try guest(vm, "cat /root/clean.txt"), "clean \(vm)\n")
        XCTAssertEqual(try guest(vm, "test -e /root/student.txt && echo there || echo gone"), "gone\n")
        // Past the guest's page cache: the disk itself holds the checkpoint's bytes again.
        XCTAssertEqual(
          try guest(vm, "dd if=/dev/vdb bs=512 skip=1 count=1 iflag=direct 2>/dev/null | head -c \(6 + vm.count)"),
          "disk2-\(vm)")
      }
    }
    try verify()
    let shown = try parseJSON(try run(["vm", "show", "web1", "--json"]).output)
    XCTAssertEqual(shown["runState"] as? String, "running")

    // A merge rewrites the chain qemu's exports have open: refused while they run, done when off.
    let refused = try run(["checkpoint", "merge", "clean", "--all"], expect: 1)
    XCTAssertTrue(refused.error.contains("cannot be merged while it runs on the qemu host"), refused.error)
    for vm in vms { try run(["vm", "turn-off", vm]) }
    try run(["checkpoint", "merge", "clean", "--all", "--yes"])
    XCTAssertEqual(try parseJSONArray(try run(["checkpoint", "list", "--json"]).output).count, 0)
    for vm in vms { try run(["vm", "start", vm]) }
    try verify()
    try run(["library", "check"])
  }

  func testAVirtualServerVMIsShutDownThroughItsAgentForACheckpointAndStartedAgain() throws {
    try TinyImageForLibraries.install(into: folder.file("library"))
    try run([
      "vm", "create", "vs", "--host", "qemu", "--image", "tiny", "--memory", "256M", "--host-kind", "virtual-server",
      "--accelerator", "tcg",
    ])
    try run(["vm", "start", "vs"])
    try guest("vs", "echo kept > /root/kept.txt")  // no sync: the clean shutdown writes it
    let bootID = try guest("vs", "cat /proc/sys/kernel/random/boot_id")
    let taken = try run(["checkpoint", "new", "vs", "clean"]).output
    XCTAssertTrue(taken.contains("'clean' of vs taken (shut down, started again)"), taken)
    XCTAssertTrue(
      try String(contentsOfFile: folder.file("library/vms/vs/console.log"), encoding: .utf8).contains(
        "reboot: Power down"),
      "the guest powered itself off")
    try waitForAgents(["vs"])
    XCTAssertNotEqual(try guest("vs", "cat /proc/sys/kernel/random/boot_id"), bootID, "a new boot")
    XCTAssertEqual(try guest("vs", "cat /root/kept.txt"), "kept\n")
    try run(["library", "check"])
  }
}
