import DiskServing
import Foundation
import NBD
import TestSupport
import VHD
import XCTest

/// A VHD chain served over NBD, and the switch to a new leaf an online checkpoint needs: one client
/// connection stays open throughout and sees the same disk; writes after the switch land in the new leaf.
final class ServedChainTests: XCTestCase {
  private var folder: TemporaryFolder!
  private var served: ServedChain!

  override func setUpWithError() throws {
    folder = TemporaryFolder()
    try VirtualDisk.create(at: folder.file("base.vhd"), size: 8 << 20).close()
    try VirtualDisk.createDifferencing(at: folder.file("one.vhd"), parent: folder.file("base.vhd")).close()
    served = try ServedChain(path: folder.file("one.vhd"), socketPath: folder.file("s.sock"))
    served.start()
  }

  override func tearDownWithError() throws {
    try served?.stop()
  }

  private func write(_ client: RawClient, _ bytes: [UInt8], at offset: UInt64, cookie: UInt64) throws {
    client.request(1, flags: 1, cookie: cookie, offset: offset, length: UInt32(bytes.count), payload: bytes)
    XCTAssertEqual(try client.simpleReply().error, 0)
  }

  private func read(_ client: RawClient, at offset: UInt64, count: Int, cookie: UInt64) throws -> [UInt8] {
    client.request(0, cookie: cookie, offset: offset, length: UInt32(count))
    XCTAssertEqual(try client.simpleReply().error, 0)
    return try XCTUnwrap(client.receive(count))
  }

  private func spaceOnDisk(_ path: String) throws -> UInt64 {
    let disk = try VirtualDisk.open(path)
    defer { disk.close() }
    return disk.spaceOnDisk
  }

  private func chainBytes(_ path: String, at offset: UInt64, count: Int) throws -> [UInt8] {
    let chain = try DiskChain.open(path)
    defer { chain.close() }
    return try chain.read(at: offset, count: count)
  }

  func testSwitchToANewLeafKeepsTheConnectionAndMovesLaterWrites() throws {
    let client = try RawClient(socket: served.server.socketPath)
    try client.connect(structured: false, allocation: false)
    let first = [UInt8](repeating: 0x11, count: 4096)
    try write(client, first, at: 0, cookie: 1)

    // The host pauses, creates the new differencing disk over the current leaf, switches.
    try VirtualDisk.createDifferencing(at: folder.file("two.vhd"), parent: folder.file("one.vhd")).close()
    try served.switchLeaf(to: folder.file("two.vhd"))
    XCTAssertEqual(served.leafPath, folder.file("two.vhd"))
    XCTAssertEqual(served.depth, 3)

    XCTAssertEqual(try read(client, at: 0, count: 4096, cookie: 2), first, "the same connection reads the same disk")
    let second = [UInt8](repeating: 0x22, count: 4096)
    try write(client, second, at: 8192, cookie: 3)

    XCTAssertEqual(try chainBytes(folder.file("one.vhd"), at: 0, count: 4096), first)
    XCTAssertEqual(
      try chainBytes(folder.file("one.vhd"), at: 8192, count: 4096), [UInt8](repeating: 0, count: 4096),
      "the old leaf is frozen at the switch")
    XCTAssertEqual(try chainBytes(folder.file("two.vhd"), at: 8192, count: 4096), second)
    XCTAssertTrue(DiskCheck(path: folder.file("two.vhd")).isSound)
  }

  func testAFailedSwitchSwitchesNothingAndServingGoesOn() throws {
    let client = try RawClient(socket: served.server.socketPath)
    try client.connect(structured: false, allocation: false)
    try VirtualDisk.create(at: folder.file("small.vhd"), size: 4 << 20).close()
    XCTAssertThrowsError(try served.switchLeaf(to: folder.file("small.vhd"))) {
      XCTAssertTrue(String(describing: $0).contains("keep the size"), "\($0)")
    }
    XCTAssertThrowsError(try served.switchLeaf(to: folder.file("missing.vhd")))
    XCTAssertFalse(served.export.paused, "the export resumes after a failed switch")
    XCTAssertEqual(served.leafPath, folder.file("one.vhd"))
    try write(client, [UInt8](repeating: 0x33, count: 512), at: 0, cookie: 1)
    XCTAssertEqual(try chainBytes(folder.file("one.vhd"), at: 0, count: 512), [UInt8](repeating: 0x33, count: 512))
  }

  func testTrimFreesTheLeafsSpaceAndKeepsTheFileSound() throws {
    let client = try RawClient(socket: served.server.socketPath)
    let (_, flags) = try client.connect(structured: false, allocation: false)
    XCTAssertNotEqual(flags & 32, 0, "a writable chain offers TRIM")
    var random = SeededBytes(seed: 5)
    try write(client, random.bytes(4 << 20), at: 0, cookie: 1)
    let before = try spaceOnDisk(folder.file("one.vhd"))
    client.request(4, flags: 1, cookie: 2, offset: 1 << 20, length: 2 << 20)
    XCTAssertEqual(try client.simpleReply().error, 0)
    let after = try spaceOnDisk(folder.file("one.vhd"))
    XCTAssertGreaterThanOrEqual(before - after, (2 << 20) - 8192, "the trimmed range's space is given back")
    XCTAssertEqual(try read(client, at: (1 << 20) + 4096, count: 4096, cookie: 3), [UInt8](repeating: 0, count: 4096))
    XCTAssertTrue(DiskCheck(path: folder.file("one.vhd")).isSound)
  }
}
