import Foundation
import TestSupport
import XCTest

@testable import VHD

final class DiskTests: XCTestCase {
  func testCreatedDisksReopenWithTheirLayout() throws {
    let folder = TemporaryFolder()
    let dynamic = try VirtualDisk.create(at: folder.file("d.vhd"), size: 64 << 20)
    XCTAssertEqual(dynamic.fileSize, 512 + 1024 + 512 + 512, "footer copy, header, one-sector table, footer")
    dynamic.close()
    // 8 MiB is no whole CHS geometry: the disk is rounded up to 241/4/17, as qemu-img does.
    let fixed = try VirtualDisk.create(at: folder.file("f.vhd"), size: 8 << 20, type: .fixed)
    XCTAssertEqual(fixed.size, 8_390_656)
    XCTAssertEqual(fixed.footer.geometry, DiskGeometry(cylinders: 241, heads: 4, sectorsPerTrack: 17))
    XCTAssertEqual(fixed.fileSize, 8_390_656 + 512)
    fixed.close()

    let reopened = try VirtualDisk.open(folder.file("d.vhd"))
    XCTAssertEqual(reopened.type, .dynamic)
    XCTAssertEqual(reopened.size, 67_125_248, "64 MiB rounded up to 964/8/17")
    XCTAssertEqual(reopened.blockSize, 2 << 20)
    XCTAssertEqual(reopened.blockCount, 33, "the last block reaches past the end")
    XCTAssertEqual(reopened.footer.creatorApplication, "vmlb")
    XCTAssertEqual(reopened.footer.geometry, DiskGeometry(cylinders: 964, heads: 8, sectorsPerTrack: 17))
    XCTAssertEqual(reopened.footer.originalSize, reopened.size)
    XCTAssertEqual(try VirtualDisk.open(folder.file("f.vhd")).type, .fixed)
  }

  func testCreationRefusesBadArgumentsAndExistingFiles() throws {
    let folder = TemporaryFolder()
    assertVHDError(.invalidArgument, field: "size") { try VirtualDisk.create(at: folder.file("a.vhd"), size: 1000) }
    assertVHDError(.invalidArgument, field: "size") { try VirtualDisk.create(at: folder.file("a.vhd"), size: 0) }
    assertVHDError(.invalidArgument, field: "size") {
      try VirtualDisk.create(at: folder.file("a.vhd"), size: Footer.maximumDiskSize + 512)
    }
    assertVHDError(.invalidArgument, field: "blockSize") {
      try VirtualDisk.create(at: folder.file("a.vhd"), size: 1 << 20, blockSize: 3000)
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("a.vhd")), "nothing left behind")
    try VirtualDisk.create(at: folder.file("a.vhd"), size: 1 << 20).close()
    let before = try Data(contentsOf: URL(fileURLWithPath: folder.file("a.vhd")))
    assertVHDError(.invalidArgument, field: "file") { try VirtualDisk.create(at: folder.file("a.vhd"), size: 2 << 20) }
    XCTAssertEqual(
      try Data(contentsOf: URL(fileURLWithPath: folder.file("a.vhd"))), before, "an existing file is never overwritten")
  }

  func testUnalignedWritesSpanningBlocksReadBack() throws {
    for type in [DiskType.dynamic, .fixed] {
      let folder = TemporaryFolder()
      let path = folder.file("disk.vhd")
      try VirtualDisk.create(at: path, size: 16 << 20, type: type, blockSize: 1 << 20).close()
      var random = SeededBytes(seed: 7)
      var model = [UInt8](repeating: 0, count: 16 << 20)
      let chain = try DiskChain.open(path, writable: true)
      for _ in 0..<40 {
        let length = random.int(1..<(3 << 20))
        let offset = random.int(0..<(model.count - length))
        let data = random.bytes(length)
        try chain.write(data, at: UInt64(offset))
        model.replaceSubrange(offset..<(offset + length), with: data)
      }
      XCTAssertEqual(try chain.read(at: 0, count: model.count), model, "\(type) reads back what was written")
      XCTAssertEqual(try chain.read(at: 1_048_575, count: 3), Array(model[1_048_575..<1_048_578]))
      chain.close()
      let reopened = try DiskChain.open(path)
      XCTAssertEqual(try reopened.read(at: 0, count: model.count), model, "\(type) after reopening")
      XCTAssertTrue(DiskCheck(path: path).isSound, "\(DiskCheck(path: path).problems)")
    }
  }

  func testReadsAndWritesOutsideTheDiskAreRefused() throws {
    let folder = TemporaryFolder()
    let path = folder.file("disk.vhd")
    try VirtualDisk.create(at: path, size: 1 << 20).close()
    let chain = try DiskChain.open(path, writable: true)
    let size = chain.size
    XCTAssertEqual(size, DiskGeometry.rounding(size: 1 << 20).size)
    assertVHDError(.invalidArgument, field: "offset") { _ = try chain.read(at: size - 10, count: 11) }
    assertVHDError(.invalidArgument, field: "offset") { try chain.write([1], at: size) }
    assertVHDError(.invalidArgument, field: "offset") { _ = try chain.read(at: UInt64.max - 2, count: 5) }
    XCTAssertEqual(try chain.read(at: size, count: 0), [])
    XCTAssertNoThrow(try chain.write([9], at: size - 1), "the rounded-up tail is part of the disk")
    let readOnly = try DiskChain.open(path)
    assertVHDError(.readOnly) { try readOnly.write([1], at: 0) }
  }

  func testDynamicDisksStaySparse() throws {
    let folder = TemporaryFolder()
    let path = folder.file("big.vhd")
    try VirtualDisk.create(at: path, size: 100 << 30).close()
    let chain = try DiskChain.open(path, writable: true)
    var random = SeededBytes(seed: 1)
    let chunk = random.bytes(1 << 20)
    for index in 0..<10 {
      try chain.write(chunk, at: UInt64(index) * (7 << 30))
    }
    try chain.write([UInt8](repeating: 0, count: 4 << 20), at: 50 << 30)
    chain.close()
    let disk = try VirtualDisk.open(path)
    XCTAssertEqual(disk.table.allocatedCount, 10, "writing zeros allocates nothing")
    XCTAssertLessThan(disk.spaceOnDisk, 12 << 20, "a 100 GiB disk with 10 MiB written takes about 10 MiB")
    XCTAssertEqual(disk.size, 107_374_632_960, "100 GiB rounded up to 51401/16/255")
  }

  func testBlockDataIsAlignedAndTheFileEndsInAFooter() throws {
    let folder = TemporaryFolder()
    let path = folder.file("disk.vhd")
    try VirtualDisk.create(at: path, size: 64 << 20).close()
    let chain = try DiskChain.open(path, writable: true)
    try chain.write([1, 2, 3], at: 5 << 20)
    try chain.write([4], at: 0)
    chain.close()
    let disk = try VirtualDisk.open(path)
    for block in [0, 2] {
      XCTAssertEqual((UInt64(disk.table[block]) * 512 + 512) % 4096, 0, "block \(block)'s data starts on 4 KiB")
    }
    let footer = try Footer(decoding: try disk.file.read(at: disk.fileSize - 512, count: 512, field: "footer"))
    XCTAssertEqual(footer.uniqueID, disk.uniqueID)
  }

  func testDisksMadeBeforeRoundingKeepTheirSizeAndSoDoTheirChildren() throws {
    // A 4 MiB disk as vmlab wrote it before rounding: its CHS covers 4,177,920 bytes only.
    let folder = TemporaryFolder()
    try VirtualDisk.create(at: folder.file("old.vhd"), size: 4 << 20, exactSize: true).close()
    let old = try VirtualDisk.open(folder.file("old.vhd"))
    XCTAssertEqual(old.size, 4 << 20, "opens at its footer's current size")
    XCTAssertEqual(old.footer.geometry.capacity, 4_177_920)
    old.close()
    try VirtualDisk.createDifferencing(at: folder.file("child.vhd"), parent: folder.file("old.vhd")).close()
    let chain = try DiskChain.open(folder.file("child.vhd"), writable: true)
    XCTAssertEqual(chain.size, 4 << 20, "a child takes its parent's size, not a rounded one")
    XCTAssertEqual(chain.leaf.footer.geometry, DiskGeometry(cylinders: 120, heads: 4, sectorsPerTrack: 17))
    try chain.write([7, 7], at: (4 << 20) - 2)
    XCTAssertEqual(try chain.read(at: (4 << 20) - 2, count: 2), [7, 7])
    chain.close()
  }

  func testSystemCallFailuresNameTheFileAndTheCall() throws {
    let folder = TemporaryFolder()
    let missing = folder.file("missing.vhd")
    do {
      _ = try VirtualDisk.open(missing)
      XCTFail("opened a missing file")
    } catch let error as VHDError {
      XCTAssertEqual(error.problem, .io)
      XCTAssertTrue(error.description.contains(missing), error.description)
      XCTAssertTrue(error.description.contains("cannot open: No such file or directory"), error.description)
    }
    let nowhere = folder.file("no-folder/new.vhd")
    do {
      _ = try VirtualDisk.create(at: nowhere, size: 1 << 20)
      XCTFail("created a file in a missing folder")
    } catch let error as VHDError {
      XCTAssertEqual(error.problem, .io)
      XCTAssertTrue(error.description.contains(nowhere), error.description)
      XCTAssertTrue(error.description.contains("cannot create: No such file or directory"), error.description)
    }
    // A folder is refused by kind, before any read.
    try FileManager.default.createDirectory(atPath: folder.file("dir.vhd"), withIntermediateDirectories: false)
    assertVHDError(.invalidArgument, field: "file") { _ = try VirtualDisk.open(folder.file("dir.vhd")) }
  }

  func testSavedStateDisksOpenReadOnly() throws {
    let folder = TemporaryFolder()
    let path = folder.file("saved.vhd")
    try VirtualDisk.create(at: path, size: 1 << 20, type: .fixed).close()
    var footer = try VirtualDisk.open(path).footer
    footer.savedState = true
    let handle = FileHandle(forWritingAtPath: path)!
    handle.seek(toFileOffset: DiskGeometry.rounding(size: 1 << 20).size)
    handle.write(Data(footer.encoded()))
    try handle.close()
    XCTAssertNoThrow(try VirtualDisk.open(path))
    assertVHDError(.readOnly, field: "footer.savedState") { _ = try VirtualDisk.open(path, writable: true) }
  }
}
