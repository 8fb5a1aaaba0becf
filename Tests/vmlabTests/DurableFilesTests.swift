import Foundation
import TestSupport
import XCTest

/// The files an operation makes reach the disk before the commit that makes the catalog name
/// them: after a power cut the catalog never names a disk whose contents were lost. Watched with
/// strace, which shows each sync with the file it syncs.
final class DurableFilesTests: LibraryCommandTestCase {
  func testACheckpointsNewDisksAreSyncedBeforeItsCommit() throws {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/strace") else {
      throw XCTSkip("strace is not installed (Scripts/bootstrap installs it)")
    }
    try run(["vm", "create", "web01", "--disk", "8M", "--disk", "8M"])
    let trace = folder.file("sync.trace")
    let result = try runProgram(
      "/usr/bin/strace",
      ["-f", "-y", "-e", "trace=fsync,fdatasync", "-o", trace, try VMLabBinary.path]
        + ["checkpoint", "new", "web01", "clean"] + library, in: folder.path)
    XCTAssertEqual(result.status, 0, result.error)
    let syncs = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").map(String.init)
    let leaves = try XCTUnwrap(
      parseJSON(try run(["vm", "show", "web01", "--json"]).output)["disks"] as? [[String: Any]]
    )
    .compactMap { $0["path"] as? String }
    XCTAssertEqual(leaves.count, 2)
    let commit = try XCTUnwrap(syncs.lastIndex { $0.contains("catalog.sqlite-wal>") }, syncs.joined(separator: "\n"))
    for leaf in leaves {
      let synced = try XCTUnwrap(
        syncs.firstIndex { $0.contains("fsync(") && $0.contains("<\(leaf)>") }, "\(leaf) never synced: \(syncs)")
      XCTAssertLessThan(synced, commit, "\(leaf) synced after the commit: \(syncs)")
    }
    let folderSynced = syncs.firstIndex { $0.contains("<\(folder.file("library/vms/web01"))>") }
    XCTAssertLessThan(try XCTUnwrap(folderSynced, "the VM folder's entries never synced"), commit)
  }
}
