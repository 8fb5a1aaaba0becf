import NBD
import TestSupport
import XCTest

final class HandshakeTests: XCTestCase {
  func testGoReportsSizeFlagsAndBlockSizes() throws {
    let served = try ServedDevice(MemoryDevice(size: 1 << 20), test: self)
    let client = try served.client()
    let handshakeFlags = try client.greet()
    XCTAssertEqual(handshakeFlags, 3, "fixed newstyle and no zeroes")
    client.sendOption(7, be(UInt32(0)) + be(UInt16(1)) + be(UInt16(3)))
    var sizes: [UInt32] = []
    var flags: UInt16 = 0
    var size: UInt64 = 0
    while true {
      let reply = try client.optionReply()
      if reply.type == 1 { break }
      XCTAssertEqual(reply.type, 3)
      if reply.data.starts(with: [0, 0]) {
        size = u64(reply.data, 2)
        flags = UInt16(reply.data[10]) << 8 | UInt16(reply.data[11])
      }
      if reply.data.starts(with: [0, 3]) { sizes = [u32(reply.data, 2), u32(reply.data, 6), u32(reply.data, 10)] }
    }
    XCTAssertEqual(size, 1 << 20)
    XCTAssertEqual(sizes, [512, 4096, 32 << 20])
    XCTAssertEqual(flags & 2, 0, "not read-only")
    for (bit, name) in [
      (1, "has flags"), (4, "flush"), (8, "FUA"), (64, "write zeroes"), (256, "multi-conn"), (2048, "fast zero"),
    ] {
      XCTAssertNotEqual(flags & UInt16(bit), 0, name)
    }
    XCTAssertEqual(flags & 128, 0, "DF is offered only with structured replies")
    // Transmission works after GO.
    client.request(3, cookie: 9, offset: 0, length: 0)
    XCTAssertEqual(try client.simpleReply().error, 0)
    XCTAssertEqual(served.device.flushCount, 1)
  }

  func testReadOnlyExportSaysSoAndOffersNoWrites() throws {
    let served = try ServedDevice(MemoryDevice(size: 4096, readOnly: true), test: self)
    let (_, flags) = try served.client().connect()
    XCTAssertNotEqual(flags & 2, 0)
    XCTAssertEqual(flags & (32 | 64), 0, "no trim or write zeroes on a read-only export")
  }

  func testListInfoAndUnknownNames() throws {
    let served = try ServedDevice(MemoryDevice(size: 4096), name: "disk1", test: self)
    let client = try served.client()
    try client.greet()
    client.sendOption(3)
    let server = try client.optionReply()
    XCTAssertEqual(server.type, 2)
    XCTAssertEqual(String(decoding: server.data[4...], as: UTF8.self), "disk1")
    XCTAssertEqual(try client.optionReply().type, 1)
    client.sendOption(3, [1])
    XCTAssertEqual(try client.optionReply().type, 0x8000_0003, "LIST with data is invalid")

    let wrong = Array("disk2".utf8)
    client.sendOption(6, be(UInt32(wrong.count)) + wrong + be(UInt16(0)))
    let unknown = try client.optionReply()
    XCTAssertEqual(unknown.type, 0x8000_0006)
    XCTAssertTrue(String(decoding: unknown.data, as: UTF8.self).contains("disk1"), "the error names the export")

    let right = Array("disk1".utf8)
    client.sendOption(6, be(UInt32(right.count)) + right + be(UInt16(1)) + be(UInt16(2)))
    var described = ""
    while true {
      let reply = try client.optionReply()
      if reply.type == 1 { break }
      if reply.data.starts(with: [0, 2]) { described = String(decoding: reply.data[2...], as: UTF8.self) }
    }
    XCTAssertEqual(described, "a test device")
    // INFO leaves haggling open: GO by name still works.
    client.sendOption(7, be(UInt32(right.count)) + right + be(UInt16(0)))
    while try client.optionReply().type != 1 {}
  }

  func testUnsupportedOptionsAreRefusedAndHagglingGoesOn() throws {
    let served = try ServedDevice(MemoryDevice(size: 4096), test: self)
    let client = try served.client()
    try client.greet()
    for option: UInt32 in [5, 4, 11, 99, 0xFFFF_FFFF] {
      client.sendOption(option, [1, 2, 3])
      let reply = try client.optionReply()
      XCTAssertEqual(reply.option, option)
      XCTAssertEqual(reply.type, 0x8000_0001, "option \(option)")
    }
    client.sendOption(8, [0])
    XCTAssertEqual(try client.optionReply().type, 0x8000_0003, "STRUCTURED_REPLY takes no data")
    client.sendOption(9, be(UInt32(0)) + be(UInt32(0)))
    XCTAssertEqual(try client.optionReply().type, 0x8000_0003, "metadata contexts need structured replies first")
    client.sendOption(8)
    XCTAssertEqual(try client.optionReply().type, 1)
    client.sendOption(9, be(UInt32(0)) + be(UInt32(0)))
    let listed = try client.optionReply()
    XCTAssertEqual(listed.type, 4)
    XCTAssertEqual(String(decoding: listed.data[4...], as: UTF8.self), "base:allocation")
    XCTAssertEqual(try client.optionReply().type, 1)
    client.sendOption(9, be(UInt32(0)) + be(UInt32(5)))
    XCTAssertEqual(try client.optionReply().type, 0x8000_0003, "a query count the data does not hold")
    client.sendOption(2)
    XCTAssertEqual(try client.optionReply().type, 1, "abort is acknowledged")
    XCTAssertTrue(client.closedByServer())
  }

  func testExportNameSendsZeroesUnlessNegotiatedAway() throws {
    let served = try ServedDevice(MemoryDevice(size: 8192), test: self)
    for (clientFlags, expected) in [(UInt32(1), 10 + 124), (UInt32(3), 10)] {
      let client = try served.client()
      try client.greet(flags: clientFlags)
      client.sendOption(1)
      let reply = try XCTUnwrap(client.receive(expected))
      XCTAssertEqual(u64(reply, 0), 8192)
      client.request(0, cookie: 5, offset: 0, length: 512)
      XCTAssertEqual(try client.simpleReply().cookie, 5, "the bytes after the reply were not extra zeroes")
      XCTAssertEqual(client.receive(512), Array(served.device.contents[0..<512]))
    }
  }

  func testExportNameOfAnotherExportHangsUp() throws {
    let served = try ServedDevice(MemoryDevice(size: 8192), name: "one", test: self)
    let client = try served.client()
    try client.greet()
    client.sendOption(1, Array("two".utf8))
    XCTAssertTrue(client.closedByServer())
  }
}
