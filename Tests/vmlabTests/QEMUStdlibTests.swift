import Foundation
import TestSupport
import XCTest

/// The bundled lab scripts on real guests (the tiny image under TCG): build-lab boots a lab and
/// checkpoints it with memory, reset-lab brings every guest back and waits for its agent, and
/// classroom's students write inside the guests, whose own checks after each restore must pass.
final class QEMUStdlibTests: LibraryCommandTestCase {
  override func tearDown() {
    QEMUCommandTests.stopEveryVM(in: folder.file("library"))
    super.tearDown()
  }

  @discardableResult
  private func script(_ name: String, _ arguments: [String], expect status: Int32 = 0, line: UInt = #line) throws
    -> CommandResult
  {
    let result = try vmlab(["run"] + library + [name] + arguments, in: folder.path)
    XCTAssertFalse(result.signaled, "\(name) crashed: \(result.error)", line: line)
    XCTAssertEqual(result.status, status, "\(name) \(arguments): \(result.output)\n\(result.error)", line: line)
    return result
  }

  private func guest(_ vm: String, _ line: String) throws -> CommandResult {
    try vmlab(library + ["vm", "exec", vm, "--", "/bin/sh", "-c", line], in: folder.path)
  }

  func testBuildResetAndClassroomOnRealGuests() throws {
    try TinyImageForLibraries.install(into: folder.file("library"))
    var result = try script(
      "build-lab.lua",
      [
        "--lab", "web", "--vms", "2", "--prefix", "web", "--host", "qemu", "--image", "tiny",
        "--memory", "256M", "--accelerator", "tcg",
      ])
    XCTAssertTrue(
      result.output.contains("building lab 'web': 2 VMs (web, image tiny on qemu, no extra disks)"), result.output)
    XCTAssertTrue(result.output.contains("lab 'web' ready in "), result.output)
    for vm in ["web01", "web02"] {
      let shown = try parseJSON(try run(["vm", "show", vm, "--json"]).output)
      XCTAssertEqual(shown["runState"] as? String, "running")
      XCTAssertEqual(shown["hostKind"] as? String, "hypervisor", "checkpoints keep the guests' memory")
      let written = try guest(vm, "echo changed > /root/student.txt && sync")
      XCTAssertEqual(written.status, 0, written.error)
    }

    result = try script("reset-lab.lua", ["web"])
    XCTAssertTrue(result.output.contains("GUEST AGENT"), result.output)
    XCTAssertEqual(result.output.components(separatedBy: "answers after ").count - 1, 2, result.output)
    for vm in ["web01", "web02"] {
      let checked = try guest(vm, "test -e /root/student.txt && echo there || echo gone")
      XCTAssertEqual(checked.output, "gone\n", "\(vm): \(checked.error)")
    }

    result = try script(
      "classroom.lua", ["--host", "qemu", "--vms", "2", "--rounds", "1", "--writes", "2", "--accelerator", "tcg"])
    XCTAssertTrue(result.output.contains("round 1: 4 student files, restore until every agent answers "), result.output)
    XCTAssertTrue(result.output.contains("verified in the guests"), result.output)
    XCTAssertTrue(result.output.contains("every guest found its clean files again"), result.output)
    // Its own lab is gone afterwards; the other one is untouched.
    let vms = try parseJSONArray(try run(["vm", "list", "--json"]).output).compactMap { $0["name"] as? String }
    XCTAssertEqual(vms, ["web01", "web02"])
    try run(["library", "check"])
  }
}
