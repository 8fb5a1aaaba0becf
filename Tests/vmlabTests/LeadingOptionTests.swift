import Foundation
import TestSupport
import XCTest

/// `--library` and `--wait` before the command, as users of git and virsh write them.
final class LeadingOptionTests: XCTestCase {
  func testLibraryAndWaitBeforeTheCommand() throws {
    let folder = TemporaryFolder()
    let library = folder.file("lab library")
    var result = try vmlab(["--library", library, "vm", "create", "web01", "--disk", "1M"], in: folder.path)
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(FileManager.default.fileExists(atPath: library + "/vms/web01/web01-disk1.vhd"))
    result = try vmlab(["--library=" + library, "--wait", "vm", "list"], in: folder.path)
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(result.output.contains("web01"), result.output)
    // Scripts see the same library.
    result = try vmlab(["--library", library, "run", "-e", "print(vmlab.vms()[1].name)"], in: folder.path)
    XCTAssertEqual(result.output, "web01\n", result.error)
    // After the command it still works, and wins over the one before it.
    result = try vmlab(
      ["--library", folder.file("other"), "vm", "list", "--library", library], in: folder.path,
      environment: ["VMLAB_LIBRARY": folder.file("env")])
    XCTAssertTrue(result.output.contains("web01"), result.output)
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("other")))
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("env")))
  }

  func testALeadingLibraryWithoutAFolderIsAUsageError() throws {
    for arguments in [["--library"], ["--library", "--wait", "vm", "list"], ["--library=", "vm", "list"]] {
      let result = try vmlab(arguments)
      XCTAssertEqual(result.status, 2, "\(arguments): \(result.output) \(result.error)")
      XCTAssertTrue(result.error.contains("--library needs a folder"), result.error)
    }
  }
}
