import TestSupport
import XCTest

@testable import LabKit

final class LibraryLocationTests: XCTestCase {
  func testTheLibraryFolderFollowsOptionThenEnvironmentThenXDG() {
    XCTAssertEqual(LibraryLocation.resolve(explicit: "/x", environment: ["VMLAB_LIBRARY": "/y"]), "/x")
    XCTAssertEqual(
      LibraryLocation.resolve(explicit: nil, environment: ["VMLAB_LIBRARY": "/y", "XDG_DATA_HOME": "/z"]), "/y")
    XCTAssertEqual(
      LibraryLocation.resolve(explicit: nil, environment: ["XDG_DATA_HOME": "/z", "HOME": "/h"]), "/z/vmlab")
    XCTAssertEqual(LibraryLocation.resolve(explicit: nil, environment: ["HOME": "/h"]), "/h/.local/share/vmlab")
  }

  /// The environment is read only when no folder is given (every command passes `--library` or
  /// not; building the environment's dictionary is not free).
  func testTheEnvironmentIsReadOnlyWithoutAFolder() {
    var reads = 0
    func environment() -> [String: String] {
      reads += 1
      return ["VMLAB_LIBRARY": "/y"]
    }
    XCTAssertEqual(LibraryLocation.resolve(explicit: "/x", environment: environment()), "/x")
    XCTAssertEqual(reads, 0)
    XCTAssertEqual(LibraryLocation.resolve(explicit: "", environment: environment()), "/y")
    XCTAssertEqual(reads, 1)
  }
}
