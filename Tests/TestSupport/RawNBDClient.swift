import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// A hand-driven NBD client (for the NBD server's tests) on a raw UNIX socket: it can send anything, well-formed or not, and
/// every receive gives up after a deadline (SO_RCVTIMEO), so a test never hangs on a silent server.
public final class RawClient {
  private let descriptor: Int32

  public init(socket path: String, timeout: TimeInterval = 10) throws {
    descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      let bytes = Array(path.utf8)
      raw.copyBytes(from: bytes)
      raw[bytes.count] = 0
    }
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    guard connected == 0 else {
      close(descriptor)
      throw NSError(
        domain: "RawClient", code: Int(errno), userInfo: [NSLocalizedDescriptionKey: "cannot connect to \(path)"])
    }
    setTimeout(timeout)
  }

  deinit { close(descriptor) }

  public func setTimeout(_ timeout: TimeInterval) {
    var value = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - floor(timeout)) * 1_000_000))
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
  }

  public func send(_ bytes: [UInt8]) {
    var done = 0
    while done < bytes.count {
      let sent = bytes.withUnsafeBytes {
        Glibc.send(descriptor, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
      }
      if sent <= 0 { return }
      done += sent
    }
  }

  /// Exactly `count` bytes, or nil when the server closed the connection or the deadline passed.
  public func receive(_ count: Int) -> [UInt8]? {
    var bytes = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
      let got = bytes.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress! + done, count - done, 0) }
      if got <= 0 { return nil }
      done += got
    }
    return bytes
  }

  /// True when the server closes the connection (end of stream) before the deadline; data that
  /// arrives first is skipped.
  public func closedByServer() -> Bool {
    var scratch = [UInt8](repeating: 0, count: 4096)
    while true {
      let got = scratch.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress!, 4096, 0) }
      if got == 0 { return true }
      if got < 0 { return errno == ECONNRESET }
    }
  }

  // MARK: Protocol helpers

  public static let optionMagic: UInt64 = 0x4948_4156_454f_5054

  /// Reads the greeting and answers with `flags`; returns the server's handshake flags.
  @discardableResult
  public func greet(flags: UInt32 = 3) throws -> UInt16 {
    let greeting = try XCTUnwrap(receive(18), "no greeting")
    XCTAssertEqual(Array(greeting[0..<8]), Array("NBDMAGIC".utf8))
    XCTAssertEqual(Array(greeting[8..<16]), Array("IHAVEOPT".utf8))
    send(be(flags))
    return UInt16(greeting[16]) << 8 | UInt16(greeting[17])
  }

  public func sendOption(_ option: UInt32, _ data: [UInt8] = []) {
    send(be(RawClient.optionMagic) + be(option) + be(UInt32(data.count)) + data)
  }

  public func optionReply() throws -> (option: UInt32, type: UInt32, data: [UInt8]) {
    let header = try XCTUnwrap(receive(20), "no option reply")
    XCTAssertEqual(Array(header[0..<8]), be(UInt64(0x0003_e889_0455_65a9)))
    let length = Int(u32(header, 16))
    let data = length > 0 ? try XCTUnwrap(receive(length), "option reply cut short") : []
    return (u32(header, 8), u32(header, 12), data)
  }

  /// Negotiates and enters transmission with NBD_OPT_GO; returns the export size and flags.
  @discardableResult
  public func connect(structured: Bool = true, allocation: Bool = true, name: String = "") throws -> (
    size: UInt64, flags: UInt16
  ) {
    try greet()
    if structured {
      sendOption(8)
      XCTAssertEqual(try optionReply().type, 1)
    }
    if allocation {
      let query = Array("base:allocation".utf8)
      sendOption(10, be(UInt32(name.utf8.count)) + Array(name.utf8) + be(UInt32(1)) + be(UInt32(query.count)) + query)
      XCTAssertEqual(try optionReply().type, 4)
      XCTAssertEqual(try optionReply().type, 1)
    }
    sendOption(7, be(UInt32(name.utf8.count)) + Array(name.utf8) + be(UInt16(0)))
    var size: UInt64 = 0
    var flags: UInt16 = 0
    while true {
      let reply = try optionReply()
      if reply.type == 1 { break }
      XCTAssertEqual(reply.type, 3, "unexpected reply to NBD_OPT_GO: \(reply.type)")
      if reply.data.count == 12 && reply.data[0] == 0 && reply.data[1] == 0 {
        size = u64(reply.data, 2)
        flags = UInt16(reply.data[10]) << 8 | UInt16(reply.data[11])
      }
    }
    return (size, flags)
  }

  public func request(
    _ command: UInt16, flags: UInt16 = 0, cookie: UInt64, offset: UInt64, length: UInt32, payload: [UInt8] = []
  ) {
    send(be(UInt32(0x2560_9513)) + be(flags) + be(command) + be(cookie) + be(offset) + be(length) + payload)
  }

  /// A simple reply's error and cookie.
  public func simpleReply() throws -> (error: UInt32, cookie: UInt64) {
    let header = try XCTUnwrap(receive(16), "no reply")
    XCTAssertEqual(u32(header, 0), 0x6744_6698, "not a simple reply")
    return (u32(header, 4), u64(header, 8))
  }

  public func chunk() throws -> (flags: UInt16, type: UInt16, cookie: UInt64, payload: [UInt8]) {
    let header = try XCTUnwrap(receive(20), "no reply chunk")
    XCTAssertEqual(u32(header, 0), 0x668e_33ef, "not a structured reply")
    let length = Int(u32(header, 16))
    let payload = length > 0 ? try XCTUnwrap(receive(length), "chunk cut short") : []
    return (
      UInt16(header[4]) << 8 | UInt16(header[5]), UInt16(header[6]) << 8 | UInt16(header[7]), u64(header, 8), payload
    )
  }

  /// All chunks of one structured reply, up to the one marked done.
  public func structuredReply() throws -> [(flags: UInt16, type: UInt16, cookie: UInt64, payload: [UInt8])] {
    var chunks: [(flags: UInt16, type: UInt16, cookie: UInt64, payload: [UInt8])] = []
    repeat { chunks.append(try chunk()) } while chunks.last!.flags & 1 == 0
    return chunks
  }
}

public func be<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
  withUnsafeBytes(of: value.bigEndian) { Array($0) }
}

public func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
  bytes[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) }
}

public func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
  bytes[at..<(at + 8)].reduce(0) { $0 << 8 | UInt64($1) }
}
