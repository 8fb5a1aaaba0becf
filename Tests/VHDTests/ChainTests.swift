import Foundation
import TestSupport
import XCTest

@testable import VHD

final class ChainTests: XCTestCase {
  /// A base with random content and a differencing child over it.
  private func makePair(in folder: TemporaryFolder, size: UInt64 = 8 << 20) throws -> (base: [UInt8], child: String) {
    var random = SeededBytes(seed: 3)
    let content = random.bytes(Int(size))
    let basePath = folder.file("base.vhd")
    try VirtualDisk.create(at: basePath, size: size).close()
    let base = try DiskChain.open(basePath, writable: true)
    try base.write(content, at: 0)
    base.close()
    let childPath = folder.file("child.vhd")
    try VirtualDisk.createDifferencing(at: childPath, parent: basePath).close()
    return (content, childPath)
  }

  func testAChildReadsItsParentUntilWritten() throws {
    let folder = TemporaryFolder()
    let (content, childPath) = try makePair(in: folder)
    let chain = try DiskChain.open(childPath, writable: true)
    XCTAssertEqual(chain.depth, 2)
    XCTAssertEqual(chain.paths, [childPath, folder.file("base.vhd")])
    XCTAssertEqual(try chain.read(at: 0, count: content.count), content)

    // Sector-granular writes: only the written sectors are marked present in the child.
    var model = content
    let writes: [(Int, Int)] = [(134 * 512, 512), (143 * 512, 512), (152 * 512, 8 * 512), (1000, 3), (2_097_000, 300)]
    for (offset, length) in writes {
      let data = [UInt8](repeating: 0xAB, count: length)
      try chain.write(data, at: UInt64(offset))
      model.replaceSubrange(offset..<(offset + length), with: data)
    }
    XCTAssertEqual(try chain.read(at: 0, count: model.count), model)
    let bitmap0 = try chain.leaf.bitmap(of: 0)
    XCTAssertEqual(
      (0..<4096).filter { bitmap0.contains($0) }, [1, 134, 143] + Array(152..<160) + [4095],
      "a partial-block write marks only the sectors it touched")
    XCTAssertTrue(
      try chain.leaf.bitmap(of: 1).contains(0), "the write across the block boundary marks block 1's first sector")
    XCTAssertEqual(try chain.leaf.allocatedBytes(), UInt64(13 * 512))
    chain.close()
    XCTAssertEqual(try DiskChain.open(childPath).read(at: 0, count: model.count), model, "after reopening")
    XCTAssertEqual(
      try DiskChain.open(folder.file("base.vhd")).read(at: 0, count: content.count), content, "the parent is untouched")
  }

  func testWritingZerosOverParentDataMasksIt() throws {
    let folder = TemporaryFolder()
    let (content, childPath) = try makePair(in: folder)
    let chain = try DiskChain.open(childPath, writable: true)
    try chain.write([UInt8](repeating: 0, count: 4096), at: 4 << 20)
    var expected = Array(content[(4 << 20)..<((4 << 20) + 8192)])
    expected.replaceSubrange(0..<4096, with: [UInt8](repeating: 0, count: 4096))
    XCTAssertEqual(try chain.read(at: 4 << 20, count: 8192), expected)
  }

  func testDeepChainsReadTheNearestLayer() throws {
    let folder = TemporaryFolder()
    let size = 4 << 20
    try VirtualDisk.create(at: folder.file("0.vhd"), size: UInt64(size), blockSize: 1 << 20).close()
    var model = [UInt8](repeating: 0, count: size)
    var random = SeededBytes(seed: 11)
    var previous = folder.file("0.vhd")
    for depth in 1...12 {
      let path = folder.file("\(depth).vhd")
      try VirtualDisk.createDifferencing(at: path, parent: previous).close()
      let chain = try DiskChain.open(path, writable: true)
      for _ in 0..<3 {
        let length = random.int(1..<300_000)
        let offset = random.int(0..<(size - length))
        let data = random.bytes(length)
        try chain.write(data, at: UInt64(offset))
        model.replaceSubrange(offset..<(offset + length), with: data)
      }
      if depth % 4 == 0 {
        let whole = random.bytes(1 << 20)
        try chain.write(whole, at: 2 << 20)
        model.replaceSubrange((2 << 20)..<(3 << 20), with: whole)
      }
      chain.close()
      previous = path
    }
    let chain = try DiskChain.open(previous)
    XCTAssertEqual(chain.depth, 13)
    XCTAssertEqual(try chain.read(at: 0, count: size), model)
    XCTAssertEqual(try chain.source(ofBlock: 2), .layer(0), "block 2 was last written whole by the leaf")
    for offset in stride(from: 0, to: size, by: 65_537) {
      let length = min(10_000, size - offset)
      XCTAssertEqual(try chain.read(at: UInt64(offset), count: length), Array(model[offset..<(offset + length)]))
    }
  }

  func testAMovedFolderStillOpensThroughTheRelativeLocator() throws {
    let folder = TemporaryFolder()
    let (content, _) = try makePair(in: folder)
    let moved = folder.file("moved")
    try FileManager.default.createDirectory(atPath: moved, withIntermediateDirectories: true)
    try FileManager.default.moveItem(atPath: folder.file("base.vhd"), toPath: moved + "/base.vhd")
    try FileManager.default.moveItem(atPath: folder.file("child.vhd"), toPath: moved + "/child.vhd")
    let chain = try DiskChain.open(moved + "/child.vhd")
    XCTAssertEqual(chain.paths[1], moved + "/base.vhd")
    XCTAssertEqual(try chain.read(at: 0, count: content.count), content)
  }

  func testTheRelativeLocatorReachesAParentInAnotherFolder() throws {
    let folder = TemporaryFolder()
    try FileManager.default.createDirectory(atPath: folder.file("base"), withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: folder.file("vm"), withIntermediateDirectories: true)
    try VirtualDisk.create(at: folder.file("base/parent.vhd"), size: 1 << 20).close()
    try VirtualDisk.createDifferencing(at: folder.file("vm/child.vhd"), parent: folder.file("base/parent.vhd")).close()
    let child = try VirtualDisk.open(folder.file("vm/child.vhd"))
    let candidates = try ParentResolver(options: OpenOptions()).candidates(for: child)
    XCTAssertEqual(candidates.first, folder.file("base/parent.vhd"))
    XCTAssertEqual(child.header?.parentUnicodeName, "parent.vhd")
    XCTAssertTrue(child.header!.parentLocators.contains { $0.platform == .relativeWindows })
    XCTAssertTrue(child.header!.parentLocators.contains { $0.platform == .absoluteWindows })
  }

  func testAReplacedParentIsReportedAsAMismatch() throws {
    let folder = TemporaryFolder()
    let (_, childPath) = try makePair(in: folder)
    try FileManager.default.removeItem(atPath: folder.file("base.vhd"))
    try VirtualDisk.create(at: folder.file("base.vhd"), size: 8 << 20).close()
    assertVHDError(.parentMismatch, field: "header.parentUniqueID") { _ = try DiskChain.open(childPath) }
  }

  func testAMissingParentNamesWhatWasTried() throws {
    let folder = TemporaryFolder()
    let (_, childPath) = try makePair(in: folder)
    try FileManager.default.removeItem(atPath: folder.file("base.vhd"))
    do {
      _ = try DiskChain.open(childPath)
      XCTFail("opened without its parent")
    } catch let error as VHDError {
      XCTAssertEqual(error.problem, .missingParent)
      XCTAssertTrue(error.description.contains("base.vhd"), error.description)
      XCTAssertTrue(error.description.contains(childPath), error.description)
    }
  }

  func testAParentThatIsAFIFOOrAFolderIsRefusedWithoutHanging() throws {
    let folder = TemporaryFolder()
    let (_, childPath) = try makePair(in: folder)
    let basePath = folder.file("base.vhd")
    try FileManager.default.removeItem(atPath: basePath)
    XCTAssertEqual(mkfifo(basePath, 0o600), 0)
    // Opening a FIFO for reading blocks until a writer comes: run it aside with a deadline.
    final class Outcome: @unchecked Sendable { var error: Error? }
    let outcome = Outcome()
    let done = DispatchSemaphore(value: 0)
    let child = childPath
    Thread.detachNewThread {
      do { _ = try DiskChain.open(child) } catch { outcome.error = error }
      done.signal()
    }
    guard done.wait(timeout: .now() + 10) == .success else { return XCTFail("opening the chain hung on the FIFO") }
    let error = try XCTUnwrap(outcome.error as? VHDError, "a FIFO opened as a parent")
    XCTAssertTrue(error.description.contains("is a FIFO, not a regular file"), error.description)
    XCTAssertTrue(error.description.contains(basePath), error.description)

    try FileManager.default.removeItem(atPath: basePath)
    try FileManager.default.createDirectory(atPath: basePath, withIntermediateDirectories: false)
    assertVHDError(.invalidArgument, field: "file") { _ = try VirtualDisk.open(basePath) }
    assertVHDError(.io, field: "file") { _ = try VirtualDisk.open(basePath, writable: true) }
  }

  func testParentsOutsideTheAllowedFolderAreNotFollowed() throws {
    let folder = TemporaryFolder()
    try FileManager.default.createDirectory(atPath: folder.file("import"), withIntermediateDirectories: true)
    try VirtualDisk.create(at: folder.file("secret.vhd"), size: 1 << 20).close()
    try VirtualDisk.createDifferencing(at: folder.file("import/child.vhd"), parent: folder.file("secret.vhd")).close()
    assertVHDError(.missingParent) {
      _ = try DiskChain.open(
        folder.file("import/child.vhd"), options: OpenOptions(parentSearchRoot: folder.file("import")))
    }
    XCTAssertNoThrow(
      try DiskChain.open(folder.file("import/child.vhd"), options: OpenOptions(parentSearchRoot: folder.path)))
  }

  func testDepthIsCapped() throws {
    let folder = TemporaryFolder()
    try VirtualDisk.create(at: folder.file("0.vhd"), size: 1 << 20).close()
    for depth in 1...5 {
      try VirtualDisk.createDifferencing(at: folder.file("\(depth).vhd"), parent: folder.file("\(depth - 1).vhd"))
        .close()
    }
    assertVHDError(.chainTooDeep) {
      _ = try DiskChain.open(folder.file("5.vhd"), options: OpenOptions(maximumDepth: 4))
    }
    XCTAssertEqual(try DiskChain.open(folder.file("5.vhd")).depth, 6)
  }

  func testAParentOfAnotherSizeIsRefused() throws {
    let folder = TemporaryFolder()
    try VirtualDisk.create(at: folder.file("p.vhd"), size: 2 << 20).close()
    try VirtualDisk.createDifferencing(at: folder.file("c.vhd"), parent: folder.file("p.vhd")).close()
    // Patch the child's footer to claim another size.
    let disk = try VirtualDisk.open(folder.file("c.vhd"))
    var footer = disk.footer
    footer.currentSize = 1 << 20
    try overwrite(folder.file("c.vhd"), at: disk.fileSize - 512, with: footer.encoded())
    assertVHDError(.parentMismatch, field: "footer.currentSize") { _ = try DiskChain.open(folder.file("c.vhd")) }
  }
}
