import Foundation
import TestSupport
import XCTest

/// `vmlab host info`: qemu's version, the accelerator and why. The KVM probe itself is tested in
/// QEMUHostTests (it boots a guest); here the override, the answer without an image, and mistakes.
final class HostInfoCommandTests: LibraryCommandTestCase {
  override func setUpWithError() throws {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") else {
      throw XCTSkip("qemu-system-x86_64 is not installed (Scripts/bootstrap installs qemu-system-x86)")
    }
  }

  func testAnOverrideIsShownWithQEMUsVersion() throws {
    let result = try run(["host", "info", "--accel", "tcg"])
    let lines = result.output.split(separator: "\n").map(String.init)
    XCTAssertTrue(lines[0].hasPrefix("qemu:        QEMU emulator version 7."), result.output)
    XCTAssertTrue(lines[0].hasSuffix("(/usr/bin/qemu-system-x86_64)"), result.output)
    XCTAssertEqual(lines[1], "machine:     pc-q35-7.2")
    XCTAssertEqual(lines[2], "accelerator: tcg: chosen with --accel tcg; the probe was not run")
    XCTAssertEqual(lines.last, "images:      none (`vmlab image build tiny`)")
  }

  func testWithoutAnImageTheAnswerSaysWhatIsMissing() throws {
    let json = try parseJSON(try run(["host", "info", "--json"]).output)
    let accelerator = try XCTUnwrap(json["accelerator"] as? [String: Any])
    XCTAssertEqual(accelerator["accelerator"] as? String, "tcg")
    let reason = try XCTUnwrap(accelerator["reason"] as? String)
    // Either this machine has no usable /dev/kvm, or it has one and there is nothing to probe it with.
    XCTAssertTrue(
      reason.contains("/dev/kvm does not exist") || reason.contains("cannot be opened")
        || reason.contains("no image to boot (`vmlab image build tiny`)"), reason)
    XCTAssertEqual(json["machine"] as? String, "pc-q35-7.2")
  }

  func testBadOptionsAreUsageErrors() throws {
    var result = try run(["host", "info", "--accel", "hvf"], expect: 2)
    XCTAssertTrue(result.error.contains("hvf"), result.error)
    result = try run(["host", "info", "--probe-time", "0"], expect: 2)
    XCTAssertTrue(result.error.contains("--probe-time must be from 1 to 600 seconds"), result.error)
  }
}
