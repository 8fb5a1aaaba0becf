import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A listening UNIX stream socket at a path. A stale socket file left by a server that died is
/// replaced; a live one, or any other kind of file, is refused.
final class UnixListener: @unchecked Sendable {
  let path: String
  private let descriptor: Int32
  private let lock = NSLock()
  private var isClosed = false

  init(path: String) throws {
    self.path = path
    let maximum = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1
    guard path.utf8.count <= maximum else {
      throw NBDServerError(
        "the socket path \(path) is \(path.utf8.count) bytes; UNIX sockets allow \(maximum), choose a shorter one")
    }
    var info = stat()
    if lstat(path, &info) == 0 {
      guard info.st_mode & S_IFMT == S_IFSOCK else {
        throw NBDServerError("\(path) exists and is not a socket; choose another --socket path or remove the file")
      }
      if UnixListener.someoneListens(at: path) {
        throw NBDServerError("another server is listening on \(path); stop it or choose another --socket path")
      }
      unlink(path)
    }
    descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard descriptor >= 0 else { throw NBDServerError("cannot create a socket: \(String(cString: strerror(errno)))") }
    var address = UnixListener.address(path)
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    guard bound == 0, listen(descriptor, 64) == 0 else {
      let reason = String(cString: strerror(errno))
      Glibc.close(descriptor)
      throw NBDServerError("cannot listen on \(path): \(reason)")
    }
  }

  /// Waits for the next client; nil once the listener is closed.
  func accept() -> Int32? {
    while true {
      let client = Glibc.accept(descriptor, nil, nil)
      if client >= 0 {
        _ = fcntl(client, F_SETFD, FD_CLOEXEC)
        return client
      }
      if errno == EINTR || errno == ECONNABORTED { continue }
      if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM {
        // Out of descriptors for a moment: wait instead of spinning, then try again.
        usleep(10_000)
        if lock.withLock({ isClosed }) { return nil }
        continue
      }
      return nil
    }
  }

  /// Stops accepting (a thread blocked in `accept` returns nil) and removes the socket file.
  func close() {
    lock.lock()
    defer { lock.unlock() }
    guard !isClosed else { return }
    isClosed = true
    _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR))
    _ = Glibc.close(descriptor)
    unlink(path)
  }

  private static func address(_ path: String) -> sockaddr_un {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      let bytes = Array(path.utf8)
      raw.copyBytes(from: bytes)
      raw[bytes.count] = 0
    }
    return address
  }

  private static func someoneListens(at path: String) -> Bool {
    let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard probe >= 0 else { return false }
    defer { Glibc.close(probe) }
    var address = address(path)
    return withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
      }
    }
  }
}
