import Foundation
import LabKit
import TestSupport
import XCTest

/// `vmlab library decide`: the way by hand out of a cluster operation an agent prepared and left
/// waiting. `library check` names it; the decision is carried out from the journal; wrong arguments
/// are usage errors and change nothing.
final class LibraryDecideCommandTests: LibraryCommandTestCase {
  /// Prepares a checkpoint of both VMs as an agent would, and leaves it undecided.
  private func preparedCheckpoint() throws -> Int64 {
    let hosts = HostRegistry()
    hosts.register(SimulatedHost(), as: HostRegistry.defaultName)
    let library = try Library(at: folder.file("library"), hosts: hosts)
    defer { try? library.close() }
    return try library.prepareCheckpoint(vms: ["a", "b"], name: "clean").operationID
  }

  func testAPreparedCheckpointIsNamedByCheckAndDecidedByHand() throws {
    for vm in ["a", "b"] { try run(["vm", "create", vm, "--disk", "8M"]) }
    let id = try preparedCheckpoint()
    let check = try run(["library", "check"], expect: 1)
    XCTAssertTrue(
      check.output.contains(
        "problem: VMs 'a', 'b' have a prepared checkpoint (operation \(id)) that waits for its decision"),
      check.output)
    XCTAssertTrue(check.output.contains("`vmlab library decide \(id) --commit` or `--roll-back`"), check.output)
    let refused = try run(["checkpoint", "new", "a", "other"], expect: 1)
    XCTAssertTrue(refused.error.contains("prepared checkpoint (operation \(id))"), refused.error)

    let neither = try run(["library", "decide", "\(id)"], expect: 2)
    XCTAssertTrue(neither.error.contains("say --commit or --roll-back (one of them)"), neither.error)
    try run(["library", "decide", "\(id)", "--commit", "--roll-back"], expect: 2)
    let unknown = try run(["library", "decide", "\(id + 100)", "--commit"], expect: 1)
    XCTAssertTrue(unknown.error.contains("no prepared operation \(id + 100) waits in this library"), unknown.error)

    let decided = try run(["library", "decide", "\(id)", "--commit"])
    XCTAssertEqual(decided.output, "operation \(id) committed on VMs a, b\n")
    try run(["library", "check"])
    let list = try run(["checkpoint", "list", "--json"]).output
    XCTAssertEqual(try parseJSONArray(list).compactMap { $0["name"] as? String }, ["clean", "clean"])
    let again = try run(["library", "decide", "\(id)", "--roll-back"], expect: 1)
    XCTAssertTrue(again.error.contains("no prepared operation \(id) waits"), again.error)
  }

  func testARollBackByHandLeavesTheFilesAsTheyWere() throws {
    for vm in ["a", "b"] { try run(["vm", "create", vm, "--disk", "8M"]) }
    let before = Set(try FileManager.default.subpathsOfDirectory(atPath: folder.file("library/vms")))
    let id = try preparedCheckpoint()
    XCTAssertNotEqual(Set(try FileManager.default.subpathsOfDirectory(atPath: folder.file("library/vms"))), before)
    XCTAssertEqual(
      try run(["library", "decide", "\(id)", "--roll-back"]).output, "operation \(id) rolled back on VMs a, b\n")
    XCTAssertEqual(Set(try FileManager.default.subpathsOfDirectory(atPath: folder.file("library/vms"))), before)
    try run(["library", "check"])
    try run(["checkpoint", "new", "a", "later"])
  }
}
