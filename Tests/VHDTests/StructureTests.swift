import TestSupport
import XCTest

@testable import VHD

final class StructureTests: XCTestCase {
  func testFooterRoundTripsAndChecksums() throws {
    var footer = Footer(diskType: .dynamic, size: 8 << 30, timestamp: 12345, dataOffset: 512)
    footer.savedState = true
    let bytes = footer.encoded()
    XCTAssertEqual(bytes.count, 512)
    XCTAssertEqual(Array(bytes[0..<8]), Array("conectix".utf8))
    let decoded = try Footer(decoding: bytes)
    XCTAssertEqual(decoded.currentSize, 8 << 30)
    XCTAssertEqual(decoded.diskType, .dynamic)
    XCTAssertEqual(decoded.uniqueID, footer.uniqueID)
    XCTAssertEqual(decoded.dataOffset, 512)
    XCTAssertTrue(decoded.savedState)
    XCTAssertEqual(decoded.encoded(), bytes)
    XCTAssertEqual(decoded.checksum, Checksum.compute(bytes, skipping: 64))
  }

  func testChecksumMatchesAFileWrittenByQemu() throws {
    let path = try SharedTestData.path("ext2.vhd")
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let footer = Array(data.suffix(512))
    XCTAssertEqual(footer.bigEndian(UInt32.self, at: 64), Checksum.compute(footer, skipping: 64))
    let decoded = try Footer(decoding: footer)
    XCTAssertEqual(decoded.encoded(), footer, "re-encoding a qemu footer reproduces it byte for byte")
  }

  func testFooterRejectsDamage() {
    let good = Footer(diskType: .fixed, size: 1 << 20, timestamp: 1).encoded()
    var flipped = good
    flipped[50] ^= 1
    assertVHDError(.checksumMismatch, field: "footer.checksum") { _ = try Footer(decoding: flipped) }
    XCTAssertNoThrow(try Footer(decoding: flipped, verifyChecksum: false), "lenient mode reads it")
    var cookie = good
    cookie[0] = UInt8(ascii: "X")
    assertVHDError(.notAVHD, field: "footer.cookie") { _ = try Footer(decoding: cookie) }
    assertVHDError(.truncated) { _ = try Footer(decoding: Array(good.prefix(100))) }

    var badType = Footer(diskType: .fixed, size: 1 << 20, timestamp: 1)
    badType.diskType = .fixed
    var typeBytes = badType.encoded()
    typeBytes.setBigEndian(UInt32(5), at: 60)
    assertVHDError(.unsupported, field: "footer.diskType") {
      _ = try Footer(decoding: typeBytes, verifyChecksum: false)
    }
    var huge = good
    huge.setBigEndian(UInt64(Footer.maximumDiskSize + 512), at: 48)
    assertVHDError(.invalidField, field: "footer.currentSize") { _ = try Footer(decoding: huge, verifyChecksum: false) }
    var odd = good
    odd.setBigEndian(UInt64(1000), at: 48)
    assertVHDError(.invalidField, field: "footer.currentSize") { _ = try Footer(decoding: odd, verifyChecksum: false) }
    var version = good
    version.setBigEndian(UInt32(0x0002_0000), at: 12)
    assertVHDError(.unsupported, field: "footer.fileFormatVersion") {
      _ = try Footer(decoding: version, verifyChecksum: false)
    }
  }

  func testGeometryFollowsTheSpecification() {
    XCTAssertEqual(DiskGeometry(forSize: 204 * 512), DiskGeometry(cylinders: 3, heads: 4, sectorsPerTrack: 17))
    XCTAssertEqual(DiskGeometry(forSize: 8228 * 512), DiskGeometry(cylinders: 121, heads: 4, sectorsPerTrack: 17))
    let fourMiB = DiskGeometry(forSize: 4 << 20)
    XCTAssertEqual(fourMiB, DiskGeometry(cylinders: 120, heads: 4, sectorsPerTrack: 17))
    XCTAssertEqual(fourMiB.capacity, 4_177_920)
    XCTAssertEqual(DiskGeometry(forSize: 4 << 30), DiskGeometry(cylinders: 8322, heads: 16, sectorsPerTrack: 63))
    XCTAssertEqual(DiskGeometry(forSize: 2000 << 30), DiskGeometry(cylinders: 65535, heads: 16, sectorsPerTrack: 255))
  }

  func testRoundingGivesAWholeGeometryAtLeastAsLargeAsAsked() {
    // The example users see: 8 GiB becomes 16645/16/63, 483,328 bytes more.
    let eight = DiskGeometry.rounding(size: 8 << 30)
    XCTAssertEqual(eight.geometry, DiskGeometry(cylinders: 16645, heads: 16, sectorsPerTrack: 63))
    XCTAssertEqual(eight.size, 8_590_417_920)
    // A size that is already a whole geometry stays, and so does the 104,448-byte disk of §9.
    XCTAssertEqual(DiskGeometry.rounding(size: 104_448).size, 104_448)
    XCTAssertEqual(DiskGeometry.rounding(size: 8_590_417_920).size, 8_590_417_920)
    // The smallest disk: one sector becomes 4 heads × 17 sectors (qemu-img creates the same).
    XCTAssertEqual(DiskGeometry.rounding(size: 512).size, 68 * 512)
    // From the largest geometry on, the size stays as asked and the geometry is the maximum.
    let maximum = DiskGeometry.maximum.capacity
    XCTAssertEqual(maximum, 136_899_993_600)
    for size in [maximum - 512, maximum, maximum + 512, 200 << 30, Footer.maximumDiskSize] {
      let rounded = DiskGeometry.rounding(size: size)
      XCTAssertEqual(rounded.geometry, .maximum, "\(size)")
      XCTAssertEqual(rounded.size, size, "\(size)")
    }
    // Just below that band, the geometry grows by whole cylinders of 16 × 255 sectors.
    let below = DiskGeometry.rounding(size: maximum - 4080 * 512 - 512)
    XCTAssertEqual(below.geometry, DiskGeometry(cylinders: 65534, heads: 16, sectorsPerTrack: 255))
    XCTAssertEqual(below.size, maximum - 4080 * 512)

    // Every sector count up to 40,000 and a seeded sample of larger ones: the result covers the
    // request, is its geometry's capacity, is stable, and adds less than one cylinder.
    var random = SeededBytes(seed: 77)
    let samples = Array(1...40_000) + (0..<3000).map { _ in UInt64(random.int(1..<267_382_800)) }
    for sectors in samples {
      let size = UInt64(sectors) * 512
      let rounded = DiskGeometry.rounding(size: size)
      XCTAssertGreaterThanOrEqual(rounded.size, size)
      XCTAssertLessThan(rounded.size - size, 16 * 255 * 512, "\(size)")
      if rounded.geometry != .maximum { XCTAssertEqual(rounded.size, rounded.geometry.capacity, "\(size)") }
      XCTAssertEqual(DiskGeometry.rounding(size: rounded.size).size, rounded.size, "\(size)")
      XCTAssertEqual(DiskGeometry.recorded(forSize: rounded.size), rounded.geometry, "\(size)")
    }
  }

  func testFootersOfSizesThatAreNoWholeGeometryRecordTheSpecificationsGeometry() {
    // A 4 MiB disk made before rounding (or a differencing disk over one) keeps its size; its
    // geometry is the specification's, which covers less.
    let footer = Footer(diskType: .dynamic, size: 4 << 20, timestamp: 0)
    XCTAssertEqual(footer.currentSize, 4 << 20)
    XCTAssertEqual(footer.geometry, DiskGeometry(cylinders: 120, heads: 4, sectorsPerTrack: 17))
  }

  func testDynamicHeaderRoundTripsWithParentNameAndLocators() throws {
    var header = DynamicHeader(tableOffset: 1536, maxTableEntries: 4096, blockSize: 1 << 21)
    header.parentUniqueID = .random()
    header.parentTimestamp = 99
    header.parentUnicodeName = "base-ü.vhd"
    header.parentLocators[0] = ParentLocator(
      platform: .absoluteWindows, dataSpace: 512, dataLength: 40, dataOffset: 18432)
    header.parentLocators[1] = ParentLocator(
      platform: .relativeWindows, dataSpace: 512, dataLength: 20, dataOffset: 18944)
    let bytes = header.encoded()
    XCTAssertEqual(bytes.count, 1024)
    let decoded = try DynamicHeader(decoding: bytes)
    XCTAssertEqual(
      decoded,
      {
        var expected = header
        expected.checksum = decoded.checksum
        return expected
      }())
    XCTAssertEqual(decoded.encoded(), bytes)
    XCTAssertEqual(decoded.bitmapSize, 512)
    XCTAssertEqual(DynamicHeader(tableOffset: 0, maxTableEntries: 1, blockSize: 1 << 19).bitmapSize, 512)
    XCTAssertEqual(DynamicHeader(tableOffset: 0, maxTableEntries: 1, blockSize: 1 << 25).bitmapSize, 8192)
  }

  func testDynamicHeaderRejectsBadBlockSizesAndChecksums() {
    for blockSize: UInt32 in [0, 0x80, 0x1234_5678, 3 << 20, 512 << 20] {
      var header = DynamicHeader(tableOffset: 1536, maxTableEntries: 1, blockSize: 1 << 21)
      header.blockSize = blockSize
      assertVHDError(.invalidField, field: "header.blockSize") { _ = try DynamicHeader(decoding: header.encoded()) }
    }
    var bytes = DynamicHeader(tableOffset: 1536, maxTableEntries: 1, blockSize: 1 << 21).encoded()
    bytes[100] ^= 0xFF
    assertVHDError(.checksumMismatch, field: "header.checksum") { _ = try DynamicHeader(decoding: bytes) }
    bytes[0] = 0
    assertVHDError(.invalidField, field: "header.cookie") { _ = try DynamicHeader(decoding: bytes) }
  }

  func testLocatorPathsDecodeInEitherByteOrder() {
    let path = ".\\fat-parent.vhd"
    let little = ParentLocator.encodePath(path)
    XCTAssertEqual(little.count, path.utf16.count * 2)
    XCTAssertEqual(little[0], UInt8(ascii: "."))
    XCTAssertEqual(ParentLocator.decodePath(little, platform: .relativeWindows), path)
    let big = UTF16Text.encode(path, bigEndian: true)
    XCTAssertEqual(ParentLocator.decodePath(big, platform: .relativeWindows), path)
    XCTAssertEqual(
      ParentLocator.decodePath(Array("file://localhost/dir/p.vhd".utf8), platform: .macOSURL), "/dir/p.vhd")
    XCTAssertNil(ParentLocator.decodePath([1, 2], platform: .none))
    XCTAssertEqual(ParentLocator.Platform.relativeWindows.description, "W2ru")
    XCTAssertEqual(relativeWindowsPath(from: "/a/b", to: "/a/b/p.vhd"), ".\\p.vhd")
    XCTAssertEqual(relativeWindowsPath(from: "/a/b/c", to: "/a/x/p.vhd"), "..\\..\\x\\p.vhd")
  }

  func testBlockAllocationTableRoundTripsAndPads() {
    var table = BlockAllocationTable(count: 3)
    table[1] = 42
    table[2] = 0x0102_0304
    let bytes = table.encoded()
    XCTAssertEqual(bytes.count, 512)
    XCTAssertEqual(Array(bytes[0..<4]), [0xFF, 0xFF, 0xFF, 0xFF])
    XCTAssertEqual(Array(bytes[4..<8]), [0, 0, 0, 42])
    XCTAssertEqual(Array(bytes[8..<12]), [1, 2, 3, 4], "entries are big-endian")
    XCTAssertTrue(bytes[12...].allSatisfy { $0 == 0xFF }, "padding reads as unallocated")
    XCTAssertEqual(try BlockAllocationTable(decoding: bytes, count: 3), table)
    XCTAssertEqual(table.allocatedCount, 2)
    XCTAssertEqual(BlockAllocationTable.byteSize(entries: 129), 1024)
  }

  func testSectorBitmapIsMostSignificantBitFirst() {
    // fat-differential.vhd: bytes 16, 17, 19, 23 and 24 = 02 01 ff cb a8.
    var bytes = [UInt8](repeating: 0, count: 512)
    bytes[16] = 0x02
    bytes[17] = 0x01
    bytes[19] = 0xFF
    bytes[23] = 0xCB
    bytes[24] = 0xA8
    let bitmap = SectorBitmap(bytes: bytes, sectorCount: 4096)
    let present = (0..<4096).filter { bitmap.contains($0) }
    XCTAssertEqual(present, [134, 143] + Array(152...159) + [184, 185, 188, 190, 191, 192, 194, 196])
    XCTAssertEqual(bitmap.presentCount, 18)
    let runs = bitmap.runs(in: 130..<160)
    XCTAssertEqual(runs.map(\.sectors), [130..<134, 134..<135, 135..<143, 143..<144, 144..<152, 152..<160])
    XCTAssertEqual(runs.map(\.present), [false, true, false, true, false, true])
    XCTAssertFalse(bitmap.isFull)
    XCTAssertFalse(bitmap.isEmpty)

    var built = SectorBitmap(sectorCount: 4096, byteCount: 512)
    XCTAssertTrue(built.isEmpty)
    built.insert(3..<21)
    XCTAssertEqual((0..<30).filter { built.contains($0) }, Array(3..<21))
    built.insert(0..<4096)
    XCTAssertTrue(built.isFull)
    XCTAssertEqual(built.runs(in: 0..<4096).count, 1)
  }

  func testUniqueIDFormatsAndParses() {
    let id = UniqueID(bytes: Array(0..<16))
    XCTAssertEqual(id.description, "00010203-0405-0607-0809-0a0b0c0d0e0f")
    XCTAssertEqual(UniqueID(id.description), id)
    XCTAssertNil(UniqueID("nope"))
    XCTAssertNotEqual(UniqueID.random(), UniqueID.random())
  }

  func testTimestampsCountFrom2000() {
    XCTAssertEqual(VHDTimestamp.from(Date(timeIntervalSince1970: 946_684_800 + 60)), 60)
    XCTAssertEqual(VHDTimestamp.date(0).timeIntervalSince1970, 946_684_800)
  }

  func testByteCountsParseAndFormat() throws {
    XCTAssertEqual(try ByteCount.parse("512M"), 512 << 20)
    XCTAssertEqual(try ByteCount.parse("4G"), 4 << 30)
    XCTAssertEqual(try ByteCount.parse("4GiB"), 4 << 30)
    XCTAssertEqual(try ByteCount.parse("1.5K"), 1536)
    XCTAssertEqual(try ByteCount.parse("65536"), 65536)
    for bad in ["", "G", "-1M", "12Q", "0.3"] {
      assertVHDError(.invalidArgument, field: "size") { _ = try ByteCount.parse(bad) }
    }
    XCTAssertEqual(ByteCount.format(4 << 30), "4 GiB")
    XCTAssertEqual(ByteCount.format(1536), "1.5 KiB")
    XCTAssertEqual(ByteCount.format(17), "17 bytes")
  }
}
