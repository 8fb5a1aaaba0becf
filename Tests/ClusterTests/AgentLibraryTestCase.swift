import LabKit
import TestSupport
import XCTest

@testable import Cluster

/// A test of what an agent does with steps on its own library: a fresh library on the simulated
/// host for each test, closed at the end.
class AgentLibraryTestCase: XCTestCase {
  var folder: TemporaryFolder!
  var library: Library!

  override func setUpWithError() throws {
    folder = TemporaryFolder()
    library = try openLibrary()
  }

  override func tearDownWithError() throws {
    try library?.close()
  }

  /// The test's library, opened (again, after a close).
  func openLibrary() throws -> Library {
    let hosts = HostRegistry()
    hosts.register(SimulatedHost(), as: "simulated")
    return try Library(at: folder.file("library"), hosts: hosts)
  }

  /// A step of `kind` as the database hands it to the agent that claimed it.
  func claimed(_ kind: String, _ arguments: String, attempt: Int = 1) -> ClaimedStep {
    ClaimedStep(id: 1, jobID: 1, kind: kind, arguments: arguments, fence: 1, attempt: attempt, maxAttempts: 3)
  }
}
