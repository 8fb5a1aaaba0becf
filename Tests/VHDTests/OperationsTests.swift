import Foundation
import TestSupport
import XCTest

@testable import VHD

final class OperationsTests: XCTestCase {
  private struct Stop: Error {}

  /// A 16 MiB base with content and a child with sector-granular and whole-block changes.
  private func makeChain(in folder: TemporaryFolder) throws -> (model: [UInt8], base: [UInt8]) {
    var random = SeededBytes(seed: 5)
    let size = 16 << 20
    var model = [UInt8](repeating: 0, count: size)
    try VirtualDisk.create(at: folder.file("base.vhd"), size: UInt64(size)).close()
    let base = try DiskChain.open(folder.file("base.vhd"), writable: true)
    for block in [0, 1, 3, 6] {
      let data = random.bytes(2 << 20)
      try base.write(data, at: UInt64(block) << 21)
      model.replaceSubrange((block << 21)..<((block + 1) << 21), with: data)
    }
    base.close()
    let baseContent = model
    try VirtualDisk.createDifferencing(at: folder.file("child.vhd"), parent: folder.file("base.vhd")).close()
    let child = try DiskChain.open(folder.file("child.vhd"), writable: true)
    for (offset, length) in [(100, 5000), (3 << 20, 2 << 20), ((6 << 20) + 512, 1024), ((15 << 20) + 7, 77)] {
      let data = random.bytes(length)
      try child.write(data, at: UInt64(offset))
      model.replaceSubrange(offset..<(offset + length), with: data)
    }
    child.close()
    return (model, baseContent)
  }

  func testMergeFoldsTheChildIntoItsParentWithoutChangingContent() throws {
    let folder = TemporaryFolder()
    let (model, _) = try makeChain(in: folder)
    let childBytes = try VirtualDisk.open(folder.file("child.vhd")).allocatedBytes()
    var reports: [(UInt64, UInt64)] = []
    let report = try DiskChain.merge(child: folder.file("child.vhd")) { reports.append(($0, $1)) }
    XCTAssertEqual(report.bytesMerged, childBytes)
    XCTAssertTrue(report.childRemoved)
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("child.vhd")))
    XCTAssertEqual(reports.last?.0, reports.last?.1, "progress reaches its total")
    let merged = try DiskChain.open(folder.file("base.vhd"))
    XCTAssertEqual(merged.depth, 1)
    XCTAssertEqual(try merged.read(at: 0, count: model.count), model)
    XCTAssertTrue(DiskCheck(path: folder.file("base.vhd")).isSound)
  }

  func testAnInterruptedMergeChangesNothingAndCanRunAgain() throws {
    for stopAfter in 1...4 {
      let folder = TemporaryFolder()
      let (model, _) = try makeChain(in: folder)
      var calls = 0
      XCTAssertThrowsError(
        try DiskChain.merge(child: folder.file("child.vhd")) { _, _ in
          calls += 1
          if calls > stopAfter { throw Stop() }
        })
      XCTAssertEqual(try DiskChain.open(folder.file("child.vhd")).read(at: 0, count: model.count), model)
      try DiskChain.merge(child: folder.file("child.vhd"))
      XCTAssertEqual(try DiskChain.open(folder.file("base.vhd")).read(at: 0, count: model.count), model)
    }
  }

  func testMergeIntoADifferencingParentKeepsTheGrandparent() throws {
    let folder = TemporaryFolder()
    let (model, baseContent) = try makeChain(in: folder)
    try FileManager.default.moveItem(atPath: folder.file("child.vhd"), toPath: folder.file("mid.vhd"))
    // The child's relative locator still names base.vhd; the renamed mid disk gets a child of its own.
    try VirtualDisk.createDifferencing(at: folder.file("top.vhd"), parent: folder.file("mid.vhd")).close()
    let top = try DiskChain.open(folder.file("top.vhd"), writable: true)
    try top.write([9, 9, 9], at: 10)
    top.close()
    var expected = model
    expected.replaceSubrange(10..<13, with: [9, 9, 9])
    try DiskChain.merge(child: folder.file("top.vhd"))
    XCTAssertEqual(try DiskChain.open(folder.file("mid.vhd")).read(at: 0, count: expected.count), expected)
    XCTAssertEqual(try DiskChain.open(folder.file("base.vhd")).read(at: 0, count: baseContent.count), baseContent)
  }

  func testMergeRefusesDisksThatAreNotDifferencing() throws {
    let folder = TemporaryFolder()
    try VirtualDisk.create(at: folder.file("a.vhd"), size: 1 << 20).close()
    assertVHDError(.invalidArgument, field: "footer.diskType") { try DiskChain.merge(child: folder.file("a.vhd")) }
  }

  func testSiblingsOfAMergeAreFound() throws {
    let folder = TemporaryFolder()
    _ = try makeChain(in: folder)
    try VirtualDisk.createDifferencing(at: folder.file("sibling.vhd"), parent: folder.file("base.vhd")).close()
    XCTAssertEqual(try DiskChain.otherChildren(ofParentOf: folder.file("child.vhd")), [folder.file("sibling.vhd")])
  }

  func testFlattenWritesAStandaloneDisk() throws {
    for type in [DiskType.dynamic, .fixed] {
      let folder = TemporaryFolder()
      let (model, _) = try makeChain(in: folder)
      let chain = try DiskChain.open(folder.file("child.vhd"))
      let flat = try chain.flatten(to: folder.file("flat.vhd"), type: type)
      XCTAssertEqual(flat.type, type)
      flat.close()
      let reopened = try DiskChain.open(folder.file("flat.vhd"))
      XCTAssertEqual(reopened.depth, 1)
      XCTAssertEqual(try reopened.read(at: 0, count: model.count), model)
      if type == .dynamic {
        XCTAssertEqual(reopened.leaf.table.allocatedCount, 6, "blocks that read as zeros stay unallocated")
      }
    }
  }

  func testRawImagesRoundTripAndStaySparse() throws {
    let folder = TemporaryFolder()
    var random = SeededBytes(seed: 9)
    var raw = [UInt8](repeating: 0, count: (20 << 20) + 1000)
    raw.replaceSubrange((4 << 20)..<(5 << 20), with: random.bytes(1 << 20))
    raw.replaceSubrange((raw.count - 3000)..<raw.count, with: random.bytes(3000))
    let rawPath = folder.file("disk.raw")
    XCTAssertTrue(FileManager.default.createFile(atPath: rawPath, contents: Data(raw)))

    for type in [DiskType.dynamic, .fixed] {
      let vhdPath = folder.file("imported-\(type).vhd")
      let disk = try RawImage.importImage(from: rawPath, to: vhdPath, type: type)
      XCTAssertEqual(
        disk.size, DiskGeometry.rounding(size: UInt64((raw.count + 511) / 512 * 512)).size,
        "rounded up to a whole sector, then to a whole CHS geometry")
      if type == .dynamic {
        XCTAssertEqual(
          disk.table.allocatedCount, 3, "only blocks 2, 9 and 10 hold data; zero regions are not allocated")
      }
      disk.close()
      let chain = try DiskChain.open(vhdPath)
      XCTAssertEqual(try chain.read(at: 0, count: raw.count), raw)
      let exported = folder.file("exported-\(type).raw")
      try RawImage.exportImage(chain, to: exported)
      let back = [UInt8](try Data(contentsOf: URL(fileURLWithPath: exported)))
      XCTAssertEqual(Array(back.prefix(raw.count)), raw)
      XCTAssertTrue(back[raw.count...].allSatisfy { $0 == 0 })
      assertVHDError(.invalidArgument, field: "file") { try RawImage.exportImage(chain, to: exported) }
      XCTAssertNoThrow(try RawImage.exportImage(chain, to: exported, overwrite: true))
    }
    XCTAssertTrue(FileManager.default.createFile(atPath: folder.file("empty.raw"), contents: Data()))
    assertVHDError(.invalidArgument) {
      try RawImage.importImage(from: folder.file("empty.raw"), to: folder.file("e.vhd"))
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("e.vhd")))
  }

  func testExportOfMixedBlocksCopiesEachRunFromItsLayer() throws {
    // Four layers over a dynamic or fixed base, each writing sector runs of its own inside shared
    // blocks: the export copies every run from the layer that holds it, the rest stays zeros.
    for baseType in [DiskType.dynamic, .fixed] {
      let folder = TemporaryFolder()
      var random = SeededBytes(seed: 61)
      let base = try VirtualDisk.create(at: folder.file("l0.vhd"), size: 12 << 20, type: baseType)
      let size = Int(base.size)
      base.close()
      var model = [UInt8](repeating: 0, count: size)
      for layer in 0..<5 {
        let path = folder.file("l\(layer).vhd")
        if layer > 0 { try VirtualDisk.createDifferencing(at: path, parent: folder.file("l\(layer - 1).vhd")).close() }
        let chain = try DiskChain.open(path, writable: true)
        for _ in 0..<25 {
          let length = random.int(1..<70_000)
          let offset = random.int(0..<(size - length))
          let data = random.bytes(length)
          try chain.write(data, at: UInt64(offset))
          model.replaceSubrange(offset..<(offset + length), with: data)
        }
        chain.close()
      }
      let chain = try DiskChain.open(folder.file("l4.vhd"))
      XCTAssertTrue(
        try (0..<chain.blockCount).contains { try chain.source(ofBlock: $0) == .mixed }, "the chain has mixed blocks")
      try RawImage.exportImage(chain, to: folder.file("out.raw"))
      let exported = [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder.file("out.raw"))))
      XCTAssertTrue(exported == model, "\(baseType) base: the export reads as the chain was written")
      XCTAssertTrue(try chain.read(at: 0, count: size) == model, "\(baseType) base: and so does a read")
    }
  }

  func testImportWritesOnlyThePagesThatHoldData() throws {
    // 48 MiB with about 15 % of its 4 KiB pages holding data, spread over every block but three.
    let folder = TemporaryFolder()
    let size = 48 << 20
    let image = scatteredImage(size: size, share: 0.15, zeroBlocks: [3, 10, 11], seed: 12)
    let rawPath = folder.file("scattered.raw")
    XCTAssertTrue(FileManager.default.createFile(atPath: rawPath, contents: Data(image.bytes)))
    let dataBytes = UInt64(image.dataPages) * 4096

    for type in [DiskType.dynamic, .fixed] {
      let vhdPath = folder.file("scattered-\(type).vhd")
      let disk = try RawImage.importImage(from: rawPath, to: vhdPath, type: type)
      XCTAssertEqual(disk.size, DiskGeometry.rounding(size: UInt64(size)).size)
      if type == .dynamic {
        XCTAssertEqual(disk.table.allocatedCount, 24 - 3, "blocks of zeros are not allocated")
      }
      disk.close()
      // The data pages, plus a page per block for its bitmap and a few for the metadata; the
      // whole-block import this replaced took 48 MiB here.
      let space = try spaceOnDisk(vhdPath)
      XCTAssertLessThanOrEqual(space, dataBytes + 4096 * (24 + 4) + (64 << 10), "\(type): \(space) bytes on disk")
      XCTAssertGreaterThanOrEqual(space, dataBytes, "\(type): every data page is written")

      let exported = folder.file("back-\(type).raw")
      try RawImage.exportImage(try DiskChain.open(vhdPath), to: exported)
      let back = [UInt8](try Data(contentsOf: URL(fileURLWithPath: exported)))
      XCTAssertEqual(back.count, Int(DiskGeometry.rounding(size: UInt64(size)).size))
      XCTAssertTrue(Array(back.prefix(size)) == image.bytes, "\(type): the export reads back the raw bytes")
      XCTAssertTrue(back[size...].allSatisfy { $0 == 0 }, "\(type): the rounded-up tail reads as zeros")
    }
  }

  func testImportOfAWholeGeometrySizedImageExportsTheSameFile() throws {
    // 104,448 bytes is a whole CHS geometry (3/4/17): no rounding, the export is the same file.
    let folder = TemporaryFolder()
    var image = scatteredImage(size: 104_448, share: 0.3, seed: 5).bytes
    image[104_447] = 1
    XCTAssertTrue(FileManager.default.createFile(atPath: folder.file("small.raw"), contents: Data(image)))
    let disk = try RawImage.importImage(from: folder.file("small.raw"), to: folder.file("small.vhd"))
    XCTAssertEqual(disk.size, 104_448)
    disk.close()
    try RawImage.exportImage(try DiskChain.open(folder.file("small.vhd")), to: folder.file("back.raw"))
    XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: folder.file("back.raw")))), image)
  }

  func testInfoDescribesTheChain() throws {
    let folder = TemporaryFolder()
    _ = try makeChain(in: folder)
    let chain = try DiskChain.open(folder.file("child.vhd"))
    let info = try DiskInfo(chain: chain)
    XCTAssertEqual(info.type, .differencing)
    XCTAssertEqual(info.virtualSize, 16_781_312, "16 MiB rounded up to 482/4/17")
    XCTAssertEqual(info.geometrySize, info.virtualSize)
    XCTAssertEqual(info.chain.map(\.path), [folder.file("child.vhd"), folder.file("base.vhd")])
    XCTAssertEqual(info.chain[1].allocatedBytes, 8 << 20)
    let json = try JSONEncoder().encode(info)
    let decoded = try JSONDecoder().decode(DiskInfo.self, from: json)
    XCTAssertEqual(decoded, info)
    XCTAssertTrue(String(decoding: json, as: UTF8.self).contains("\"differencing\""))
  }
}
