import Foundation
import TestSupport
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// `vmlab disk serve` against independent NBD clients: libnbd's nbdinfo, nbdcopy and nbdsh, and
/// qemu's qemu-img and qemu-io. What they write must read back through `vmlab disk export`, and the
/// files must pass `vmlab disk check`.
final class ServeCommandTests: XCTestCase {
  /// 16 MiB rounded up to a whole CHS geometry, as vmlab sizes disks, so the import keeps it and the
  /// last 2 MiB block is partial (4 KiB).
  private let size = 16_781_312

  /// base.vhd from a raw image with data in [0, 3 MiB) and [10 MiB, 11 MiB), zeros elsewhere (so
  /// blocks 2-4 and 6-7 of 2 MiB stay unallocated), and an empty child.vhd over it.
  private func makeChain(in folder: TemporaryFolder) throws -> [UInt8] {
    var random = SeededBytes(seed: 11)
    var base = [UInt8](repeating: 0, count: size)
    base.replaceSubrange(0..<(3 << 20), with: random.bytes(3 << 20))
    base.replaceSubrange((10 << 20)..<(11 << 20), with: random.bytes(1 << 20))
    XCTAssertTrue(FileManager.default.createFile(atPath: folder.file("base.raw"), contents: Data(base)))
    XCTAssertEqual(try vmlab(["disk", "import", "base.raw", "base.vhd"], in: folder.path).status, 0)
    XCTAssertEqual(try vmlab(["disk", "create", "child.vhd", "--parent", "base.vhd"], in: folder.path).status, 0)
    return base
  }

  private func contents(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
  }

  func testIndependentClientsReadAndWriteADifferencingChain() throws {
    let folder = TemporaryFolder()
    var expected = try makeChain(in: folder)
    let served = try ServeProcess(folder.file("child.vhd"), socket: folder.file("s.sock"), test: self)

    // nbdinfo: size, and the map from the sector bitmaps through the chain.
    var result = try runClient("nbdinfo", ["--json", served.uri])
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(result.output.contains("\"export-size\": \(size)"), result.output)
    result = try runClient("nbdinfo", ["--map", served.uri])
    XCTAssertEqual(result.status, 0, result.error)
    let map = result.output.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
    XCTAssertEqual(
      map.map { "\($0[0]) \($0[1]) \($0[2])" },
      ["0 4194304 0", "4194304 6291456 3", "10485760 2097152 0", "12582912 4198400 3"], result.output)

    // nbdcopy out (four connections: the server offers multi-conn) and qemu-img convert.
    result = try runClient("nbdcopy", [served.uri, folder.file("copy.raw")])
    XCTAssertEqual(result.status, 0, result.error)
    assertSameBytes(try contents(folder.file("copy.raw")), expected, "nbdcopy out")

    // nbdcopy in: a whole new image through the server into the differencing leaf.
    var random = SeededBytes(seed: 12)
    var incoming = random.bytes(size)
    incoming.replaceSubrange((6 << 20)..<(8 << 20), with: [UInt8](repeating: 0, count: 2 << 20))
    XCTAssertTrue(FileManager.default.createFile(atPath: folder.file("in.raw"), contents: Data(incoming)))
    result = try runClient("nbdcopy", [folder.file("in.raw"), served.uri])
    XCTAssertEqual(result.status, 0, result.error)
    expected = incoming

    // qemu-io: a pattern, asynchronous writes in flight together, a flush, and reads that check them.
    result = try runClient(
      "qemu-io",
      [
        "-f", "raw", "-c", "write -P 0xab 5M 64k", "-c", "aio_write -P 0x11 1M 4k", "-c", "aio_write -P 0x22 2M 4k",
        "-c", "aio_write -P 0x33 3M 4k", "-c", "aio_flush", "-c", "flush", "-c", "read -P 0xab 5M 64k",
        "-c", "read -P 0x22 2M 4k", served.uri,
      ])
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertFalse(result.output.contains("Pattern verification failed"), result.output)
    for (offset, count, byte) in [
      (5 << 20, 65536, 0xAB), (1 << 20, 4096, 0x11), (2 << 20, 4096, 0x22), (3 << 20, 4096, 0x33),
    ] {
      expected.replaceSubrange(offset..<(offset + count), with: [UInt8](repeating: UInt8(byte), count: count))
    }

    // nbdsh: a FUA write of two sectors, write-zeroes, and (libnbd's alignment checks off: the
    // server advertises 512-byte blocks but takes any) a write inside sectors, read-modify-write.
    result = try runClient(
      "nbdsh",
      [
        "-u", served.uri, "-c",
        """
        h.pwrite(b'vmlab' * 200 + b'!' * 24, 7680, nbd.CMD_FLAG_FUA)
        h.zero(1048576, 9437184)
        h.set_strict_mode(0)
        h.pwrite(b'odd', 20001)
        h.flush()
        print(h.get_size())
        """,
      ])
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertEqual(result.output.trimmingCharacters(in: .whitespacesAndNewlines), "\(size)")
    expected.replaceSubrange(
      7680..<(7680 + 1024),
      with: Array((String(repeating: "vmlab", count: 200) + String(repeating: "!", count: 24)).utf8))
    expected.replaceSubrange(20001..<20004, with: Array("odd".utf8))
    expected.replaceSubrange(9_437_184..<(9_437_184 + (1 << 20)), with: [UInt8](repeating: 0, count: 1 << 20))

    // qemu-img reads it all back as another format.
    result = try runClient(
      "qemu-img", ["convert", "-f", "raw", "-O", "qcow2", served.uri, folder.file("copy.qcow2")])
    XCTAssertEqual(result.status, 0, result.error)
    result = try runClient(
      "qemu-img", ["convert", "-f", "qcow2", "-O", "raw", folder.file("copy.qcow2"), folder.file("copy2.raw")])
    XCTAssertEqual(result.status, 0, result.error)
    assertSameBytes(try contents(folder.file("copy2.raw")), expected, "qemu-img convert")

    XCTAssertEqual(try served.stop(), 0, "SIGTERM: flush and exit 0")
    XCTAssertTrue(served.background.output.contains("the leaf is flushed"), served.background.output)
    XCTAssertFalse(FileManager.default.fileExists(atPath: served.socket), "the socket file is removed")

    result = try vmlab(["disk", "check", "child.vhd"], in: folder.path)
    XCTAssertEqual(result.status, 0, result.output + result.error)
    result = try vmlab(["disk", "export", "child.vhd", "final.raw"], in: folder.path)
    XCTAssertEqual(result.status, 0, result.error)
    assertSameBytes(try contents(folder.file("final.raw")), expected, "vmlab disk export after serving")
    result = try vmlab(["disk", "export", "base.vhd", "base-after.raw"], in: folder.path)
    assertSameBytes(
      try contents(folder.file("base-after.raw")), try contents(folder.file("base.raw")), "the parent is untouched")
  }

  func testReadOnlyExportRefusesWritesAndLeavesTheFileAlone() throws {
    let folder = TemporaryFolder()
    let base = try makeChain(in: folder)
    let before = try contents(folder.file("child.vhd"))
    let served = try ServeProcess(
      folder.file("child.vhd"), socket: folder.file("ro.sock"), extra: ["--read-only"], test: self)
    var result = try runClient("nbdinfo", [served.uri])
    XCTAssertTrue(result.output.contains("is_read_only: true"), result.output)
    // qemu-io sees the read-only flag and will not open the export for writing...
    result = try runClient("qemu-io", ["-f", "raw", "-c", "write -P 1 0 4k", served.uri])
    XCTAssertNotEqual(result.status, 0)
    XCTAssertTrue((result.output + result.error).contains("Permission denied"), result.output + result.error)
    // ...so libnbd, with its own checks off, sends the writes: the server refuses them with EPERM.
    result = try runClient(
      "nbdsh",
      [
        "-u", served.uri, "-c",
        """
        h.set_strict_mode(0)
        for call in (lambda: h.pwrite(b'x' * 4096, 0), lambda: h.zero(4096, 0), lambda: h.pwrite(b'y' * 512, 512, nbd.CMD_FLAG_FUA)):
            try:
                call()
                print('written')
            except nbd.Error as error:
                print('refused', error.errno)
        """,
      ])
    XCTAssertEqual(result.output, "refused EPERM\nrefused EPERM\nrefused EPERM\n", result.error)
    result = try runClient("nbdsh", ["-u", served.uri, "-c", "print(h.pread(512, 0)[:16].hex())"])
    XCTAssertEqual(
      result.output.trimmingCharacters(in: .whitespacesAndNewlines),
      base[0..<16].map { String(format: "%02x", $0) }.joined())
    XCTAssertEqual(try served.stop(signal: SIGINT), 0)
    assertSameBytes(try contents(folder.file("child.vhd")), before, "the served file")
  }

  func testServeRefusesBadPathsAndBusySockets() throws {
    let folder = TemporaryFolder()
    _ = try makeChain(in: folder)
    var result = try vmlab(["disk", "serve", "child.vhd"], in: folder.path)
    XCTAssertEqual(result.status, 2, "--socket is required")
    XCTAssertTrue(result.error.contains("--socket"), result.error)

    XCTAssertTrue(FileManager.default.createFile(atPath: folder.file("notes.txt"), contents: Data("keep me".utf8)))
    result = try vmlab(["disk", "serve", "notes.txt", "--socket", "x.sock"], in: folder.path)
    XCTAssertEqual(result.status, 1)
    XCTAssertTrue(result.error.contains("notes.txt"), result.error)
    XCTAssertFalse(result.signaled)

    result = try vmlab(["disk", "serve", "child.vhd", "--socket", "notes.txt"], in: folder.path)
    XCTAssertEqual(result.status, 1)
    XCTAssertTrue(result.error.contains("is not a socket"), result.error)
    XCTAssertEqual(try String(contentsOfFile: folder.file("notes.txt"), encoding: .utf8), "keep me")

    let served = try ServeProcess(folder.file("child.vhd"), socket: folder.file("busy.sock"), test: self)
    result = try vmlab(["disk", "serve", "base.vhd", "--socket", "busy.sock", "--read-only"], in: folder.path)
    XCTAssertEqual(result.status, 1)
    XCTAssertTrue(result.error.contains("another server is listening"), result.error)
    XCTAssertEqual(try served.stop(), 0)

    // A socket file left by a server that was killed is replaced.
    let killed = try ServeProcess(folder.file("child.vhd"), socket: folder.file("stale.sock"), test: self)
    XCTAssertNil(try killed.stop(signal: SIGKILL))
    XCTAssertTrue(FileManager.default.fileExists(atPath: folder.file("stale.sock")))
    let again = try ServeProcess(folder.file("child.vhd"), socket: folder.file("stale.sock"), test: self)
    XCTAssertEqual(
      try runClient("nbdinfo", ["--size", again.uri]).output.trimmingCharacters(in: .whitespacesAndNewlines), "\(size)")
    XCTAssertEqual(try again.stop(), 0)
  }

  func testExportNames() throws {
    let folder = TemporaryFolder()
    _ = try makeChain(in: folder)
    let plain = try ServeProcess(
      folder.file("child.vhd"), socket: folder.file("a.sock"), extra: ["--read-only"], test: self)
    var result = try runClient("nbdinfo", ["--list", plain.uri])
    XCTAssertTrue(result.output.contains("export=\"child\""), "named after the file: \(result.output)")
    XCTAssertEqual(try plain.stop(), 0)

    let named = try ServeProcess(
      folder.file("child.vhd"), socket: folder.file("b.sock"), extra: ["--name", "web01-disk1"], test: self)
    XCTAssertTrue(named.background.output.contains("as 'web01-disk1'"), named.background.output)
    result = try runClient("nbdinfo", ["--size", "nbd+unix:///web01-disk1?socket=\(named.socket)"])
    XCTAssertEqual(result.output.trimmingCharacters(in: .whitespacesAndNewlines), "\(size)", result.error)
    result = try runClient("nbdinfo", ["--size", "nbd+unix:///other?socket=\(named.socket)"])
    XCTAssertNotEqual(result.status, 0, "an unknown export name is refused")
    XCTAssertTrue(result.error.contains("no export named 'other'"), "refused as an unknown export: \(result.error)")
    XCTAssertEqual(try named.stop(), 0)
  }
}
