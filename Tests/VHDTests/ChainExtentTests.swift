import Foundation
import TestSupport
import XCTest

@testable import VHD

/// A chain mapped to extents (what a server reads in parallel and reports as allocation), zeroing
/// through the chain, and discarding the leaf's space.
final class ChainExtentTests: XCTestCase {
  /// base.vhd (8 MiB, dynamic): random data in blocks 0 and 1, blocks 2-3 unallocated.
  /// child.vhd over it: sectors 8-15 of block 0 and 4 KiB at 5 MiB (block 2) written.
  private func makeChain(in folder: TemporaryFolder) throws -> (chain: DiskChain, model: [UInt8]) {
    var random = SeededBytes(seed: 8)
    try VirtualDisk.create(at: folder.file("base.vhd"), size: 8 << 20).close()
    let base = try DiskChain.open(folder.file("base.vhd"), writable: true)
    // The size is 8 MiB rounded up to a whole CHS geometry.
    var model = [UInt8](repeating: 0, count: Int(base.size))
    model.replaceSubrange(0..<(4 << 20), with: random.bytes(4 << 20))
    try base.write(Array(model[0..<(4 << 20)]), at: 0)
    base.close()
    try VirtualDisk.createDifferencing(at: folder.file("child.vhd"), parent: folder.file("base.vhd")).close()
    let chain = try DiskChain.open(folder.file("child.vhd"), writable: true)
    for (offset, count) in [(4096, 4096), (5 << 20, 4096)] {
      let bytes = random.bytes(count)
      try chain.write(bytes, at: UInt64(offset))
      model.replaceSubrange(offset..<(offset + count), with: bytes)
    }
    return (chain, model)
  }

  func testExtentsNameTheLayerOfEveryRunAndReadBackTheChain() throws {
    let folder = TemporaryFolder()
    let (chain, model) = try makeChain(in: folder)
    defer { chain.close() }
    let extents = try chain.extents(at: 0, count: chain.size)
    let layers = extents.map { extent -> Int in
      if case .data(let layer, _) = extent.source { return layer }
      return -1
    }
    XCTAssertEqual(layers, [1, 0, 1, 1, -1, 0, -1])
    XCTAssertEqual(
      extents.map(\.length), [4096, 4096, (2 << 20) - 8192, 2 << 20, 1 << 20, 4096, chain.size - (5 << 20) - 4096],
      "zeros merge across blocks; data merges only where the file offsets continue (a bitmap lies between blocks)")
    var read = [UInt8](repeating: 0xEE, count: model.count)
    try read.withUnsafeMutableBytes { buffer in
      for extent in extents {
        try chain.read(
          extent, into: UnsafeMutableRawBufferPointer(rebasing: buffer[Int(extent.offset)..<Int(extent.end)]))
      }
    }
    XCTAssertEqual(read, model)

    XCTAssertEqual(try chain.extents(at: 0, count: chain.size, limit: 2).count, 2)
    XCTAssertEqual(try chain.extents(at: 4000, count: 200).map(\.length), [96, 104], "unaligned ranges")
    XCTAssertThrowsError(try chain.extents(at: chain.size, count: 1)) {
      XCTAssertEqual(($0 as? VHDError)?.problem, .invalidArgument)
    }
  }

  func testWriteZeroesWritesOnlyWhereALayerHoldsData() throws {
    let folder = TemporaryFolder()
    let chain: DiskChain
    var model: [UInt8]
    (chain, model) = try makeChain(in: folder)
    defer { chain.close() }  // closing twice is harmless
    XCTAssertTrue(try chain.isUnallocated(at: 6 << 20, count: 2 << 20))
    XCTAssertTrue(try chain.isUnallocated(at: 8 << 20, count: chain.size - (8 << 20)), "the CHS tail")
    XCTAssertFalse(try chain.isUnallocated(at: (5 << 20) - 512, count: 1024))
    let fileSize = chain.leaf.fileSize
    XCTAssertEqual(try chain.writeZeroes(at: 6 << 20, count: 2 << 20), 0)
    XCTAssertEqual(chain.leaf.fileSize, fileSize, "zeroing what reads as zeros allocates nothing")

    // Over the parent's data: the child must mask it with zeros.
    XCTAssertEqual(try chain.writeZeroes(at: 1 << 20, count: 1 << 20), 1 << 20)
    model.replaceSubrange((1 << 20)..<(2 << 20), with: [UInt8](repeating: 0, count: 1 << 20))
    XCTAssertEqual(try chain.read(at: 0, count: model.count), model)
    chain.close()
    XCTAssertTrue(DiskCheck(path: folder.file("child.vhd")).isSound)
    let base = try DiskChain.open(folder.file("base.vhd"))
    defer { base.close() }
    XCTAssertNotEqual(
      try base.read(at: 1 << 20, count: 16), [UInt8](repeating: 0, count: 16), "the parent is untouched")
  }

  func testDiscardFreesOnlyTheLeafsOwnData() throws {
    let folder = TemporaryFolder()
    let (chain, model) = try makeChain(in: folder)
    defer { chain.close() }
    XCTAssertEqual(try chain.discard(at: 0, count: 4 << 20), 4096, "only the child's own 4 KiB in the range")
    var expected = model
    expected.replaceSubrange(4096..<8192, with: [UInt8](repeating: 0, count: 4096))
    XCTAssertEqual(try chain.read(at: 0, count: 4 << 20), Array(expected[0..<(4 << 20)]))
    XCTAssertTrue(DiskCheck(path: folder.file("child.vhd")).isSound)

    let readOnly = try DiskChain.open(folder.file("child.vhd"))
    defer { readOnly.close() }
    XCTAssertThrowsError(try readOnly.discard(at: 0, count: 4096)) {
      XCTAssertEqual(($0 as? VHDError)?.problem, .readOnly)
    }
  }
}
