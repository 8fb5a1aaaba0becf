import Foundation
import XCTest

/// A folder under the system's temporary directory, removed when the test that made it ends.
///
/// XCTest keeps every test case object, and so the folders its properties hold, until the whole
/// run ends: a run of the suite left some 250 libraries of real guests (67 GB) behind. So a folder
/// is removed when the test case that made it finishes, whoever still holds it; one made for a
/// whole class (in `class func setUp`) says `lastsForTheRun` and goes when its object does.
public final class TemporaryFolder {
  public let path: String

  public init(prefix: String = "vmlab-tests-", lastsForTheRun: Bool = false) {
    path = NSTemporaryDirectory() + prefix + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    if !lastsForTheRun { TemporaryFolderSweeper.shared.remember(path) }
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }

  public func file(_ name: String) -> String { path + "/" + name }
}

/// Removes the test's folders when each test case finishes.
private final class TemporaryFolderSweeper: NSObject, XCTestObservation, @unchecked Sendable {
  static let shared: TemporaryFolderSweeper = {
    let sweeper = TemporaryFolderSweeper()
    XCTestObservationCenter.shared.addTestObserver(sweeper)
    return sweeper
  }()

  private let lock = NSLock()
  private var made: [String] = []

  func remember(_ path: String) { lock.withLock { made.append(path) } }

  func testCaseDidFinish(_ testCase: XCTestCase) {
    let paths = lock.withLock {
      defer { made = [] }
      return made
    }
    for path in paths { try? FileManager.default.removeItem(atPath: path) }
  }
}
