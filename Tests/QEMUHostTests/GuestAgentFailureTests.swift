import Foundation
import LabKit
import TestSupport
import XCTest

@testable import QEMUHost

/// An agent that is not there: no socket, or a guest that never answers (qemu in its firmware with
/// the agent's port attached and nothing behind it). Both end within their time limit, saying so.
final class GuestAgentFailureTests: XCTestCase {
  func testNoSocketIsAClearErrorAtOnce() {
    let folder = TemporaryFolder()
    let agent = GuestAgent(socketPath: folder.file("agent.sock"))
    let started = Date()
    XCTAssertThrowsError(try agent.ping(timeout: 1)) {
      XCTAssertTrue("\($0)".contains("no guest agent socket to talk to at \(folder.file("agent.sock"))"), "\($0)")
    }
    XCTAssertLessThan(Date().timeIntervalSince(started), 5)
  }

  func testAGuestWithoutAnAgentTimesOutWithAClearError() throws {
    try TinyImageFixture.requireEmulator()
    let runtime = TemporaryFolder(prefix: "vmlab-noagent-")
    // No disk and no kernel: SeaBIOS finds nothing to boot and waits, the port stays silent.
    var settings = ScratchGuest.Settings()
    settings.lifetime = 60
    let guest = ScratchGuest(runtime: runtime.path, disks: [], settings: settings)
    try guest.start()
    defer { guest.stop() }
    let socketDeadline = Date().addingTimeInterval(30)
    while !FileManager.default.fileExists(atPath: guest.agentSocket) && Date() < socketDeadline {
      Thread.sleep(forTimeInterval: 0.05)
    }
    let started = Date()
    XCTAssertThrowsError(try guest.agent.ping(timeout: 1.5)) {
      XCTAssertTrue("\($0)".contains("did not answer within"), "\($0)")
      XCTAssertTrue("\($0)".contains("qemu-guest-agent"), "\($0)")
    }
    XCTAssertLessThan(Date().timeIntervalSince(started), 8)
    XCTAssertThrowsError(try guest.agent.waitReady(timeout: 2)) {
      XCTAssertTrue("\($0)".contains("did not answer within 2 s"), "\($0)")
    }
    XCTAssertTrue(guest.isRunning, "the guest itself is left alone")
  }
}
