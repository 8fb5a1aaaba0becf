import Foundation
import TestSupport
import XCTest

/// The short soak: Scripts/soak.lua for about 20 s on 10 VMs with the debug build, then the catalog
/// from outside. (`Scripts/soak` runs the same script for minutes on 50 VMs against a release build.)
final class SoakTests: XCTestCase {
  func testShortSoakLeaksNothingAndFailsNoJob() throws {
    let folder = TemporaryFolder()
    let library = folder.file("library")
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("Scripts/soak.lua").path
    let seconds = ProcessInfo.processInfo.environment["VMLAB_SOAK_SECONDS"] ?? "20"
    let soak = try vmlab(["run", "--library", library, script, seconds, "10"])
    print(soak.output.split(separator: "\n").filter { $0.hasPrefix("soak") }.joined(separator: "\n"))
    XCTAssertFalse(soak.signaled, "the soak crashed: \(soak.error)")
    XCTAssertEqual(soak.status, 0, "\(soak.output)\n\(soak.error)")
    XCTAssertTrue(soak.output.contains("soak passed"), soak.output)

    let jobs = try parseJSONArray(
      try vmlab(["job", "list", "--json", "--limit", "100000", "--library", library]).output)
    XCTAssertGreaterThan(jobs.count, 100, "the soak ran jobs")
    let unfinished = jobs.filter { $0["status"] as? String != "completed" }
    XCTAssertEqual(unfinished.count, 0, "jobs not completed: \(unfinished.prefix(5))")
    let check = try vmlab(["library", "check", "--library", library])
    XCTAssertEqual(check.status, 0, check.output + check.error)
  }
}
