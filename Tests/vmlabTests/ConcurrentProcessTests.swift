import Foundation
import TestSupport
import XCTest

/// Two vmlab processes on one library at once: without `--wait` the second is refused with a clear
/// "library busy" (exit 1, no crash, nothing changed); with `--wait` it waits its turn and both
/// succeed; the catalog stays consistent either way.
final class ConcurrentProcessTests: XCTestCase {
  private var folder: TemporaryFolder!
  private var library: String { folder.file("library") }

  override func setUpWithError() throws {
    folder = TemporaryFolder()
    for name in ["a", "b"] {
      XCTAssertEqual(try vmlab(["vm", "create", name, "--disk", "8M", "--disk", "8M", "--library", library]).status, 0)
    }
  }

  func testASecondProcessIsToldTheLibraryIsBusyAndWithWaitTakesItsTurn() throws {
    // The holder takes a checkpoint, then keeps the library open until told to finish.
    let holder = try BackgroundVMLab([
      "run", "--library", library, "-e",
      #"vmlab.vm.get("a"):checkpoint("held"); print("holding"); io.stdout:flush(); io.read("l")"#,
    ])
    try holder.waitForOutput("holding")

    let refused = try vmlab(["checkpoint", "new", "b", "refused", "--library", library])
    XCTAssertFalse(refused.signaled)
    XCTAssertEqual(refused.status, 1, refused.output + refused.error)
    XCTAssertTrue(refused.error.contains("library busy"), refused.error)
    XCTAssertTrue(
      refused.error.contains("pid \(holder.process.processIdentifier)"), "names the holder: \(refused.error)")
    XCTAssertTrue(refused.error.contains("--wait"), "says what to do: \(refused.error)")
    XCTAssertEqual(refused.error.split(separator: "\n").count, 1, "one line, no trace: \(refused.error)")

    let waiting = try BackgroundVMLab(["checkpoint", "new", "b", "waited", "--wait", "--library", library])
    // It says it waits, and for whom, once it found the library taken.
    try waiting.waitForErrors("pid \(holder.process.processIdentifier)) is using \(library); waiting for it to finish")
    XCTAssertTrue(waiting.process.isRunning, "--wait waits while the other process holds the library")
    holder.finish(input: "\n")
    XCTAssertEqual(holder.status, 0, holder.output + holder.errors)
    waiting.finish()
    XCTAssertEqual(waiting.status, 0, waiting.output + waiting.errors)

    let checkpoints = try parseJSONArray(try vmlab(["checkpoint", "list", "--json", "--library", library]).output)
    XCTAssertEqual(
      Set(checkpoints.map { "\($0["vm"] as? String ?? "")/\($0["name"] as? String ?? "")" }), ["a/held", "b/waited"])
    let check = try vmlab(["library", "check", "--library", library])
    XCTAssertEqual(check.status, 0, check.output)
  }

  /// Processes started together with --wait, on the same VM and on another: every one succeeds, one
  /// after the other, and every checkpoint is there.
  func testProcessesStartedTogetherWithWaitAllSucceed() throws {
    var expected: Set<String> = []
    for round in 1...4 {
      let processes = try [("a", "x"), ("a", "y"), ("b", "z")].map { vm, tag -> BackgroundVMLab in
        expected.insert("\(vm)/\(tag)\(round)")
        return try BackgroundVMLab(["checkpoint", "new", vm, "\(tag)\(round)", "--wait", "--library", library])
      }
      for process in processes {
        process.finish()
        XCTAssertEqual(process.status, 0, "round \(round): \(process.output + process.errors)")
      }
    }
    let checkpoints = try parseJSONArray(try vmlab(["checkpoint", "list", "--json", "--library", library]).output)
    XCTAssertEqual(Set(checkpoints.map { "\($0["vm"] as? String ?? "")/\($0["name"] as? String ?? "")" }), expected)
    let check = try vmlab(["library", "check", "--library", library])
    XCTAssertEqual(check.status, 0, check.output)
  }
}
