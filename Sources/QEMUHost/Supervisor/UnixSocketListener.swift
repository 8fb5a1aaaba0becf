import Foundation
import LabKit

#if canImport(Glibc)
  import Glibc
#endif

/// A listening UNIX stream socket whose connections carry JSON lines: the supervisor's control
/// socket. A socket file left by a dead process is replaced; a live listener there is an error.
public final class UnixSocketListener: @unchecked Sendable {
  public let path: String
  private var descriptor: Int32

  public init(path: String) throws {
    self.path = path
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard path.utf8.count < capacity else {
      throw LabKitError(
        .invalidArgument, "the socket path \(path) is longer than UNIX sockets allow (\(capacity - 1) bytes)")
    }
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8) }
    if (try? JSONLineConnection(path: path, timeout: 0)) != nil {
      throw LabKitError(.invalidState, "another process already listens on \(path)")
    }
    unlink(path)
    descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard descriptor >= 0 else {
      throw LabKitError(.failed, "cannot create a socket: \(String(cString: strerror(errno)))")
    }
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    guard bound == 0, listen(descriptor, 16) == 0 else {
      let reason = String(cString: strerror(errno))
      Glibc.close(descriptor)
      throw LabKitError(.failed, "cannot listen on \(path): \(reason)")
    }
  }

  deinit { close() }

  /// Waits up to `timeout` seconds for a client; nil when none came (or the listener was closed).
  public func accept(timeout: Double) -> JSONLineConnection? {
    guard descriptor >= 0 else { return nil }
    var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
    guard poll(&poller, 1, Int32(timeout * 1000)) > 0 else { return nil }
    let client = Glibc.accept(descriptor, nil, nil)
    guard client >= 0 else { return nil }
    _ = fcntl(client, F_SETFD, FD_CLOEXEC)
    return JSONLineConnection(acceptedDescriptor: client, path: path)
  }

  /// Stops listening and removes the socket file.
  public func close() {
    if descriptor >= 0 {
      Glibc.close(descriptor)
      descriptor = -1
      unlink(path)
    }
  }
}
