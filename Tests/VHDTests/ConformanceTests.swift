import Foundation
import TestSupport
import XCTest

@testable import VHD

/// The files in ../shared/testdata/vhd, written by other tools (qemu, Windows), read with the hashes
/// that folder's README lists.
final class ConformanceTests: XCTestCase {
  private func flattenedHash(_ path: String, options: OpenOptions = OpenOptions()) throws -> (String, DiskChain) {
    let folder = TemporaryFolder()
    let chain = try DiskChain.open(path, options: options)
    let raw = folder.file("flat.raw")
    try RawImage.exportImage(chain, to: raw)
    return (try sha256(ofFile: raw), chain)
  }

  func testQemuDynamicDisk() throws {
    let (hash, chain) = try flattenedHash(try SharedTestData.path("ext2.vhd"))
    XCTAssertEqual(hash, "870be7ae16c1fa8faab05c6eb9205dc9a7ae35c5f552c5cf8a267c0bc6a5cb99")
    XCTAssertEqual(chain.size, 4_212_736)
    XCTAssertEqual(chain.leaf.type, .dynamic)
    XCTAssertEqual(chain.leaf.footer.creatorApplication, "qemu")
    XCTAssertTrue(DiskCheck(path: chain.leaf.path).isSound)
  }

  func testWindowsDifferencingDiskReadsThroughItsRelativeLocator() throws {
    let path = try SharedTestData.path("fat-differential.vhd")
    let (hash, chain) = try flattenedHash(path)
    XCTAssertEqual(hash, "cd39548dad3a9dcaa320b037b80cb4103cf59a894a22520df894174eba4cbe34")
    XCTAssertEqual(chain.size, 4_194_304, "the current size, not the smaller CHS size, is the disk's size")
    XCTAssertEqual(chain.paths, [path, try SharedTestData.path("fat-parent.vhd")])
    let candidates = try ParentResolver(options: OpenOptions()).candidates(for: chain.leaf)
    XCTAssertEqual(candidates.first, try SharedTestData.path("fat-parent.vhd"), "W2ru .\\fat-parent.vhd comes first")
    let bitmap = try chain.leaf.bitmap(of: 0)
    XCTAssertEqual(bitmap.presentCount, 18)
    XCTAssertEqual(try chain.source(ofBlock: 0), .mixed)
    // Sector 135 is not in the child: it comes from the parent (libvhdi 20210425 gets this wrong).
    let sector135 = try chain.read(at: 135 * 512, count: 512)
    XCTAssertEqual(Array(sector135.prefix(10)), Array("PARENT".utf8) + [0, 0, 0, 135])
    XCTAssertTrue(DiskCheck(path: path).isSound, "\(DiskCheck(path: path).problems)")
  }

  func testTheStandInParentHoldsItsPattern() throws {
    let chain = try DiskChain.open(try SharedTestData.path("fat-parent.vhd"))
    XCTAssertEqual(chain.leaf.type, .fixed)
    let sector = try chain.read(at: 77 * 512, count: 512)
    let unit = Array("PARENT".utf8) + [0, 0, 0, 77, 0, 0]
    XCTAssertEqual(Array(sector.prefix(504)), Array([[UInt8]](repeating: unit, count: 42).joined()))
    XCTAssertEqual(Array(sector.suffix(8)), [UInt8](repeating: 0, count: 8))
  }

  func testFilesWithWrongChecksumsAreReportedAndReadLeniently() throws {
    let image = try SharedTestData.path("image.vhd")
    let differential = try SharedTestData.path("image-differential.vhd")
    assertVHDError(.checksumMismatch, field: "footer.checksum") { _ = try DiskChain.open(image) }
    assertVHDError(.checksumMismatch, field: "footer.checksum") { _ = try DiskChain.open(differential) }
    let check = DiskCheck(path: differential)
    XCTAssertFalse(check.isSound)
    XCTAssertTrue(check.problems.contains { $0.field == "footer.checksum" && $0.path == differential })
    XCTAssertTrue(check.problems.contains { $0.field == "header.checksum" && $0.path == differential })
    XCTAssertTrue(
      check.problems.contains { $0.field == "footer.checksum" && $0.path == image }, "the parent is checked too")

    let lenient = OpenOptions(verifyChecksums: false)
    let expected = "c6db12a7db548e193c29420c1b4533e4708b20c5033db5cc29ef075d48316d25"
    let (imageHash, imageChain) = try flattenedHash(image, options: lenient)
    XCTAssertEqual(imageHash, expected)
    XCTAssertEqual(imageChain.size, 104_448, "reads are clamped to the disk inside its one 2 MiB block")
    let (differentialHash, differentialChain) = try flattenedHash(differential, options: lenient)
    XCTAssertEqual(differentialHash, expected)
    XCTAssertEqual(differentialChain.paths, [differential, image], "found by the parent's unicode name alone")
  }
}
