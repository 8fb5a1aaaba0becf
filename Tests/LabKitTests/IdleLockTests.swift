import Foundation
import TestSupport
import XCTest

@testable import LabKit

/// A library that waits for a person lets other processes in, and takes the library back before it
/// works again.
final class IdleLockTests: LabKitTestCase {
  func testAnIdleLibraryLetsOthersInAndResumes() throws {
    try library.createVM(name: "web", diskSizes: [MiB])
    XCTAssertThrowsError(try Library(at: root, host: host), "busy while it is in use")
    XCTAssertTrue(library.releaseWhileIdle())
    let other = try Library(at: root, host: host)
    try other.createVM(name: "db", diskSizes: [MiB])
    let waiting = expectation(description: "it says it waits for the other")
    let resumed = expectation(description: "resumed once the other let go")
    let waiter = Thread { [library] in
      try? library!.resumeAfterIdle { _ in waiting.fulfill() }
      resumed.fulfill()
    }
    waiter.start()
    wait(for: [waiting], timeout: 30)
    try other.close()
    wait(for: [resumed], timeout: 30)
    XCTAssertEqual(try library.vms().map(\.name), ["db", "web"])
    XCTAssertThrowsError(try Library(at: root, host: host), "held again after resuming")
  }

  func testItKeepsTheLibraryWhileItsJobsRun() throws {
    try library.createVM(name: "web", diskSizes: [MiB])
    let gate = DispatchSemaphore(value: 0)
    let job = try library.jobs.submit(kind: "test", target: "web") {
      gate.wait()
      return nil
    }
    XCTAssertFalse(library.releaseWhileIdle(), "a queued or running job keeps the lock")
    XCTAssertThrowsError(try Library(at: root, host: host))
    gate.signal()
    _ = try library.wait(job: job.id)
    XCTAssertTrue(library.releaseWhileIdle())
    try library.resumeAfterIdle()
  }
}
