import Foundation
import TestSupport
import XCTest

/// The power commands and `vm remove` on several VMs of one library: each changed in turn, and a
/// VM that is not there (or one named twice) changes none.
final class VMPowerCommandTests: XCTestCase {
  private var folder: TemporaryFolder!

  override func setUp() { folder = TemporaryFolder() }

  private func run(_ arguments: [String]) throws -> CommandResult {
    try vmlab(arguments + ["--library", folder.file("lib")], in: folder.path, environment: ["VMLAB_CLUSTER": ""])
  }

  private func states() throws -> [String: String] {
    let listed = try run(["vm", "list", "--json"])
    XCTAssertEqual(listed.status, 0, listed.error)
    let vms = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]])
    return Dictionary(uniqueKeysWithValues: vms.map { ($0["name"] as! String, $0["state"] as! String) })
  }

  func testSeveralVMsAreChangedInTurnAndATypoChangesNone() throws {
    for name in ["a", "b"] { XCTAssertEqual(try run(["vm", "create", name, "--disk", "8M"]).status, 0) }
    let typo = try run(["vm", "start", "a", "nosuch", "b"])
    XCTAssertEqual(typo.status, 1, typo.output)
    XCTAssertTrue(typo.error.contains("nosuch"), typo.error)
    XCTAssertEqual(try states(), ["a": "stopped", "b": "stopped"])

    let started = try run(["vm", "start", "a", "B"])
    XCTAssertEqual(started.status, 0, started.error)
    XCTAssertEqual(started.output, "a is running\nb is running\n")
    XCTAssertEqual(try states(), ["a": "running", "b": "running"])

    let twice = try run(["vm", "turn-off", "a", "A"])
    XCTAssertEqual(twice.status, 2, twice.output)
    XCTAssertTrue(twice.error.contains("the VM 'a' is named twice"), twice.error)
    let typoOff = try run(["vm", "turn-off", "b", "nosuch"])
    XCTAssertEqual(typoOff.status, 1, typoOff.output)
    XCTAssertEqual(try states(), ["a": "running", "b": "running"])

    let off = try run(["vm", "turn-off", "a", "b"])
    XCTAssertEqual(off.output, "a is stopped\nb is stopped\n", off.error)
    let typoRemove = try run(["vm", "remove", "a", "nosuch"])
    XCTAssertEqual(typoRemove.status, 1, typoRemove.output)
    XCTAssertEqual(try states(), ["a": "stopped", "b": "stopped"])
    let removed = try run(["vm", "remove", "a", "b"])
    XCTAssertEqual(removed.output, "removed VM a\nremoved VM b\n", removed.error)
    XCTAssertEqual(try states(), [:])
  }
}
