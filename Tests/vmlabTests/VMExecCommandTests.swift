import Foundation
import TestSupport
import XCTest

/// `vm exec`: what it refuses before any guest is asked (a stopped VM is refused in the Lua tests,
/// with a host that has guests). Programs in real guests are run by the QEMU host's tests.
final class VMExecCommandTests: LibraryCommandTestCase {
  /// Runs with `--library` before the command: after `--` every word is the guest program's.
  private func exec(_ arguments: [String], expect status: Int32) throws -> CommandResult {
    let result = try vmlab(library + ["vm", "exec"] + arguments, in: folder.path)
    XCTAssertFalse(result.signaled, "vmlab crashed: \(result.error)")
    XCTAssertEqual(result.status, status, "\(arguments): \(result.output) \(result.error)")
    return result
  }

  func testExecNeedsAProgramARunningVMAndAHostWithAGuest() throws {
    try run(["vm", "create", "web01", "--disk", "8M"])
    var result = try exec(["web01"], expect: 2)
    XCTAssertTrue(
      result.error.contains("give the program to run after --, for example: vmlab vm exec web01 -- uname -a"),
      result.error)
    result = try exec(["web01", "--timeout", "0", "--", "true"], expect: 2)
    XCTAssertTrue(result.error.contains("--timeout must be more than 0 seconds"), result.error)
    try run(["vm", "start", "web01"])
    result = try exec(["web01", "--", "uname", "-a"], expect: 1)
    XCTAssertTrue(
      result.error.contains("VM 'web01' runs on the host 'simulated', which runs no guest to reach inside"),
      result.error)
    result = try exec(["nosuch", "--", "true"], expect: 1)
    XCTAssertTrue(result.error.contains("VM 'nosuch' not found"), result.error)
  }
}
