import Foundation
import LabKit
import TestSupport
import XCTest

@testable import QEMUHost

/// The guest agent client against Debian's real qemu-guest-agent in the tiny image, booted once
/// for the whole class under TCG with a plain qemu command line.
final class GuestAgentTests: XCTestCase {
  nonisolated(unsafe) private static var guest: ScratchGuest?
  nonisolated(unsafe) private static var runtime: TemporaryFolder?
  nonisolated(unsafe) private static var bootError: Error?
  nonisolated(unsafe) private static var bootSeconds: Double = 0

  override class func setUp() {
    super.setUp()
    do {
      let image = try TinyImageFixture.image()
      let runtime = TemporaryFolder(prefix: "vmlab-agent-", lastsForTheRun: true)
      let guest = try ScratchGuest(image: image.manifest, templateFolder: image.folder, runtime: runtime.path)
      self.runtime = runtime
      self.guest = guest
      let started = Date()
      try guest.start()
      do {
        try guest.agent.waitReady(timeout: 120)
      } catch {
        throw LabKitError(.failed, "\(error)\nconsole:\n\(guest.consoleTail())\nqemu: \(guest.emulatorErrors())")
      }
      bootSeconds = Date().timeIntervalSince(started)
      print("boot of the tiny image to agent-ready under TCG: \(String(format: "%.1f", bootSeconds)) s")
    } catch {
      bootError = error
    }
  }

  override class func tearDown() {
    guest?.stop()
    guest = nil
    runtime = nil
    super.tearDown()
  }

  private func agent() throws -> GuestAgent {
    if let skip = Self.bootError as? XCTSkip { throw skip }
    if let error = Self.bootError { throw error }
    return try XCTUnwrap(Self.guest).agent
  }

  func testTheGuestBootedToItsAgentAndPrintedTheReadyMarker() throws {
    let agent = try agent()
    try agent.ping(timeout: 5)
    XCTAssertTrue(try XCTUnwrap(Self.guest).console().contains("vmlab-tiny: ready (host tiny)"))
    XCTAssertLessThan(Self.bootSeconds, 120)
  }

  func testExecReturnsStandardOutputStandardErrorAndTheExitCode() throws {
    let result = try agent().exec(path: "/bin/sh", arguments: ["-c", "echo out; echo err >&2; exit 3"], timeout: 30)
    XCTAssertEqual(result.stdoutText, "out\n")
    XCTAssertEqual(result.stderrText, "err\n")
    XCTAssertEqual(result.status, 3)
    XCTAssertNil(result.signal)
  }

  func testExecFeedsInputAndCarriesBinaryBytes() throws {
    let bytes = Data((0..<256).map { UInt8($0) }) + Data(repeating: 0xFF, count: 3)
    let result = try agent().exec(path: "cat", input: bytes, timeout: 30)
    XCTAssertEqual(result.stdout, bytes)
    XCTAssertEqual(result.status, 0)
  }

  func testTheRootDiskIsTheImageOnVdaMountedReadWriteWithTheHostName() throws {
    let agent = try agent()
    let mounts = try agent.exec(path: "cat", arguments: ["/proc/mounts"], timeout: 30).stdoutText
    XCTAssertTrue(mounts.contains("/dev/vda / ext4 rw"), mounts)
    XCTAssertEqual(try agent.exec(path: "hostname", timeout: 30).stdoutText, "tiny\n")
    let write = try agent.exec(
      path: "/bin/sh", arguments: ["-c", "echo kept > /root/file && sync && cat /root/file"], timeout: 30)
    XCTAssertEqual(write.stdoutText, "kept\n")
  }

  func testAProgramThatDoesNotExistIsAClearError() throws {
    XCTAssertThrowsError(try agent().exec(path: "/usr/bin/vmlab-no-such-program", timeout: 30)) {
      XCTAssertTrue("\($0)".contains("cannot run /usr/bin/vmlab-no-such-program in the guest"), "\($0)")
      XCTAssertTrue("\($0)".contains("No such file"), "\($0)")
    }
    // The agent still answers afterwards.
    XCTAssertEqual(try agent().exec(path: "true", timeout: 30).status, 0)
  }

  func testAProgramThatOutlivesItsTimeoutIsReportedAndKilled() throws {
    let agent = try agent()
    let started = Date()
    XCTAssertThrowsError(try agent.exec(path: "sleep", arguments: ["47"], timeout: 2)) {
      XCTAssertTrue("\($0)".contains("sleep in the guest did not finish within 2 s"), "\($0)")
      XCTAssertTrue("\($0)".contains("SIGKILL"), "\($0)")
    }
    XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    let deadline = Date().addingTimeInterval(10)
    var left = ""
    repeat {
      left = try agent.exec(path: "/bin/sh", arguments: ["-c", "ps | grep 'sleep 4[7]' || true"], timeout: 30)
        .stdoutText
    } while !left.isEmpty && Date() < deadline
    XCTAssertEqual(left, "", "the timed-out program still runs")
  }

  func testFreezeStopsWritesUntilThaw() throws {
    let agent = try agent()
    let frozen = try agent.freeze()
    var thawed = false
    defer { if !thawed { _ = try? agent.thaw() } }
    XCTAssertEqual(frozen, 1, "the root file system")
    XCTAssertEqual(try agent.freezeStatus(), "frozen")
    // While frozen the agent refuses to start programs (a write would hang the guest).
    XCTAssertThrowsError(try agent.exec(path: "true", timeout: 10)) {
      XCTAssertTrue("\($0)".contains("refused"), "\($0)")
    }
    XCTAssertEqual(try agent.thaw(), 1)
    thawed = true
    XCTAssertEqual(try agent.freezeStatus(), "thawed")
    XCTAssertEqual(
      try agent.exec(path: "/bin/sh", arguments: ["-c", "echo after > /root/thawed && cat /root/thawed"], timeout: 30)
        .stdoutText, "after\n")
  }

  func testSetTimeMovesTheGuestClock() throws {
    let agent = try agent()
    let target = Date(timeIntervalSince1970: 1_900_000_000)
    try agent.setTime(target)
    defer { try? agent.setTime(Date()) }
    let seen = try agent.exec(path: "date", arguments: ["+%s"], timeout: 30).stdoutText
    let seconds = try XCTUnwrap(Double(seen.trimmingCharacters(in: .whitespacesAndNewlines)))
    XCTAssertEqual(seconds, target.timeIntervalSince1970, accuracy: 30)
    try agent.setTime(Date())
    XCTAssertEqual(try agent.time().timeIntervalSinceNow, 0, accuracy: 30)
  }

  func testANewClientResynchronisesAfterAnAbandonedCommand() throws {
    let guest = try XCTUnwrap(Self.guest)
    _ = try agent()
    // A command whose reply nobody reads is left in the port's stream, then a new client comes.
    let stale = try JSONLineConnection(path: guest.agentSocket, timeout: 5)
    Self.guest?.agent.close()
    try stale.send(["execute": "guest-info"])
    stale.close()
    let fresh = GuestAgent(socketPath: guest.agentSocket)
    defer { fresh.close() }
    XCTAssertEqual(try fresh.exec(path: "echo", arguments: ["fresh"], timeout: 30).stdoutText, "fresh\n")
  }
}
