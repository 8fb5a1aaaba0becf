import Foundation
import TestSupport
import XCTest

@testable import VHD

/// Malformed and hostile VHD files (VHD-FORMAT.md §11): each one is refused with an error that names
/// the file and the field, by the library and by the command line (exit 1, never a signal).
final class HostileFileTests: XCTestCase {
  struct Case {
    var name: String
    var problem: VHDError.Problem
    var field: String
    /// Writes the hostile file (and anything it needs beside it) into the folder; returns its path.
    var make: (TemporaryFolder) throws -> String
  }

  // MARK: Building blocks

  private static func dynamicDisk(
    _ folder: TemporaryFolder, _ name: String = "disk.vhd", size: UInt64 = 8 << 20, written: [Int] = [0]
  )
    throws -> String
  {
    let path = folder.file(name)
    try VirtualDisk.create(at: path, size: size).close()
    let chain = try DiskChain.open(path, writable: true)
    for block in written { try chain.write([UInt8](repeating: 0x42, count: 4096), at: UInt64(block) << 21) }
    chain.close()
    return path
  }

  private static func write(_ path: String, at offset: UInt64, _ bytes: [UInt8]) throws {
    let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
    defer { try? handle.close() }
    try handle.seek(toOffset: offset)
    try handle.write(contentsOf: Data(bytes))
  }

  /// Rewrites both footer copies with a valid checksum, so that the structural check is what fails.
  private static func patchFooter(_ path: String, _ change: (inout Footer) -> Void) throws {
    let disk = try VirtualDisk.open(path, options: OpenOptions(verifyChecksums: false))
    var footer = disk.footer
    let end = disk.fileSize - 512
    disk.close()
    change(&footer)
    try write(path, at: end, footer.encoded())
    if footer.diskType.isSparse || footer.dataOffset == 512 { try write(path, at: 0, footer.encoded()) }
  }

  private static func patchHeader(_ path: String, _ change: (inout DynamicHeader) -> Void) throws {
    let disk = try VirtualDisk.open(path, options: OpenOptions(verifyChecksums: false))
    var header = try XCTUnwrap(disk.header)
    disk.close()
    change(&header)
    try write(path, at: 512, header.encoded())
  }

  private static func setBATEntry(_ path: String, block: Int, to value: UInt32) throws {
    var bytes = [UInt8](repeating: 0, count: 4)
    bytes.setBigEndian(value, at: 0)
    try write(path, at: 1536 + UInt64(block) * 4, bytes)
  }

  private static func truncate(_ path: String, to size: UInt64) throws {
    let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
    try handle.truncate(atOffset: size)
    try handle.close()
  }

  private static func childOver(_ folder: TemporaryFolder) throws -> String {
    let parent = try dynamicDisk(folder, "parent.vhd")
    let child = folder.file("child.vhd")
    try VirtualDisk.createDifferencing(at: child, parent: parent).close()
    return child
  }

  static var cases: [Case] {
    [
      Case(name: "shorter than a footer", problem: .truncated, field: "footer") { folder in
        XCTAssertTrue(
          FileManager.default.createFile(atPath: folder.file("tiny.vhd"), contents: Data(repeating: 1, count: 100)))
        return folder.file("tiny.vhd")
      },
      Case(name: "no cookie", problem: .notAVHD, field: "footer.cookie") { folder in
        XCTAssertTrue(
          FileManager.default.createFile(atPath: folder.file("junk.vhd"), contents: Data(repeating: 0x41, count: 8192)))
        return folder.file("junk.vhd")
      },
      Case(name: "end footer cut off", problem: .truncated, field: "footer") { folder in
        let path = try dynamicDisk(folder)
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        try truncate(path, to: UInt64(size - 512 - 4096))
        return path
      },
      Case(name: "footer checksum mismatch", problem: .checksumMismatch, field: "footer.checksum") { folder in
        let path = try dynamicDisk(folder)
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        try write(path, at: UInt64(size - 512 + 40), [0x77])
        return path
      },
      Case(name: "header checksum mismatch", problem: .checksumMismatch, field: "header.checksum") { folder in
        let path = try dynamicDisk(folder)
        try write(path, at: 512 + 700, [0x77])
        return path
      },
      Case(name: "header cookie mismatch", problem: .invalidField, field: "header.cookie") { folder in
        let path = try dynamicDisk(folder)
        var header = try XCTUnwrap(VirtualDisk.open(path).header).encoded()
        header.replaceSubrange(0..<8, with: Array("cxspars!".utf8))
        header.setBigEndian(Checksum.compute(header, skipping: 36), at: 36)
        try write(path, at: 512, header)
        return path
      },
      Case(name: "data offset past the end of the file", problem: .outOfBounds, field: "footer.dataOffset") { folder in
        let path = try dynamicDisk(folder)
        try patchFooter(path) { $0.dataOffset = 1 << 40 }
        return path
      },
      Case(name: "max table entries larger than the file", problem: .outOfBounds, field: "header.maxTableEntries") {
        folder in
        let path = try dynamicDisk(folder)
        try patchHeader(path) { $0.maxTableEntries = 0x7FFF_FFFF }
        return path
      },
      Case(name: "table too small for the disk", problem: .invalidField, field: "header.maxTableEntries") { folder in
        let path = try dynamicDisk(folder)
        try patchHeader(path) { $0.maxTableEntries = 1 }
        return path
      },
      Case(name: "block size 0", problem: .invalidField, field: "header.blockSize") { folder in
        let path = try dynamicDisk(folder)
        try patchHeader(path) { $0.blockSize = 0 }
        return path
      },
      Case(name: "block size 0x80", problem: .invalidField, field: "header.blockSize") { folder in
        let path = try dynamicDisk(folder)
        try patchHeader(path) { $0.blockSize = 0x80 }
        return path
      },
      Case(name: "block size not a power of two", problem: .invalidField, field: "header.blockSize") { folder in
        let path = try dynamicDisk(folder)
        try patchHeader(path) { $0.blockSize = 0x1234_5678 }
        return path
      },
      Case(name: "BAT entry pointing into the header", problem: .invalidField, field: "BAT[0]") { folder in
        let path = try dynamicDisk(folder)
        try setBATEntry(path, block: 0, to: 1)
        return path
      },
      Case(name: "BAT entry past the end of the file", problem: .outOfBounds, field: "BAT[0]") { folder in
        let path = try dynamicDisk(folder)
        try setBATEntry(path, block: 0, to: 0x00FF_FFFF)
        return path
      },
      Case(name: "bitmap and data past the end (truncated file)", problem: .outOfBounds, field: "BAT[0]") { folder in
        let path = try dynamicDisk(folder)
        let disk = try VirtualDisk.open(path)
        let footer = disk.footer.encoded()
        let blockStart = UInt64(disk.table[0]) * 512
        disk.close()
        try truncate(path, to: blockStart + 1024)
        try write(path, at: blockStart + 1024, footer)
        return path
      },
      Case(name: "two BAT entries for one block", problem: .invalidField, field: "BAT[1]") { folder in
        let path = try dynamicDisk(folder, written: [0, 1])
        let first = try VirtualDisk.open(path).table[0]
        try setBATEntry(path, block: 1, to: first)
        return path
      },
      Case(name: "virtual size above 2040 GiB", problem: .invalidField, field: "footer.currentSize") { folder in
        let path = try dynamicDisk(folder)
        try patchFooter(path) { $0.currentSize = Footer.maximumDiskSize + (1 << 30) }
        return path
      },
      Case(name: "unknown disk type", problem: .unsupported, field: "footer.diskType") { folder in
        let path = try dynamicDisk(folder)
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        var footer = try VirtualDisk.open(path).footer.encoded()
        footer.setBigEndian(UInt32(6), at: 60)
        footer.setBigEndian(Checksum.compute(footer, skipping: 64), at: 64)
        try write(path, at: UInt64(size - 512), footer)
        return path
      },
      Case(name: "fixed disk shorter than its size", problem: .outOfBounds, field: "footer.currentSize") { folder in
        let path = folder.file("fixed.vhd")
        try VirtualDisk.create(at: path, size: 4 << 20, type: .fixed).close()
        let footer = try VirtualDisk.open(path).footer.encoded()
        try truncate(path, to: 1 << 20)
        try write(path, at: 1 << 20, footer)
        return path
      },
      Case(name: "a differencing disk that is its own parent", problem: .parentLoop, field: "header.parent") { folder in
        let child = try childOver(folder)
        let own = try VirtualDisk.open(child).uniqueID
        try patchHeader(child) {
          $0.parentUniqueID = own
          $0.parentUnicodeName = "child.vhd"
        }
        return child
      },
      Case(name: "a parent loop of two disks", problem: .parentLoop, field: "header.parent") { folder in
        let child = try childOver(folder)
        let childID = try VirtualDisk.open(child).uniqueID
        // Make the parent a differencing disk whose parent is the child.
        try patchHeader(folder.file("parent.vhd")) {
          $0.parentUniqueID = childID
          $0.parentUnicodeName = "child.vhd"
        }
        try patchFooter(folder.file("parent.vhd")) { $0.diskType = .differencing }
        return child
      },
      Case(name: "parent unique id mismatch", problem: .parentMismatch, field: "header.parentUniqueID") { folder in
        let child = try childOver(folder)
        try patchHeader(child) { $0.parentUniqueID = .random() }
        return child
      },
      Case(name: "locator data past the end of the file", problem: .outOfBounds, field: "header.parentLocator[0]") {
        folder in
        let child = try childOver(folder)
        try patchHeader(child) { $0.parentLocators[0].dataOffset = 1 << 33 }
        return child
      },
      Case(name: "locator length absurd", problem: .invalidField, field: "header.parentLocator[1]") { folder in
        let child = try childOver(folder)
        try patchHeader(child) { $0.parentLocators[1].dataLength = 0x7FFF_0000 }
        return child
      },
      Case(name: "differencing disk naming no parent", problem: .missingParent, field: "header.parentUniqueID") {
        folder in
        let child = try childOver(folder)
        try patchHeader(child) {
          $0.parentUniqueID = .zero
          $0.parentUnicodeName = ""
          for index in 0..<8 { $0.parentLocators[index].platform = .none }
        }
        return child
      },
    ]
  }

  func testEveryHostileFileIsRefusedCleanly() throws {
    let binary = try VMLabBinary.path
    for hostile in HostileFileTests.cases {
      let folder = TemporaryFolder()
      let path = try hostile.make(folder)
      let before = try Data(contentsOf: URL(fileURLWithPath: path))

      do {
        let chain = try DiskChain.open(path)
        _ = try chain.read(at: 0, count: Int(min(chain.size, 1 << 20)))
        XCTFail("\(hostile.name): opened and read without an error")
      } catch let error as VHDError {
        XCTAssertEqual(error.problem, hostile.problem, "\(hostile.name): \(error)")
        XCTAssertTrue(error.field.hasPrefix(hostile.field), "\(hostile.name): field \(error.field) in \(error)")
        XCTAssertTrue(error.path.hasSuffix(".vhd"), "\(hostile.name): names the file: \(error)")
      }

      let info = try runProgram(binary, ["disk", "info", path])
      XCTAssertFalse(info.signaled, "\(hostile.name): vmlab crashed")
      XCTAssertEqual(info.status, 1, "\(hostile.name): \(info.error)")
      XCTAssertTrue(info.error.contains(".vhd"), "\(hostile.name): the message names the file: \(info.error)")
      XCTAssertTrue(
        info.error.contains(hostile.field), "\(hostile.name): the message names \(hostile.field): \(info.error)")

      let check = try runProgram(binary, ["disk", "check", path])
      XCTAssertFalse(check.signaled, "\(hostile.name): vmlab disk check crashed")
      XCTAssertEqual(check.status, 1, "\(hostile.name): check says sound: \(check.output)")
      XCTAssertTrue(check.output.contains("problem:"), "\(hostile.name): \(check.output)")

      let export = try runProgram(binary, ["disk", "export", path, folder.file("out.raw")])
      XCTAssertEqual(export.status, 1, "\(hostile.name): \(export.error)")
      XCTAssertFalse(
        FileManager.default.fileExists(atPath: folder.file("out.raw")), "\(hostile.name): no partial export")
      XCTAssertEqual(
        try Data(contentsOf: URL(fileURLWithPath: path)), before, "\(hostile.name): reading changed the file")
    }
  }
}
