import Foundation
import NBD
import TestSupport
import XCTest

final class TransmissionTests: XCTestCase {
  func testStructuredReadSendsHolesAsHoleChunks() throws {
    let device = MemoryDevice(size: 1 << 20, holes: [65536..<196608])
    let served = try ServedDevice(device, test: self)
    let client = try served.client()
    try client.connect()
    let read = try client.structuredRead(offset: 4096, length: 256 << 10)
    XCTAssertEqual(read.bytes, Array(device.contents[4096..<(4096 + (256 << 10))]))
    XCTAssertEqual(read.holes, 1)
    XCTAssertEqual(read.dataChunks, 2)
    // Don't fragment: one data chunk, zeros included.
    let whole = try client.structuredRead(offset: 4096, length: 256 << 10, cookie: 2, flags: 4)
    XCTAssertEqual(whole.bytes, read.bytes)
    XCTAssertEqual(whole.holes, 0)
    XCTAssertEqual(whole.dataChunks, 1)
  }

  func testSimpleRepliesWithoutStructuredNegotiation() throws {
    let device = MemoryDevice(size: 1 << 20, holes: [0..<8192])
    let served = try ServedDevice(device, test: self)
    let client = try served.client()
    let (_, flags) = try client.connect(structured: false, allocation: false)
    XCTAssertEqual(flags & 128, 0)
    client.request(0, cookie: 77, offset: 4096, length: 16384)
    let reply = try client.simpleReply()
    XCTAssertEqual(reply.error, 0)
    XCTAssertEqual(reply.cookie, 77)
    XCTAssertEqual(client.receive(16384), Array(device.contents[4096..<20480]))
    client.request(0, cookie: 78, offset: 1 << 20, length: 512)
    XCTAssertEqual(try client.simpleReply().error, 22, "past the end: EINVAL and no data")
    client.request(3, cookie: 79, offset: 0, length: 0)
    XCTAssertEqual(try client.simpleReply().cookie, 79, "the stream stayed in step")
  }

  func testWriteFUAFlushAndZeroes() throws {
    let device = MemoryDevice(size: 1 << 20)
    let served = try ServedDevice(device, test: self)
    let client = try served.client()
    try client.connect()
    let payload = (0..<8192).map { UInt8(truncatingIfNeeded: $0 * 13) }
    client.request(1, flags: 1, cookie: 1, offset: 12288, length: 8192, payload: payload)
    XCTAssertEqual(try client.simpleReply().error, 0)
    XCTAssertEqual(Array(device.contents[12288..<20480]), payload)
    XCTAssertEqual(device.durableWrites, 1, "FUA reaches the device")
    client.request(3, cookie: 2, offset: 0, length: 0)
    XCTAssertEqual(try client.simpleReply().error, 0)
    XCTAssertEqual(device.flushCount, 1)
    client.request(6, flags: 16, cookie: 3, offset: 0, length: 4096)
    XCTAssertEqual(try client.simpleReply().error, 95, "FAST_ZERO the device cannot do fast: ENOTSUP")
    XCTAssertNotEqual(Array(device.contents[0..<4096]), [UInt8](repeating: 0, count: 4096), "and nothing changed")
    client.request(6, cookie: 4, offset: 0, length: 4096)
    XCTAssertEqual(try client.simpleReply().error, 0)
    XCTAssertEqual(Array(device.contents[0..<4096]), [UInt8](repeating: 0, count: 4096))
    client.request(3, cookie: 5, offset: 4096, length: 0)
    XCTAssertEqual(try client.simpleReply().error, 22, "a flush with an offset is invalid")
  }

  func testBlockStatusDescribesDataAndHoles() throws {
    let device = MemoryDevice(size: 1 << 20, holes: [65536..<131072])
    let served = try ServedDevice(device, test: self)
    let client = try served.client()
    try client.connect()
    client.request(7, cookie: 1, offset: 0, length: 1 << 20)
    let chunks = try client.structuredReply()
    XCTAssertEqual(chunks.count, 1)
    XCTAssertEqual(chunks[0].type, 5)
    let payload = chunks[0].payload
    XCTAssertEqual(u32(payload, 0), 1, "the id given to base:allocation")
    let descriptors = stride(from: 4, to: payload.count, by: 8).map { (u32(payload, $0), u32(payload, $0 + 4)) }
    XCTAssertEqual(descriptors.map(\.0), [65536, 65536, (1 << 20) - 131072])
    XCTAssertEqual(descriptors.map(\.1), [0, 3, 0])
    client.request(7, flags: 8, cookie: 2, offset: 65536, length: 1 << 19)
    let one = try client.structuredReply()
    XCTAssertEqual(one[0].payload.count, 12, "REQ_ONE: a single descriptor")
    XCTAssertEqual(u32(one[0].payload, 8), 3)
    client.request(7, cookie: 3, offset: 1 << 20, length: 512)
    XCTAssertEqual(try client.structuredError(cookie: 3), 22)
  }

  func testBlockStatusNeedsTheContext() throws {
    let served = try ServedDevice(MemoryDevice(size: 65536), test: self)
    let client = try served.client()
    try client.connect(allocation: false)
    client.request(7, cookie: 1, offset: 0, length: 4096)
    XCTAssertEqual(try client.structuredError(cookie: 1), 22)
  }

  func testSixteenReadsRunAtOnceAndRepliesCarryTheirCookies() throws {
    let device = MemoryDevice(size: 1 << 20)
    let served = try ServedDevice(device, test: self)
    let client = try served.client()
    try client.connect()
    device.waitForReads(16)
    for index in 0..<16 {
      client.request(0, cookie: UInt64(1000 + index), offset: UInt64(index) * 4096, length: 4096)
    }
    var seen: Set<UInt64> = []
    for _ in 0..<16 {
      let chunks = try client.structuredReply()
      let cookie = chunks[0].cookie
      let index = Int(cookie - 1000)
      XCTAssertEqual(Array(chunks[0].payload[8...]), Array(device.contents[(index * 4096)..<((index + 1) * 4096)]))
      seen.insert(cookie)
    }
    XCTAssertEqual(seen.count, 16)
    XCTAssertEqual(device.largestConcurrency, 16, "all 16 reads were inside the device at once")
  }

  func testSeveralConnectionsShareTheDevice() throws {
    let device = MemoryDevice(size: 65536)
    let served = try ServedDevice(device, test: self)
    let writer = try served.client()
    let reader = try served.client()
    try writer.connect()
    try reader.connect()
    let payload = [UInt8](repeating: 0x5A, count: 4096)
    writer.request(1, cookie: 1, offset: 8192, length: 4096, payload: payload)
    XCTAssertEqual(try writer.simpleReply().error, 0)
    XCTAssertEqual(try reader.structuredRead(offset: 8192, length: 4096).bytes, payload)
  }

  func testPausedExportHoldsRequestsUntilResumeAndCanSwitchDevices() throws {
    let first = MemoryDevice(size: 65536, pattern: 1)
    let served = try ServedDevice(first, test: self)
    let client = try served.client()
    try client.connect()
    served.export.pause()
    XCTAssertTrue(served.export.paused)
    client.setTimeout(0.3)
    client.request(0, cookie: 1, offset: 0, length: 512)
    XCTAssertNil(client.receive(20), "no reply while paused")
    client.setTimeout(10)

    XCTAssertThrowsError(try served.export.replaceDevice(with: MemoryDevice(size: 4096))) {
      XCTAssertTrue(String(describing: $0).contains("65536"), "the error names the size clients were told")
    }
    let second = MemoryDevice(size: 65536, pattern: 2)
    try served.export.replaceDevice(with: second)
    served.export.resume()
    let chunks = try client.structuredReply()
    XCTAssertEqual(Array(chunks[0].payload[8...]), [UInt8](repeating: 2, count: 512), "served from the new device")

    XCTAssertThrowsError(try served.export.replaceDevice(with: first), "only a paused export can switch")
    var flushedTogether = false
    try Export.switchTogether([served.export]) {
      flushedTogether = second.flushCount == 1 && served.export.paused
      try served.export.replaceDevice(with: first)
    }
    XCTAssertTrue(flushedTogether, "switchTogether flushes while paused")
    XCTAssertFalse(served.export.paused)
    XCTAssertEqual(try client.structuredRead(offset: 0, length: 16, cookie: 2).bytes, [UInt8](repeating: 1, count: 16))
  }

  func testStopEndsConnectionsAndRemovesTheSocket() throws {
    let served = try ServedDevice(MemoryDevice(size: 65536), test: self)
    let client = try served.client()
    try client.connect()
    served.server.stop()
    XCTAssertTrue(client.closedByServer())
    XCTAssertFalse(FileManager.default.fileExists(atPath: served.socket))
  }
}
