import Foundation
import XCTest

@testable import QEMUHost

/// A supervisor's pid counts as alive only while that program runs: an ended process not yet reaped
/// (a zombie) and a pid now used by another program both count as gone, so nothing waits on them.
final class ProcessLivenessTests: XCTestCase {
  func testARunningProcessIsAliveAndAnEndedOneIsNot() throws {
    let sleeper = Process()
    sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
    sleeper.arguments = ["30"]
    try sleeper.run()
    let pid = sleeper.processIdentifier
    // Until the child has exec'd, its command line is still this process's.
    let started = Date().addingTimeInterval(10)
    while !ProcessLiveness.isAlive(pid, runningCommandWith: "30"), Date() < started { usleep(1_000) }
    XCTAssertTrue(ProcessLiveness.isAlive(pid, runningCommandWith: "30"))
    XCTAssertFalse(ProcessLiveness.isAlive(pid, runningCommandWith: "supervise"), "another program's pid")
    // Killed but not yet reaped: a zombie for a moment, and already gone.
    kill(pid, SIGKILL)
    let deadline = Date().addingTimeInterval(10)
    while ProcessLiveness.isAlive(pid, runningCommandWith: "30"), Date() < deadline { usleep(10_000) }
    XCTAssertFalse(ProcessLiveness.isAlive(pid, runningCommandWith: "30"))
    sleeper.waitUntilExit()
    XCTAssertFalse(ProcessLiveness.isAlive(pid, runningCommandWith: "30"))
    XCTAssertFalse(ProcessLiveness.isAlive(0, runningCommandWith: "30"))
  }
}
