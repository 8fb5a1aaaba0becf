import Foundation
import TestSupport
import XCTest

@testable import VHD

/// vmlab's files read by the real tools, and theirs by vmlab.
final class InteroperabilityTests: XCTestCase {
  /// qemu sizes VHDs by CHS unless the creator is one it knows; vmlab's size is the current size.
  private func qemuImageOptions(_ path: String) -> String {
    "driver=vpc,force_size_calc=current_size,file.filename=\(path)"
  }

  private func writeContent(to path: String, size: Int, seed: UInt64) throws -> [UInt8] {
    var random = SeededBytes(seed: seed)
    var model = [UInt8](repeating: 0, count: size)
    let chain = try DiskChain.open(path, writable: true)
    defer { chain.close() }
    for _ in 0..<12 {
      let length = random.int(1..<400_000)
      let offset = random.int(0..<(size - length))
      let data = random.bytes(length)
      try chain.write(data, at: UInt64(offset))
      model.replaceSubrange(offset..<(offset + length), with: data)
    }
    return model
  }

  func testQemuReadsVmlabDynamicAndFixedDisks() throws {
    let qemu = try tool("qemu-img")
    for type in [DiskType.dynamic, .fixed] {
      let folder = TemporaryFolder()
      let path = folder.file("disk.vhd")
      let size = 9 << 20
      try VirtualDisk.create(at: path, size: UInt64(size), type: type).close()
      let model = try writeContent(to: path, size: size, seed: 21)
      let raw = folder.file("out.raw")
      let result = try runTool(qemu, ["convert", "--image-opts", qemuImageOptions(path), "-O", "raw", raw])
      XCTAssertEqual(result.status, 0, result.error)
      XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: raw))), model, "\(type) through qemu-img")
      let check = try runTool(qemu, ["check", "-f", "vpc", path])
      XCTAssertFalse(check.error.contains("rror"), check.error)
    }
  }

  func testVmlabReadsADiskWrittenByQemu() throws {
    let qemu = try tool("qemu-img")
    let folder = TemporaryFolder()
    var random = SeededBytes(seed: 4)
    var raw = [UInt8](repeating: 0, count: 12 << 20)
    raw.replaceSubrange(1000..<(3 << 20), with: random.bytes((3 << 20) - 1000))
    raw.replaceSubrange((9 << 20)..<(10 << 20), with: random.bytes(1 << 20))
    XCTAssertTrue(FileManager.default.createFile(atPath: folder.file("in.raw"), contents: Data(raw)))
    let result = try runTool(
      qemu,
      ["convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", folder.file("in.raw"), folder.file("q.vhd")])
    XCTAssertEqual(result.status, 0, result.error)
    let chain = try DiskChain.open(folder.file("q.vhd"))
    XCTAssertEqual(chain.leaf.footer.creatorApplication, "qemu")
    XCTAssertGreaterThanOrEqual(chain.size, UInt64(raw.count), "qemu rounds the size up to its CHS geometry")
    let content = try chain.read(at: 0, count: Int(chain.size))
    XCTAssertEqual(Array(content.prefix(raw.count)), raw)
    XCTAssertTrue(content[raw.count...].allSatisfy { $0 == 0 })
  }

  func testLibvhdiReadsVmlabDifferencingChains() throws {
    let python = "/usr/bin/python3"
    guard FileManager.default.isExecutableFile(atPath: python),
      try runTool(python, ["-c", "import pyvhdi"]).status == 0
    else { throw XCTSkip("python3-libvhdi is not installed; Scripts/bootstrap installs it") }
    let folder = TemporaryFolder()
    let size = 16 << 20
    var random = SeededBytes(seed: 8)
    try VirtualDisk.create(at: folder.file("base.vhd"), size: UInt64(size)).close()
    var model = [UInt8](repeating: 0, count: size)
    let base = try DiskChain.open(folder.file("base.vhd"), writable: true)
    for block in [0, 2, 5] {
      let data = random.bytes(2 << 20)
      try base.write(data, at: UInt64(block) << 21)
      model.replaceSubrange((block << 21)..<((block + 1) << 21), with: data)
    }
    base.close()
    try VirtualDisk.createDifferencing(at: folder.file("child.vhd"), parent: folder.file("base.vhd")).close()
    // Whole-block writes only: libvhdi misreads partly set bitmap bytes (shared/testdata/vhd/README.md).
    let child = try DiskChain.open(folder.file("child.vhd"), writable: true)
    for block in [2, 3, 7] {
      let data = random.bytes(2 << 20)
      try child.write(data, at: UInt64(block) << 21)
      model.replaceSubrange((block << 21)..<((block + 1) << 21), with: data)
    }
    child.close()
    let script = """
      import pyvhdi, sys
      parent = pyvhdi.file(); parent.open(sys.argv[1])
      child = pyvhdi.file(); child.open(sys.argv[2]); child.set_parent(parent)
      size = child.get_media_size()
      sys.stdout.buffer.write(child.read_buffer(size))
      """
    let out = folder.file("libvhdi.raw")
    let result = try runTool(
      "/bin/sh",
      [
        "-c", "\(python) -c \"$0\" \"$1\" \"$2\" > \"$3\"", script, folder.file("base.vhd"), folder.file("child.vhd"),
        out,
      ])
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertEqual(try sha256(ofFile: out), try sha256(of: model, in: folder))
    let info = try runTool(try tool("vhdiinfo"), [folder.file("child.vhd")])
    XCTAssertEqual(info.status, 0, info.error)
    XCTAssertTrue(info.output.contains("Differential"), info.output)
  }
}
