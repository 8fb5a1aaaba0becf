import Foundation
import TestSupport
import XCTest

@testable import LabKit

/// The system-call wrappers under the library lock and the manifests: failures name the file.
final class SystemFileTests: XCTestCase {
  func testTheLockNamesItsFileWhenItCannotBeOpened() {
    let folder = TemporaryFolder()
    let missing = folder.file("no-such-folder")
    XCTAssertThrowsError(try LibraryLock(folder: missing, wait: false)) { error in
      let message = "\(error)"
      XCTAssertTrue(message.contains("cannot open the library lock \(missing)/library.lock"), message)
      XCTAssertTrue(message.contains("No such file or directory"), message)
    }
  }

  func testASecondLockIsRefusedWithTheHoldersPidAndTheFirstReleases() throws {
    let folder = TemporaryFolder()
    let first = try LibraryLock(folder: folder.path, wait: false)
    XCTAssertEqual(
      try String(contentsOfFile: folder.file("library.lock"), encoding: .utf8),
      "pid \(ProcessInfo.processInfo.processIdentifier)\n")
    // flock locks belong to an open file, so a second open in this process is refused like another
    // process would be.
    XCTAssertThrowsError(try LibraryLock(folder: folder.path, wait: false)) { error in
      XCTAssertEqual((error as? LabKitError)?.kind, .busy)
      XCTAssertTrue("\(error)".contains("(pid \(ProcessInfo.processInfo.processIdentifier))"), "\(error)")
    }
    first.release()
    first.release()
    XCTAssertNoThrow(try LibraryLock(folder: folder.path, wait: false).release())
  }

  func testAManifestWriteIntoAMissingFolderNamesTheFileAndLeavesNothing() throws {
    let folder = TemporaryFolder()
    let library = try Library(at: folder.file("library"), host: SimulatedHost())
    defer { try? library.close() }
    let target = folder.file("gone/vm.json")
    XCTAssertThrowsError(try library.replaceFile(target, with: Data("{}".utf8))) { error in
      XCTAssertTrue(
        "\(error)".contains("cannot open the manifest's temporary file \(folder.path)/gone/.vm.json"), "\(error)")
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("gone")))
    // And one that works replaces the file whole, leaving no temporary file.
    try library.replaceFile(folder.file("m.json"), with: Data("one".utf8))
    try library.replaceFile(folder.file("m.json"), with: Data("two".utf8))
    XCTAssertEqual(try String(contentsOfFile: folder.file("m.json"), encoding: .utf8), "two")
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted(), ["library", "m.json"])
  }
}
