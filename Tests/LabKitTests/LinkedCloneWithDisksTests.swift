import Foundation
import TestSupport
import VHD
import XCTest

@testable import LabKit

/// A linked clone with more disks after it, as `vm create --image` makes one: disk 1 reads
/// through a named template, disks 2… are new and empty; repair rebuilds all of it from the files.
final class LinkedCloneWithDisksTests: LabKitTestCase {
  func testTheCloneGetsItsExtraDisksAndTheNamedTemplateIsShared() throws {
    let source = try Library(at: folder.path + "/source", host: host)
    try source.createVM(name: "golden", diskSizes: [8 * MiB])
    try source.write("golden", disk: 1, at: 0, pattern(9, 70_000))
    let goldenPath = try source.vm(named: "golden").disks[0].path
    let golden = try source.contents("golden", disk: 1, size: DiskGeometry.rounding(size: 8 * MiB).size)
    let kernel = folder.path + "/vmlinuz"
    FileManager.default.createFile(atPath: kernel, contents: Data("kernel".utf8))
    let hardware = Hardware(memory: 256 * MiB, boot: .kernel(path: kernel, initrd: nil, commandLine: "console=ttyS0"))

    let vm = try library.createVM(
      name: "web01", from: goldenPath, linked: true, extraDiskSizes: [4 * MiB, 2 * MiB], templateName: "tiny-root",
      additions: true, hardware: hardware)
    XCTAssertEqual(vm.disks.map(\.slot), [1, 2, 3])
    XCTAssertEqual(vm.disks[0].chain, [root + "/vms/web01/web01-disk1.vhd", root + "/templates/tiny-root.vhd"])
    XCTAssertEqual(vm.disks[1].chain, [root + "/vms/web01/web01-disk2.vhd"])
    XCTAssertEqual(vm.disks[2].path, root + "/vms/web01/web01-disk3.vhd")
    XCTAssertEqual(vm.hardware, hardware)
    XCTAssertTrue(same(try library.contents("web01", disk: 1, size: UInt64(golden.count)), golden))
    let disk2Size = DiskGeometry.rounding(size: 4 * MiB).size
    XCTAssertEqual(
      try library.contents("web01", disk: 2, size: disk2Size), [UInt8](repeating: 0, count: Int(disk2Size)))

    // A second VM from the same source shares the template; it has no extra disks.
    let second = try library.createVM(name: "web02", from: goldenPath, linked: true, templateName: "tiny-root")
    XCTAssertEqual(second.disks.count, 1)
    XCTAssertEqual(filesUnder(root + "/templates"), ["tiny-root.vhd"])
    try library.write("web01", disk: 2, at: 0, pattern(3, 5000))
    try library.checkpoint(vm: "web01", name: "clean")
    try assertConsistent()

    // The catalog rebuilt from the files alone knows the same disks.
    try library.close()
    library = nil
    try FileManager.default.removeItem(atPath: root + "/catalog.sqlite")
    let report = try Library.repair(at: root, host: host)
    XCTAssertEqual(report.problems, [])
    library = try Library(at: root, host: host)
    XCTAssertEqual(try library.vm(named: "web01").disks.map { $0.chain.count }, [3, 2, 2])
    XCTAssertEqual(try library.vm(named: "web01").disks[0].chain.last, root + "/templates/tiny-root.vhd")
    XCTAssertEqual(Array(try library.contents("web01", disk: 2, size: disk2Size).prefix(5000)), pattern(3, 5000))
    try assertConsistent()
  }

  func testABadExtraDiskSizeMakesNothing() throws {
    let source = try Library(at: folder.path + "/source", host: host)
    try source.createVM(name: "golden", diskSizes: [4 * MiB])
    let goldenPath = try source.vm(named: "golden").disks[0].path
    XCTAssertThrowsError(try library.createVM(name: "web01", from: goldenPath, linked: true, extraDiskSizes: [0])) {
      XCTAssertTrue("\($0)".contains("web01-disk2.vhd: size: a disk size must be a positive multiple"), "\($0)")
    }
    XCTAssertEqual(try library.vms(), [])
    XCTAssertEqual(filesUnder(root + "/vms"), [])
    XCTAssertEqual(filesUnder(root + "/templates"), [])
    try assertConsistent()
  }
}
