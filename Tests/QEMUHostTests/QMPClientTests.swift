import Foundation
import TestSupport
import XCTest

@testable import QEMUHost

/// The QMP client against a real qemu under TCG with no disk (it sits in SeaBIOS).
final class QMPClientTests: XCTestCase {
  private var folder: TemporaryFolder!
  private var qemu: PlainQEMU?

  override func setUpWithError() throws {
    folder = TemporaryFolder()
  }

  override func tearDown() {
    qemu?.stop()
    qemu = nil
    folder = nil
  }

  func testStatusStopContinueAndTheirEvents() throws {
    qemu = try PlainQEMU(folder: folder.path)
    let qmp = try qemu!.connect()
    XCTAssertEqual(try qmp.status(), QMPStatus(state: "running", running: true))
    let before = qmp.events.count
    try qmp.stop()
    XCTAssertEqual(try qmp.status(), QMPStatus(state: "paused", running: false))
    _ = try qmp.waitForEvent("STOP", after: before, timeout: 10)
    try qmp.cont()
    _ = try qmp.waitForEvent("RESUME", after: before, timeout: 10)
    XCTAssertEqual(try qmp.status().state, "running")
  }

  func testAnUnknownCommandThrowsQemusDescription() throws {
    qemu = try PlainQEMU(folder: folder.path)
    let qmp = try qemu!.connect()
    XCTAssertThrowsError(try qmp.execute("no-such-command")) {
      XCTAssertEqual("\($0)", "qemu refused no-such-command: The command no-such-command has not been found")
    }
    // The connection goes on after an error.
    XCTAssertEqual(try qmp.status().state, "running")
  }

  func testMigrateToAFileAndIncomingFromItResumesPaused() throws {
    let state = folder.file("state, with 'quotes'.vsv")
    qemu = try PlainQEMU(folder: folder.file("a"))
    let qmp = try qemu!.connect()
    try qmp.stop()
    let result = try qmp.migrate(toFile: state, timeout: 120)
    XCTAssertGreaterThan(result.ramBytes, 0)
    let size = try FileManager.default.attributesOfItem(atPath: state)[.size] as! UInt64
    XCTAssertGreaterThan(size, 100_000, "the state file holds the guest's memory")
    XCTAssertEqual(try qmp.status().state, "postmigrate")
    try qmp.quit()
    XCTAssertTrue(qemu!.waitForExit(timeout: 20), "qemu ends on quit")

    qemu = try PlainQEMU(folder: folder.file("b"), incomingState: state)
    let resumed = try qemu!.connect()
    // A state saved while paused comes back paused; cont runs it.
    XCTAssertEqual(try resumed.waitForIncoming(timeout: 120).state, "paused")
    try resumed.cont()
    XCTAssertEqual(try resumed.status(), QMPStatus(state: "running", running: true))
  }

  func testAMigrationToAFolderThatDoesNotExistFailsWithAReason() throws {
    qemu = try PlainQEMU(folder: folder.path)
    let qmp = try qemu!.connect()
    try qmp.stop()
    XCTAssertThrowsError(try qmp.migrate(toFile: folder.file("missing/state.vsv"), timeout: 60)) {
      XCTAssertTrue("\($0)".hasPrefix("qemu refused migrate:"), "\($0)")
    }
    XCTAssertEqual(try qmp.status().state, "paused", "the VM stays as it was")
  }

  func testPowerDownAndQuit() throws {
    qemu = try PlainQEMU(folder: folder.path)
    let qmp = try qemu!.connect()
    try qmp.powerDown()
    try qmp.quit()
    XCTAssertTrue(qemu!.waitForExit(timeout: 20))
    XCTAssertEqual(qemu!.process.terminationStatus, 0)
  }

  func testASocketThatIsNotQMPIsRefused() throws {
    let server = try FakeLineServer(path: folder.file("fake.sock"), greeting: #"{"hello": 1}"#)
    defer { server.stop() }
    XCTAssertThrowsError(try QMPClient(socketPath: server.path, timeout: 5)) {
      XCTAssertTrue("\($0)".contains("is not a QMP monitor"), "\($0)")
    }
  }
}
