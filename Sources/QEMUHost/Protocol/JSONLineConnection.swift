import Foundation
import LabKit

#if canImport(Glibc)
  import Glibc
#endif

/// A client connection to a UNIX stream socket that carries one JSON object per line: QMP's
/// monitor socket, the guest agent's virtio-serial port, a supervisor's control socket. Every
/// wait has a deadline, since the other end is a guest or a process that may hang.
///
/// One of the few types that touch descriptors; the protocols above it speak in `JSONValue`s.
public final class JSONLineConnection: @unchecked Sendable {
  public let path: String
  private var descriptor: Int32
  /// Bytes received after the last complete line.
  private var pending: [UInt8] = []

  /// Connects to the socket at `path`, trying again until `timeout` seconds passed while the
  /// socket does not exist yet or nobody listens (a process that is starting up).
  public init(path: String, timeout: Double) throws {
    self.path = path
    descriptor = try Self.connectedDescriptor(path: path, timeout: timeout)
  }

  /// A descriptor connected to the UNIX stream socket at `path` (the caller closes it), trying
  /// again until `timeout` seconds passed while the socket does not exist yet or nobody listens.
  public static func connectedDescriptor(path: String, timeout: Double) throws -> Int32 {
    let deadline = Date().addingTimeInterval(timeout)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard path.utf8.count < capacity else {
      throw LabKitError(
        .invalidArgument, "the socket path \(path) is longer than UNIX sockets allow (\(capacity - 1) bytes)")
    }
    withUnsafeMutableBytes(of: &address.sun_path) { bytes in
      bytes.copyBytes(from: path.utf8)
    }
    while true {
      let candidate = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
      guard candidate >= 0 else {
        throw LabKitError(.failed, "cannot create a socket: \(String(cString: strerror(errno)))")
      }
      let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          connect(candidate, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
      }
      if connected == 0 { return candidate }
      let reason = errno
      Glibc.close(candidate)
      guard (reason == ENOENT || reason == ECONNREFUSED || reason == EAGAIN) && Date() < deadline else {
        throw LabKitError(
          .failed, "cannot connect to \(path): \(String(cString: strerror(reason)))")
      }
      usleep(20_000)
    }
  }

  /// Takes over an accepted connection (the server side: a supervisor's control socket).
  public init(acceptedDescriptor: Int32, path: String) {
    self.path = path
    descriptor = acceptedDescriptor
  }

  deinit { close() }

  public func close() {
    if descriptor >= 0 {
      Glibc.close(descriptor)
      descriptor = -1
    }
  }

  /// Sends one JSON object followed by a newline.
  public func send(_ message: JSONValue) throws {
    try send(bytes: Array(message.encoded()) + [UInt8(ascii: "\n")])
  }

  /// Sends raw bytes (the guest agent's 0xFF resynchronisation byte).
  public func send(bytes: [UInt8]) throws {
    var offset = 0
    while offset < bytes.count {
      let sent = bytes[offset...].withUnsafeBytes {
        Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
      }
      if sent < 0 {
        if errno == EINTR { continue }
        throw LabKitError(.failed, "cannot send to \(path): \(String(cString: strerror(errno)))")
      }
      offset += sent
    }
  }

  /// Waits up to `timeout` seconds for the next JSON object. Bytes 0xFF (the guest agent's
  /// delimiter before a `guest-sync-delimited` reply) and empty lines are skipped.
  public func receive(timeout: Double) throws -> JSONValue {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
      if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
        let line = pending[..<newline].filter { $0 != 0xFF && $0 != UInt8(ascii: "\r") }
        pending.removeSubrange(...newline)
        if line.allSatisfy({ $0 == UInt8(ascii: " ") }) { continue }
        do {
          return try JSONValue.decode(Data(line))
        } catch {
          throw LabKitError(
            .failed, "\(path) sent a line that is not JSON: \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
      }
      let remaining = deadline.timeIntervalSinceNow
      guard remaining > 0 else {
        throw LabKitError(.failed, "no answer from \(path) within \(Self.seconds(timeout))")
      }
      var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
      let ready = poll(&poller, 1, Int32(min(remaining * 1000, Double(Int32.max)).rounded(.up)))
      if ready < 0 && errno == EINTR { continue }
      guard ready > 0 else { continue }
      var buffer = [UInt8](repeating: 0, count: 64 << 10)
      let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
      if count < 0 && errno == EINTR { continue }
      guard count > 0 else {
        throw LabKitError(.failed, "\(path) closed the connection")
      }
      pending += buffer[..<count]
    }
  }

  static func seconds(_ value: Double) -> String {
    value >= 1 ? "\(Int(value.rounded())) s" : "\(Int((value * 1000).rounded())) ms"
  }
}
