import Foundation
import NBD
import TestSupport
import XCTest

/// A server on a socket in a temporary folder, stopped by the test's teardown even when it fails.
final class ServedDevice {
  let folder: TemporaryFolder
  let device: MemoryDevice
  let export: Export
  let server: NBDServer
  var socket: String { server.socketPath }

  init(
    _ device: MemoryDevice, name: String = "memory", maximumConnections: Int = 32, handshakeTimeout: TimeInterval = 30,
    test: XCTestCase
  ) throws {
    folder = TemporaryFolder()
    self.device = device
    export = Export(name: name, details: "a test device", device: device)
    server = try NBDServer(
      export: export, socketPath: folder.file("nbd.sock"), maximumConnections: maximumConnections,
      handshakeTimeout: handshakeTimeout)
    server.start()
    test.addTeardownBlock { [server, export] in
      export.resume()
      server.stop()
    }
  }

  func client(timeout: TimeInterval = 10) throws -> RawClient { try RawClient(socket: socket, timeout: timeout) }
}

extension RawClient {
  /// Reads `length` bytes at `offset` through a structured reply and reassembles the chunks.
  func structuredRead(offset: UInt64, length: Int, cookie: UInt64 = 1, flags: UInt16 = 0) throws -> (
    bytes: [UInt8], holes: Int, dataChunks: Int
  ) {
    request(0, flags: flags, cookie: cookie, offset: offset, length: UInt32(length))
    var bytes = [UInt8](repeating: 0xEE, count: length)
    var holes = 0
    var data = 0
    for chunk in try structuredReply() {
      XCTAssertEqual(chunk.cookie, cookie)
      switch chunk.type {
      case 1:
        let at = Int(u64(chunk.payload, 0) - offset)
        bytes.replaceSubrange(at..<(at + chunk.payload.count - 8), with: chunk.payload[8...])
        data += 1
      case 2:
        let at = Int(u64(chunk.payload, 0) - offset)
        let count = Int(u32(chunk.payload, 8))
        bytes.replaceSubrange(at..<(at + count), with: [UInt8](repeating: 0, count: count))
        holes += 1
      case 0:
        break
      default:
        XCTFail("unexpected chunk type \(chunk.type): error \(u32(chunk.payload, 0))")
      }
    }
    return (bytes, holes, data)
  }

  /// The error number of a structured error reply (the only chunk).
  func structuredError(cookie: UInt64) throws -> UInt32 {
    let chunks = try structuredReply()
    XCTAssertEqual(chunks.count, 1)
    XCTAssertEqual(chunks[0].cookie, cookie)
    XCTAssertEqual(chunks[0].type, 0x8001, "expected an error chunk")
    return chunks[0].payload.count >= 4 ? u32(chunks[0].payload, 0) : 0
  }
}
