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
}
