import Foundation
import LabKit

#if canImport(Glibc)
  import Glibc
#endif

/// `vm console --attach`: the user's terminal joined to a VM's serial console socket. Keys go to
/// the guest as typed (the terminal in raw mode) until Ctrl-], which detaches and leaves the VM
/// running. Without a terminal, what standard input holds is sent, and the guest's answer is
/// printed until it falls silent for a moment.
public enum ConsoleAttachment {
  /// Ctrl-], as telnet and `virsh console` use it.
  public static let detachKey: UInt8 = 0x1D

  public static func attach(vmFolder: String, quietTime: Double = 1.5) throws {
    let socketPath = QEMURuntimeFolder(vmFolder: vmFolder).consoleSocket
    let connection: Int32
    do {
      connection = try JSONLineConnection.connectedDescriptor(path: socketPath, timeout: 1)
    } catch {
      throw LabKitError(
        .invalidState, "the VM's serial console does not answer at \(socketPath) (is the VM running?): \(error)")
    }
    defer { close(connection) }
    let terminal = isatty(STDIN_FILENO) == 1
    var saved = termios()
    if terminal {
      tcgetattr(STDIN_FILENO, &saved)
      var raw = saved
      cfmakeraw(&raw)
      tcsetattr(STDIN_FILENO, TCSANOW, &raw)
      FileHandle.standardError.write(Data("attached to the serial console; Ctrl-] detaches\r\n".utf8))
    }
    defer {
      if terminal {
        var restored = saved
        tcsetattr(STDIN_FILENO, TCSANOW, &restored)
        FileHandle.standardError.write(Data("\ndetached; the VM keeps running\n".utf8))
      }
    }
    var inputOpen = true
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
      var fds = [pollfd(fd: connection, events: Int16(POLLIN), revents: 0)]
      if inputOpen { fds.append(pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)) }
      let ready = poll(&fds, nfds_t(fds.count), inputOpen ? -1 : Int32(quietTime * 1000))
      if ready < 0 && errno == EINTR { continue }
      if ready == 0 { return }  // input done and the guest quiet
      if fds[0].revents != 0 {
        let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
        if count <= 0 { return }  // the VM stopped
        _ = buffer.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, count) }
      }
      if inputOpen && fds[1].revents != 0 {
        let count = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
        if count <= 0 {
          inputOpen = false
          continue
        }
        var bytes = Array(buffer[..<count])
        if terminal, let escape = bytes.firstIndex(of: detachKey) {
          bytes = Array(bytes[..<escape])
          _ = bytes.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
          return
        }
        _ = bytes.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
      }
    }
  }
}
