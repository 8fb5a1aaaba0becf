import LabKit
import XCTest

@testable import Cluster

/// What a script is told a lab operation did to each VM's power, read from its state before and
/// after: the same words a lab operation on one library uses.
final class ClusterEnginePowerActionTests: XCTestCase {
  func testAVMThatRanAndRunsAgainWasStoppedForTheOperationUnlessItsMemoryWasKept() {
    XCTAssertEqual(ClusterEngine.powerAction(was: .running, now: .running, additions: false, online: false), .turnedOff)
    XCTAssertEqual(ClusterEngine.powerAction(was: .running, now: .running, additions: true, online: false), .shutDown)
    XCTAssertEqual(ClusterEngine.powerAction(was: .running, now: .running, additions: false, online: true), .online)
  }

  func testStoppedAndSavedVMs() {
    XCTAssertEqual(ClusterEngine.powerAction(was: .stopped, now: .stopped, additions: true, online: false), .none)
    XCTAssertEqual(ClusterEngine.powerAction(was: .stopped, now: .running, additions: false, online: true), .none)
    XCTAssertEqual(
      ClusterEngine.powerAction(was: .saved, now: .stopped, additions: true, online: false), .savedStateDiscarded)
    XCTAssertEqual(ClusterEngine.powerAction(was: .running, now: .stopped, additions: true, online: false), .shutDown)
  }
}
