import Foundation
import TestSupport
import XCTest

/// `Scripts/install` and the installed copy: it finds its bundled scripts beside itself, from any
/// folder, with no checkout in sight.
final class InstallTests: XCTestCase {
  private let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

  func testTheInstalledCopyRunsBundledScriptsFromAnotherFolder() throws {
    let folder = TemporaryFolder()
    let prefix = folder.file("prefix")
    var result = try runProgram(checkout + "/Scripts/install", ["--binary", try VMLabBinary.path, prefix])
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(FileManager.default.isExecutableFile(atPath: prefix + "/bin/vmlab"))
    XCTAssertTrue(FileManager.default.fileExists(atPath: prefix + "/share/vmlab/Stdlib/reset-lab.lua"))

    let elsewhere = folder.file("elsewhere")
    try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
    let environment = ["VMLAB_STDLIB": "", "VMLAB_LIBRARY": folder.file("library")]
    result = try runProgram(
      prefix + "/bin/vmlab", ["run", "build-lab.lua", "--vms", "2"], in: elsewhere, environment: environment)
    XCTAssertEqual(result.status, 0, result.output + result.error)
    result = try runProgram(prefix + "/bin/vmlab", ["run", "lab-status.lua"], in: elsewhere, environment: environment)
    XCTAssertEqual(result.status, 0, result.output + result.error)
    XCTAssertTrue(result.output.contains("classroom"), result.output)

    // The scripts it runs are the installed ones: without them it says where it looked.
    try FileManager.default.removeItem(atPath: prefix + "/share/vmlab/Stdlib")
    result = try runProgram(prefix + "/bin/vmlab", ["run", "lab-status.lua"], in: elsewhere, environment: environment)
    XCTAssertEqual(result.status, 1, result.output + result.error)
    XCTAssertTrue(result.error.contains("no Stdlib folder was found"), result.error)
  }

  func testInstallWithoutAPrefixIsAUsageError() throws {
    let result = try runProgram(checkout + "/Scripts/install", [])
    XCTAssertEqual(result.status, 2)
    XCTAssertTrue(result.error.contains("usage: Scripts/install"), result.error)
  }
}
