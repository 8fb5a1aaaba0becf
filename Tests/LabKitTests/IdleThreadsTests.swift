import Foundation
import XCTest

@testable import LabKit

/// The threads that run parallel work are kept a moment between bursts, and end once idle.
final class IdleThreadsTests: XCTestCase {
  /// Runs `count` items at once (each waits until all have started, so each needs its own thread)
  /// and returns when all are done.
  private func burst(_ threads: IdleThreads, _ count: Int) {
    let allStarted = DispatchGroup()
    let done = DispatchGroup()
    for _ in 0..<count {
      allStarted.enter()
      done.enter()
    }
    for _ in 0..<count {
      threads.run(name: "test") {
        allStarted.leave()
        allStarted.wait()
        done.leave()
      }
    }
    XCTAssertEqual(done.wait(timeout: .now() + 10), .success, "a burst's items did not all run")
  }

  /// Waits until `count` threads wait for work (a thread goes idle just after its item ends).
  private func waitUntilIdle(_ threads: IdleThreads, _ count: Int) {
    let deadline = Date().addingTimeInterval(10)
    while threads.waiting < count && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
    XCTAssertEqual(threads.waiting, count)
  }

  func testASecondBurstRunsOnTheFirstBurstsThreads() {
    let threads = IdleThreads(keepSeconds: 5)
    burst(threads, 4)
    XCTAssertEqual(threads.started, 4)
    waitUntilIdle(threads, 4)
    burst(threads, 4)
    XCTAssertEqual(threads.started, 4, "the second burst started threads of its own")
    waitUntilIdle(threads, 4)
    burst(threads, 6)
    XCTAssertEqual(threads.started, 6, "a larger burst started more than the threads it lacked")
  }

  func testAThreadIdleLongerThanItsKeepEnds() {
    let threads = IdleThreads(keepSeconds: 0.1)
    burst(threads, 2)
    waitUntilIdle(threads, 2)
    let deadline = Date().addingTimeInterval(10)
    while threads.waiting > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    XCTAssertEqual(threads.waiting, 0, "idle threads outlived their keep")
    burst(threads, 2)
    XCTAssertEqual(threads.started, 4, "threads idle past their keep took new work")
  }
}
