import Foundation
import TestSupport
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// SIGKILL of `vmlab disk serve` in the middle of a stream of writes: the files must still pass
/// `vmlab disk check`, and every write the server acknowledged with FUA, or that an acknowledged
/// flush covered, must read back through `vmlab disk export`.
final class ServeCrashTests: XCTestCase {
  /// The writer, a libnbd client keeping `depth` writes in flight: 64 KiB slots in a shuffled order,
  /// each written once, filled with a 16-byte tag naming (seed, slot). Even-numbered writes carry FUA
  /// and are logged when acknowledged; the others are logged once a flush sent after their
  /// acknowledgement is acknowledged. Odd slots are written 500 bytes in and 1,000 bytes short, so
  /// sectors are read, modified and written.
  private static let writer = """
    import nbd, random, sys
    sock, log_path, seed, depth = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    h = nbd.NBD()
    h.set_strict_mode(0)
    h.connect_unix(sock)
    slot = 65536
    order = list(range(h.get_size() // slot))
    random.Random(seed).shuffle(order)
    log = open(log_path, 'a', buffering=1)
    inflight, completed = {}, []
    def reap():
        for cookie in list(inflight):
            if h.aio_command_completed(cookie):
                s, fua, _ = inflight.pop(cookie)
                if fua:
                    log.write(f'{s}\\n')
                else:
                    completed.append(s)
    for i, s in enumerate(order):
        data = f'{seed}:{s}:'.encode().ljust(16, b'.') * (slot // 16)
        offset = s * slot
        if s % 2 == 1:
            data, offset = data[:slot - 1000], offset + 500
        while h.aio_in_flight() >= depth:
            h.poll(-1)
            reap()
        buffer = nbd.Buffer.from_bytearray(bytearray(data))
        fua = i % 2 == 0
        inflight[h.aio_pwrite(buffer, offset, flags=nbd.CMD_FLAG_FUA if fua else 0)] = (s, fua, buffer)
        reap()
        if len(completed) >= 6:
            # The flush covers the writes acknowledged before it was sent.
            covered, completed[:] = completed[:], []
            h.flush()
            reap()
            log.write(''.join(f'{p}\\n' for p in covered))
    """

  private func expectedSlot(seed: Int, slot: Int) -> (offset: Int, bytes: [UInt8]) {
    var tag = Array("\(seed):\(slot):".utf8)
    tag += [UInt8](repeating: UInt8(ascii: "."), count: 16 - tag.count)
    var bytes = Array([[UInt8]](repeating: tag, count: 65536 / 16).joined())
    var offset = slot * 65536
    if slot % 2 == 1 {
      bytes = Array(bytes[0..<(65536 - 1000)])
      offset += 500
    }
    return (offset, bytes)
  }

  func testKilledServerKeepsEveryAcknowledgedWrite() throws {
    let python = "/usr/bin/python3"
    guard FileManager.default.isExecutableFile(atPath: python),
      try runProgram(python, ["-c", "import nbd"]).status == 0
    else { throw XCTSkip("python3-libnbd is not installed; Scripts/bootstrap installs it") }
    let folder = TemporaryFolder()
    var random = SeededBytes(seed: 21)
    XCTAssertTrue(
      FileManager.default.createFile(
        atPath: folder.file("base.raw"), contents: Data(random.bytes(8 << 20) + [UInt8](repeating: 0, count: 24 << 20)))
    )
    XCTAssertEqual(try vmlab(["disk", "import", "base.raw", "base.vhd"], in: folder.path).status, 0)
    XCTAssertEqual(try vmlab(["disk", "create", "child.vhd", "--parent", "base.vhd"], in: folder.path).status, 0)
    try ServeCrashTests.writer.write(toFile: folder.file("writer.py"), atomically: true, encoding: .utf8)

    var verified = 0
    // Each round serves the file the previous kill left behind.
    for (round, (target, depth)) in [(3, 1), (40, 16), (150, 1), (17, 16), (90, 16)].enumerated() {
      let seed = 100 + round
      let served = try ServeProcess(folder.file("child.vhd"), socket: folder.file("c.sock"), test: self)
      let log = folder.file("acked-\(round).log")
      let writer = Process()
      writer.executableURL = URL(fileURLWithPath: python)
      writer.arguments = [folder.file("writer.py"), served.socket, log, String(seed), String(depth)]
      writer.standardError = FileHandle.nullDevice
      try writer.run()
      defer { if writer.isRunning { kill(writer.processIdentifier, SIGKILL) } }

      // Kill once `target` writes are acknowledged (the writer is mid-stream then).
      let deadline = Date().addingTimeInterval(60)
      while (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").count ?? 0 < target {
        guard Date() < deadline, writer.isRunning else {
          XCTFail("round \(round): the writer stopped or stalled before \(target) acknowledged writes")
          break
        }
        usleep(2000)
      }
      XCTAssertNil(try served.stop(signal: SIGKILL), "the server died by SIGKILL")
      let writerDeadline = Date().addingTimeInterval(30)
      while writer.isRunning && Date() < writerDeadline { usleep(10_000) }

      let check = try vmlab(["disk", "check", "child.vhd"], in: folder.path)
      XCTAssertEqual(check.status, 0, "round \(round): \(check.output)\(check.error)")
      let export = try vmlab(["disk", "export", "child.vhd", "after.raw", "--force"], in: folder.path)
      XCTAssertEqual(export.status, 0, export.error)
      let disk = [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder.file("after.raw"))))
      let acknowledged = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").compactMap { Int($0) }
      XCTAssertGreaterThanOrEqual(acknowledged.count, target)
      XCTAssertLessThan(acknowledged.count, 512, "round \(round): the kill landed before the last write")
      for slot in acknowledged {
        let (offset, bytes) = expectedSlot(seed: seed, slot: slot)
        if Array(disk[offset..<(offset + bytes.count)]) != bytes {
          XCTFail("round \(round): acknowledged slot \(slot) (offset \(offset)) did not survive the kill")
        }
        verified += 1
      }
    }
    XCTAssertGreaterThan(verified, 300)
  }
}
