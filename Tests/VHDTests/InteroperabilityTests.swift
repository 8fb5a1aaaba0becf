import Foundation
import TestSupport
import XCTest

@testable import VHD

/// vmlab's files read by the real tools, and theirs by vmlab.
final class InteroperabilityTests: XCTestCase {
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
      let disk = try VirtualDisk.create(at: path, size: 9 << 20, type: type)
      let size = Int(disk.size)
      disk.close()
      let model = try writeContent(to: path, size: size, seed: 21)
      let raw = folder.file("out.raw")
      // No options: qemu sizes the disk by its CHS geometry, which is the disk's whole size.
      let result = try runTool(qemu, ["convert", "-f", "vpc", path, "-O", "raw", raw])
      XCTAssertEqual(result.status, 0, result.error)
      let back = [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))
      XCTAssertEqual(back.count, size, "\(type): qemu-img sees every byte")
      XCTAssertTrue(back == model, "\(type) through qemu-img")
      let check = try runTool(qemu, ["check", "-f", "vpc", path])
      XCTAssertFalse(check.error.contains("rror"), check.error)
    }
  }

  /// The virtual size `qemu-img info` reports for a VHD, with no options.
  private func qemuVirtualSize(_ path: String) throws -> UInt64? {
    let result = try runTool(try tool("qemu-img"), ["info", "-f", "vpc", "--output=json", path])
    XCTAssertEqual(result.status, 0, result.error)
    let json = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
    return (json?["virtual-size"] as? NSNumber)?.uint64Value
  }

  func testQemuSeesTheSizeVmlabReportsAndTheTailWithoutOptions() throws {
    let qemu = try tool("qemu-img")
    let qemuIO = try tool("qemu-io")
    let maximum = DiskGeometry.maximum.capacity
    // Small, odd, 8 GiB, near and past the largest CHS geometry (127.5 GiB), and far past it. The
    // files are sparse: only a few MiB are written.
    let cases: [(size: UInt64, type: DiskType)] = [
      (512, .dynamic), (1000 * 512, .fixed), ((9 << 20) + 3 * 512, .dynamic), ((9 << 20) + 3 * 512, .fixed),
      (8 << 30, .dynamic), (127 << 30, .dynamic), (maximum - 4080 * 512 - 512, .dynamic), (maximum - 512, .dynamic),
      (maximum, .fixed), (maximum + (1 << 20), .dynamic), (200 << 30, .fixed),
    ]
    for (requested, type) in cases {
      let folder = TemporaryFolder()
      let path = folder.file("vmlab.vhd")
      let disk = try VirtualDisk.create(at: path, size: requested, type: type)
      let size = disk.size
      disk.close()
      let label = "\(type) disk of \(requested) bytes (vmlab: \(size))"
      XCTAssertGreaterThanOrEqual(size, requested, label)
      XCTAssertEqual(try qemuVirtualSize(path), size, "\(label): qemu-img info")
      // qemu-img's own disk of the requested size is exactly as large.
      let theirs = folder.file("qemu.vhd")
      let create = try runTool(
        qemu,
        [
          "create", "-q", "-f", "vpc", "-o", "subformat=\(type == .fixed ? "fixed" : "dynamic")", theirs,
          "\(requested)",
        ])
      XCTAssertEqual(create.status, 0, create.error)
      XCTAssertEqual(try qemuVirtualSize(theirs), size, "\(label): qemu-img create")

      // vmlab writes the disk's last 4 KiB (or all of a smaller disk); qemu reads them back.
      let tail = min(size, 4096)
      let chain = try DiskChain.open(path, writable: true)
      try chain.write([UInt8](repeating: 0x5a, count: Int(tail)), at: size - tail)
      chain.close()
      let read = try runTool(qemuIO, ["-f", "vpc", "-r", "-c", "read -P 0x5a \(size - tail) \(tail)", path])
      XCTAssertEqual(read.status, 0, read.error)
      XCTAssertTrue(
        read.output.contains("read \(tail)/\(tail) bytes at offset \(size - tail)"), "\(label): \(read.output)")
      XCTAssertFalse(read.output.contains("Pattern verification failed"), "\(label): \(read.output)")
    }
  }

  func testImportTakesNoMoreSpaceThanQemuImgConvert() throws {
    let qemu = try tool("qemu-img")
    let folder = TemporaryFolder()
    // The case users measured: 48 MiB with 15 % data, in pages spread over every block.
    let image = scatteredImage(size: 48 << 20, share: 0.15, seed: 48)
    let raw = folder.file("data.raw")
    XCTAssertTrue(FileManager.default.createFile(atPath: raw, contents: Data(image.bytes)))
    try RawImage.importImage(from: raw, to: folder.file("vmlab.vhd")).close()
    let convert = try runTool(
      qemu, ["convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", raw, folder.file("qemu.vhd")])
    XCTAssertEqual(convert.status, 0, convert.error)
    let ours = try spaceOnDisk(folder.file("vmlab.vhd"))
    let theirs = try spaceOnDisk(folder.file("qemu.vhd"))
    XCTAssertLessThanOrEqual(ours, theirs + theirs / 20, "vmlab \(ours) bytes on disk, qemu-img \(theirs)")
    XCTAssertLessThan(ours, 10 << 20, "about 7 MiB of data")
    // Both read back as the raw image (qemu-img compare allows the rounded-up tail of zeros).
    XCTAssertEqual(try qemuVirtualSize(folder.file("vmlab.vhd")), try qemuVirtualSize(folder.file("qemu.vhd")))
    let compare = try runTool(qemu, ["compare", "-f", "raw", "-F", "vpc", raw, folder.file("vmlab.vhd")])
    XCTAssertEqual(compare.status, 0, compare.output + compare.error)
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
    let size = Int(DiskGeometry.rounding(size: 16 << 20).size)
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
