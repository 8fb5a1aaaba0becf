import Foundation
import XCTest

@testable import QEMUHost

final class JSONValueTests: XCTestCase {
  func testAQMPReplyParsesAndItsMembersReadBack() throws {
    let reply = try JSONValue.decode(
      Data(#"{"return": {"status": "running", "running": true, "singlestep": false}, "id": 7}"#.utf8))
    XCTAssertEqual(reply["return"]?["status"]?.string, "running")
    XCTAssertEqual(reply["return"]?["running"]?.bool, true)
    XCTAssertEqual(reply["id"]?.int, 7)
    XCTAssertNil(reply["error"])
  }

  func testACommandEncodesOnOneLineAndRoundTrips() throws {
    let command: JSONValue = ["execute": "guest-exec", "arguments": ["path": "/bin/sh", "arg": ["-c", "echo hi"]]]
    let text = String(decoding: command.encoded(), as: UTF8.self)
    XCTAssertFalse(text.contains("\n"))
    XCTAssertEqual(try JSONValue.decode(command.encoded()), command)
  }

  func testAMissingProgramNamesTheDebianPackage() {
    XCTAssertThrowsError(try QEMUInstallation.program("vmlab-no-such-emulator", package: "qemu-system-x86")) {
      XCTAssertTrue("\($0)".contains("install Debian's qemu-system-x86"), "\($0)")
    }
  }
}
