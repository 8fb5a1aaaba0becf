import Foundation
import TestSupport
import XCTest

/// The systemd unit shipped for the agent (`Support/systemd/vmlab-agent.service`) is one systemd
/// takes, and its documented settings are the ones its command line uses.
final class AgentUnitFileTests: XCTestCase {
  private var unitPath: String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("Support/systemd/vmlab-agent.service").path
  }

  func testSystemdVerifiesTheUnitWithTheBuiltBinaryInPlace() throws {
    let analyze = "/usr/bin/systemd-analyze"
    guard FileManager.default.isExecutableFile(atPath: analyze) else {
      throw XCTSkip("systemd-analyze is not installed (Debian's systemd package has it)")
    }
    let text = try String(contentsOfFile: unitPath, encoding: .utf8)
    XCTAssertTrue(text.contains("ExecStart=/usr/local/bin/vmlab agent "), "where Scripts/install /usr/local puts it")
    // verify checks that ExecStart's program exists: the one built beside the tests stands in.
    let folder = TemporaryFolder()
    let copy = folder.file("vmlab-agent.service")
    try text.replacingOccurrences(of: "/usr/local/bin/vmlab", with: try VMLabBinary.path)
      .write(toFile: copy, atomically: true, encoding: .utf8)
    let verified = try runProgram(analyze, ["verify", copy])
    XCTAssertEqual(verified.status, 0, verified.error)
    XCTAssertEqual(verified.error.trimmingCharacters(in: .whitespacesAndNewlines), "", "systemd's complaints")
  }

  func testTheSettingsTheUnitDocumentsAreTheOnesItsCommandLineUses() throws {
    let text = try String(contentsOfFile: unitPath, encoding: .utf8)
    let execStart = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
    for name in ["VMLAB_CLUSTER", "VMLAB_HOST_NAME", "VMLAB_LIBRARY", "VMLAB_AGENT_OPTIONS"] {
      XCTAssertTrue(text.contains("#   \(name)="), "the comment shows \(name)")
      XCTAssertTrue(execStart.contains("$\(name)") || execStart.contains("${\(name)}"), "ExecStart uses \(name)")
    }
    XCTAssertTrue(text.contains("EnvironmentFile=/etc/vmlab/agent.env"))
    // A usage error (a wrong URL, or a key others can read) is not fixed by starting again.
    XCTAssertTrue(text.contains("RestartPreventExitStatus=2"))
  }
}
