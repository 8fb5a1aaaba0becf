import Foundation
import NBD
import TestSupport
import XCTest

/// Clients that break the protocol get an error or a closed connection: never a crash, a write, a
/// hang of other clients, or a buffer as large as they ask for.
final class HostileClientTests: XCTestCase {
  private var served: ServedDevice!

  override func setUpWithError() throws {
    served = try ServedDevice(MemoryDevice(size: 1 << 20), test: self)
  }

  /// A well-behaved client still gets its data after the hostile one did its worst.
  private func assertOthersAreServed(file: StaticString = #filePath, line: UInt = #line) throws {
    let client = try served.client()
    try client.connect()
    let read = try client.structuredRead(offset: 4096, length: 4096)
    XCTAssertEqual(read.bytes, Array(served.device.contents[4096..<8192]), file: file, line: line)
    XCTAssertEqual(served.device.writeCount, 0, "nothing was written", file: file, line: line)
  }

  func testBadOptionMagicClosesTheConnection() throws {
    let client = try served.client()
    try client.greet()
    client.send(Array("NOTMAGIC".utf8) + be(UInt32(7)) + be(UInt32(0)))
    XCTAssertTrue(client.closedByServer())
    try assertOthersAreServed()
  }

  func testUnknownClientFlagsCloseTheConnection() throws {
    let client = try served.client()
    try client.greet(flags: 0x8000_0001)
    XCTAssertTrue(client.closedByServer())
    try assertOthersAreServed()
  }

  func testGarbageAfterTheGreetingClosesTheConnection() throws {
    let client = try served.client()
    _ = client.receive(18)
    var generator = SystemRandomNumberGenerator()
    client.send((0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) } + [0xFF])
    XCTAssertTrue(client.closedByServer())
    try assertOthersAreServed()
  }

  func testAnOptionOfFourGiBClosesTheConnectionAtOnce() throws {
    let client = try served.client(timeout: 5)
    try client.greet()
    client.send(be(RawClient.optionMagic) + be(UInt32(7)) + be(UInt32.max) + [1, 2, 3, 4])
    XCTAssertTrue(client.closedByServer(), "closed instead of waiting for 4 GiB")
    try assertOthersAreServed()
  }

  func testBadRequestMagicClosesTheConnection() throws {
    let client = try served.client()
    try client.connect()
    client.send([0xDE, 0xAD, 0xBE, 0xEF] + [UInt8](repeating: 0, count: 24))
    XCTAssertTrue(client.closedByServer())
    try assertOthersAreServed()
  }

  func testOutOfRangeAndOverlongRequestsAreRefused() throws {
    let client = try served.client()
    try client.connect()
    let size: UInt64 = 1 << 20
    client.request(0, cookie: 1, offset: size - 512, length: 1024)
    XCTAssertEqual(try client.structuredError(cookie: 1), 22, "read past the end: EINVAL")
    client.request(0, cookie: 2, offset: UInt64.max - 100, length: 512)
    XCTAssertEqual(try client.structuredError(cookie: 2), 22, "an offset that would wrap: EINVAL")
    client.request(0, cookie: 3, offset: 0, length: (32 << 20) + 1)
    XCTAssertEqual(try client.structuredError(cookie: 3), 22, "longer than the maximum block size: EINVAL")
    client.request(1, cookie: 4, offset: size - 512, length: 1024, payload: [UInt8](repeating: 7, count: 1024))
    XCTAssertEqual(try client.simpleReply().error, 28, "write past the end: ENOSPC")
    client.request(6, cookie: 5, offset: size, length: 1)
    XCTAssertEqual(try client.simpleReply().error, 28, "zeroes past the end: ENOSPC")
    client.request(0, flags: 0x40, cookie: 6, offset: 0, length: 512)
    XCTAssertEqual(try client.structuredError(cookie: 6), 22, "an unknown flag: EINVAL")
    client.request(42, cookie: 7, offset: 0, length: 0)
    XCTAssertEqual(try client.simpleReply().error, 22, "an unknown command: EINVAL")
    client.request(0, cookie: 8, offset: 0, length: 0)
    XCTAssertEqual(try client.structuredError(cookie: 8), 22, "an empty read: EINVAL")
    // Still in step after all of that.
    XCTAssertEqual(
      try client.structuredRead(offset: 0, length: 512, cookie: 9).bytes, Array(served.device.contents[0..<512]))
    XCTAssertEqual(served.device.writeCount, 0)
  }

  func testAWriteLongerThanTheMaximumClosesTheConnectionWithoutWriting() throws {
    let client = try served.client()
    try client.connect()
    client.request(1, cookie: 1, offset: 0, length: UInt32.max, payload: [UInt8](repeating: 1, count: 65536))
    XCTAssertTrue(client.closedByServer())
    try assertOthersAreServed()
  }

  func testAClientThatLeavesMidPayloadWritesNothing() throws {
    do {
      let client = try served.client()
      try client.connect()
      client.request(1, cookie: 1, offset: 0, length: 65536, payload: [UInt8](repeating: 9, count: 30000))
    }  // the client's socket closes here, 35,536 bytes short
    try assertOthersAreServed()
    XCTAssertEqual(Array(served.device.contents[0..<4]), Array(MemoryDevice(size: 4).contents))
  }

  func testWritesOnAReadOnlyExportAreRefusedWithEPERM() throws {
    let readOnly = try ServedDevice(MemoryDevice(size: 65536, readOnly: true), test: self)
    let client = try readOnly.client()
    try client.connect()
    client.request(1, cookie: 1, offset: 0, length: 4096, payload: [UInt8](repeating: 1, count: 4096))
    XCTAssertEqual(try client.simpleReply().error, 1)
    client.request(6, cookie: 2, offset: 0, length: 4096)
    XCTAssertEqual(try client.simpleReply().error, 1)
    client.request(4, cookie: 3, offset: 0, length: 4096)
    XCTAssertEqual(try client.simpleReply().error, 1)
    XCTAssertEqual(
      try client.structuredRead(offset: 0, length: 8, cookie: 4).bytes, Array(readOnly.device.contents[0..<8]))
    XCTAssertEqual(readOnly.device.writeCount, 0)
  }

  func testConnectionsBeyondTheMaximumAreClosed() throws {
    let small = try ServedDevice(MemoryDevice(size: 65536), maximumConnections: 2, test: self)
    let first = try small.client()
    let second = try small.client()
    try first.connect()
    try second.connect()
    let third = try small.client()
    XCTAssertTrue(third.closedByServer())
    XCTAssertEqual(try first.structuredRead(offset: 0, length: 8).bytes.count, 8)
  }
}

extension HostileClientTests {
  func testAClientSilentInTheHandshakeIsClosedAfterTheDeadline() throws {
    let strict = try ServedDevice(MemoryDevice(size: 65536), handshakeTimeout: 0.3, test: self)
    let silent = try strict.client(timeout: 10)
    _ = silent.receive(18)
    let started = Date()
    XCTAssertTrue(silent.closedByServer())
    XCTAssertLessThan(Date().timeIntervalSince(started), 5)
    try assertOthersAreServed()
  }
}

extension HostileClientTests {
  /// Seeded streams of requests with random commands, flags, offsets and lengths (writes with their
  /// payload when it is small): the server answers or hangs up, and keeps serving everyone else.
  func testRandomRequestsNeitherCrashNorStopTheServer() throws {
    var random = SeededBytes(seed: 77)
    for _ in 0..<8 {
      let client = try served.client(timeout: 5)
      let structured = random.int(0..<2) == 1
      try client.connect(structured: structured, allocation: structured && random.int(0..<2) == 1)
      for cookie in 0..<40 {
        let command = UInt16(random.int(0..<12))
        let flags = UInt16(truncatingIfNeeded: random.next())
        let offset = random.int(0..<4) == 0 ? random.next() : UInt64(random.int(0..<(2 << 20)))
        let length = random.int(0..<4) == 0 ? UInt32(truncatingIfNeeded: random.next()) : UInt32(random.int(0..<65536))
        let payload = command == 1 && length <= 65536 ? random.bytes(Int(length)) : []
        client.request(command, flags: flags, cookie: UInt64(cookie), offset: offset, length: length, payload: payload)
      }
    }
    try assertOthersAreServedAfterWrites()
  }

  /// Like `assertOthersAreServed`, for tests whose random writes may have landed: first waits (with a
  /// deadline) until the server has finished with every earlier connection, so none still writes.
  private func assertOthersAreServedAfterWrites() throws {
    let deadline = Date().addingTimeInterval(20)
    while served.server.connectionCount > 0 {
      guard Date() < deadline else { return XCTFail("connections still open after 20 s") }
      usleep(10_000)
    }
    let client = try served.client()
    try client.connect()
    let read = try client.structuredRead(offset: 0, length: 65536)
    XCTAssertEqual(read.bytes, Array(served.device.contents[0..<65536]))
  }
}
