import Foundation
import TestSupport
import VHD
import XCTest

@testable import LabKit

/// Export and import in the engine: what the command line tests do not reach (a linked clone's
/// template, a saved VM), the disk order of folders from elsewhere, and the bounds of a read.
final class ExportImportEngineTests: LabKitTestCase {
  func testALinkedCloneExportsWithItsTemplateAndImportsStandingAlone() throws {
    let golden = folder.path + "/golden.vhd"
    try VirtualDisk.create(at: golden, size: 4 * MiB).close()
    let chain = try DiskChain.open(golden, writable: true)
    try chain.write(pattern(1, 8192), at: 0)
    chain.close()
    try library.createVM(name: "clone", from: golden, linked: true, additions: true)
    try library.write("clone", disk: 1, at: 4096, pattern(2, 1000))
    try library.save(vm: "clone")
    let expected = try library.contents("clone", disk: 1, size: 4 * MiB)

    let exported = folder.path + "/export"
    let files = try library.exportVM("clone", to: exported, flatten: false)
    XCTAssertEqual(
      Set(files.map { ($0 as NSString).lastPathComponent }), ["golden.vhd", "clone-disk1.vhd", "saved.vsv", "vm.json"])
    try library.importVM(name: "copy", from: exported)
    let copy = try library.vm(named: "copy")
    XCTAssertEqual(copy.state, .saved, "a saved VM comes back saved")
    XCTAssertEqual(copy.disks[0].chain.map { ($0 as NSString).lastPathComponent }, ["clone-disk1.vhd", "golden.vhd"])
    XCTAssertTrue(copy.disks[0].chain.allSatisfy { $0.hasPrefix(root + "/vms/copy/") }, "\(copy.disks[0].chain)")
    assertEqualBytes(
      try library.contents("copy", disk: 1, size: 4 * MiB), expected, "the copy reads what the clone did")
    try library.start(vm: "copy")
    XCTAssertEqual(try library.check(), [])
    // The template stays the clone's: the copy's disk does not read it.
    try library.turnOff(vm: "clone")
    try library.removeVM(named: "clone")
    assertEqualBytes(try library.contents("copy", disk: 1, size: 4 * MiB), expected, "the copy stands alone")
    XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/templates/golden.vhd"))
  }

  func testNumberedNamesSortAsNumbers() {
    let names = ["d-disk10.vhd", "d-disk2.vhd", "d-disk1.vhd", "d-disk11.vhd", "d-disk02x.vhd", "a.vhd"]
    XCTAssertEqual(
      names.sorted(by: naturalOrder),
      ["a.vhd", "d-disk1.vhd", "d-disk2.vhd", "d-disk02x.vhd", "d-disk10.vhd", "d-disk11.vhd"])
    XCTAssertFalse(naturalOrder("x", "x"))
    XCTAssertTrue(naturalOrder("x", "x1"))
  }

  func testReadsStayInsideTheDiskAndUnderTheLimit() throws {
    try library.createVM(name: "web", diskSizes: [4 * MiB, 128 * MiB])
    // 4 MiB rounds up to a whole CHS geometry: 4,212,736 bytes.
    for (disk, offset, count, message) in [
      (1, UInt64(0), Int(1) << 40, "the disk is 4212736 bytes"), (1, UInt64(4_212_736), 1, "read within it"),
      (1, UInt64.max, 1, "read within it"), (1, 0, -1, "negative"), (2, 0, 100 << 20, "the limit is 67108864 bytes"),
      (3, 0, 1, "has no disk 3"),
    ] {
      XCTAssertThrowsError(try library.diskRead(vm: "web", disk: disk, offset: offset, count: count)) { error in
        XCTAssertTrue("\(error)".contains(message), "\(error)")
      }
    }
    XCTAssertEqual(try library.diskRead(vm: "web", disk: 2, offset: 128 * MiB - 10, count: 10).count, 10)
  }
}
