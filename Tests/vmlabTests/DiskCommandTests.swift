import Foundation
import TestSupport
import XCTest

/// `vmlab disk …` end to end: files on disk, exit codes and messages.
final class DiskCommandTests: XCTestCase {
  func testCreateInfoWriteExportAndMerge() throws {
    let folder = TemporaryFolder()
    var result = try vmlab(["disk", "create", "base.vhd", "--size", "8M"], in: folder.path)
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(result.output.contains("created dynamic disk \(folder.file("base.vhd")) (8 MiB)"), result.output)
    XCTAssertTrue(
      result.output.contains(
        "size 8,388,608 bytes rounded up to 8,390,656 bytes, a whole CHS geometry, so qemu, VirtualBox and Windows agree"
      ),
      result.output)
    result = try vmlab(["disk", "create", "child.vhd", "--parent", "base.vhd"], in: folder.path)
    XCTAssertEqual(result.status, 0, result.error)

    let patch = Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7) })
    XCTAssertTrue(FileManager.default.createFile(atPath: folder.file("patch.bin"), contents: patch))
    result = try vmlab(["disk", "write", "child.vhd", "--offset", "1M", "--input", "patch.bin"], in: folder.path)
    XCTAssertEqual(result.status, 0, result.error)

    result = try vmlab(["disk", "info", "child.vhd", "--json"], in: folder.path)
    XCTAssertEqual(result.status, 0, result.error)
    let info = try parseJSON(result.output)
    XCTAssertEqual(info["type"] as? String, "differencing")
    XCTAssertEqual(info["virtualSize"] as? Int, 8_390_656)
    XCTAssertEqual(info["geometrySize"] as? Int, 8_390_656)
    XCTAssertEqual(info["allocatedBytes"] as? Int, 10 * 512)
    let chain = try XCTUnwrap(info["chain"] as? [[String: Any]])
    XCTAssertEqual(chain.compactMap { $0["path"] as? String }, [folder.file("child.vhd"), folder.file("base.vhd")])

    result = try vmlab(["disk", "info", "child.vhd"], in: folder.path)
    XCTAssertTrue(result.output.contains("chain (leaf first):"), result.output)
    XCTAssertEqual(try vmlab(["disk", "check", "child.vhd"], in: folder.path).status, 0)

    result = try vmlab(["disk", "export", "child.vhd", "out.raw"], in: folder.path)
    XCTAssertEqual(result.status, 0, result.error)
    var expected = Data(count: 8_390_656)
    expected.replaceSubrange((1 << 20)..<((1 << 20) + patch.count), with: patch)
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: folder.file("out.raw"))), expected)
    result = try vmlab(["disk", "export", "child.vhd", "out.raw"], in: folder.path)
    XCTAssertEqual(result.status, 1, "an existing raw image is not replaced without --force")
    XCTAssertTrue(result.error.contains("already exists"), result.error)

    result = try vmlab(["disk", "merge", "child.vhd"], in: folder.path)
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(result.output.contains("merged 5 KiB"), result.output)
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("child.vhd")))
    XCTAssertEqual(try vmlab(["disk", "export", "base.vhd", "merged.raw"], in: folder.path).status, 0)
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: folder.file("merged.raw"))), expected)
    XCTAssertEqual(try vmlab(["disk", "check", "base.vhd"], in: folder.path).status, 0)
  }

  func testMergeRefusesAParentSharedWithOtherChildren() throws {
    let folder = TemporaryFolder()
    try vmlab(["disk", "create", "base.vhd", "--size", "4M"], in: folder.path)
    try vmlab(["disk", "create", "a.vhd", "--parent", "base.vhd"], in: folder.path)
    try vmlab(["disk", "create", "b.vhd", "--parent", "base.vhd"], in: folder.path)
    let result = try vmlab(["disk", "merge", "a.vhd"], in: folder.path)
    XCTAssertEqual(result.status, 1)
    XCTAssertTrue(result.error.contains(folder.file("b.vhd")), result.error)
    XCTAssertTrue(result.error.contains("--force"), result.error)
    XCTAssertTrue(FileManager.default.fileExists(atPath: folder.file("a.vhd")), "nothing was merged")
  }

  func testImportAndFixedDisks() throws {
    let folder = TemporaryFolder()
    var raw = Data(count: 3 << 20)
    raw.replaceSubrange(100..<200, with: Data(repeating: 0x5A, count: 100))
    XCTAssertTrue(FileManager.default.createFile(atPath: folder.file("in.raw"), contents: raw))
    var result = try vmlab(["disk", "import", "in.raw", "fixed.vhd", "--type", "fixed"], in: folder.path)
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(result.output.contains("size 3,145,728 bytes rounded up to 3,168,256 bytes"), result.output)
    XCTAssertTrue(result.output.contains("the tail reads as zeros"), result.output)
    result = try vmlab(["disk", "info", "fixed.vhd", "--json"], in: folder.path)
    XCTAssertEqual(try parseJSON(result.output)["type"] as? String, "fixed")
    XCTAssertEqual(try vmlab(["disk", "export", "fixed.vhd", "back.raw"], in: folder.path).status, 0)
    let back = try Data(contentsOf: URL(fileURLWithPath: folder.file("back.raw")))
    XCTAssertEqual(back.count, 3_168_256)
    XCTAssertEqual(back.prefix(raw.count), raw)
    XCTAssertTrue(back.dropFirst(raw.count).allSatisfy { $0 == 0 })
    result = try vmlab(["disk", "create", "plain.vhd", "--size", "1G", "--type", "fixed"], in: folder.path)
    XCTAssertEqual(result.status, 0, result.error)
    let attributes = try FileManager.default.attributesOfItem(atPath: folder.file("plain.vhd"))
    XCTAssertEqual(attributes[.size] as? Int, 1_073_995_776 + 512, "1 GiB rounded up to 2081/16/63, then the footer")
    // A size that is a whole geometry already (3/4/17, 104,448 bytes) is kept, without a note.
    result = try vmlab(["disk", "create", "exact.vhd", "--size", "104448"], in: folder.path)
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertFalse(result.output.contains("rounded"), result.output)
  }

  func testUsageErrorsExitWithTwo() throws {
    let folder = TemporaryFolder()
    for arguments in [
      ["disk", "create", "a.vhd"],
      ["disk", "create", "a.vhd", "--size", "lots"],
      ["disk", "create", "a.vhd", "--size", "1M", "--type", "sparse"],
      ["disk", "create", "a.vhd", "--size", "1M", "--parent", "b.vhd"],
      ["disk", "frobnicate"],
    ] {
      let result = try vmlab(arguments, in: folder.path)
      XCTAssertEqual(result.status, 2, "\(arguments): \(result.error)")
      XCTAssertFalse(result.error.isEmpty)
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("a.vhd")))
    let help = try vmlab(["disk", "--help"])
    XCTAssertEqual(help.status, 0)
    XCTAssertTrue(help.output.contains("merge"), help.output)
  }

  func testFailuresExitWithOneAndNameTheFile() throws {
    let folder = TemporaryFolder()
    var result = try vmlab(["disk", "info", "missing.vhd"], in: folder.path)
    XCTAssertEqual(result.status, 1)
    XCTAssertTrue(result.error.contains(folder.file("missing.vhd")), result.error)
    XCTAssertTrue(
      FileManager.default.createFile(atPath: folder.file("text.vhd"), contents: Data(repeating: 65, count: 4096)))
    result = try vmlab(["disk", "check", "text.vhd"], in: folder.path)
    XCTAssertEqual(result.status, 1)
    XCTAssertTrue(result.output.contains("not a VHD"), result.output)
    result = try vmlab(["disk", "create", "a.vhd", "--size", "1000"], in: folder.path)
    XCTAssertEqual(result.status, 1)
    XCTAssertTrue(result.error.contains("multiple of 512"), result.error)
    // A FIFO or a folder is refused at once (reading a FIFO would wait for a writer forever).
    XCTAssertEqual(mkfifo(folder.file("pipe.vhd"), 0o600), 0)
    result = try vmlab(["disk", "info", "pipe.vhd"], in: folder.path)
    XCTAssertEqual(result.status, 1)
    XCTAssertTrue(result.error.contains("is a FIFO, not a regular file"), result.error)
    result = try vmlab(["disk", "check", folder.path], in: folder.path)
    XCTAssertEqual(result.status, 1)
    XCTAssertTrue(
      (result.output + result.error).contains("is a folder, not a regular file"), result.output + result.error)
  }
}
