import Foundation
import XCTest

/// A loopback TCP port carried to a UNIX socket by a small Python forwarder (python3 is on every
/// machine the tests run on; the interoperability tests use it too). The cluster tests use it to
/// reach the socket-only test server over TCP, and to cut an agent off from the database and let
/// it back in on the same port.
public final class SocketForwarder {
  public let port: Int
  private let process = Process()

  static let script = """
    import socket, sys, threading
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((sys.argv[3], int(sys.argv[2])))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)
    def pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    while True:
        client, _ = listener.accept()
        server = socket.socket(socket.AF_UNIX)
        server.connect(sys.argv[1])
        threading.Thread(target=pump, args=(client, server), daemon=True).start()
        threading.Thread(target=pump, args=(server, client), daemon=True).start()
    """

  /// Starts forwarding `port` (0: any free port) of `address` (loopback unless a test gives the
  /// address of one of its own links) to `socket`; returns once it listens.
  public init(to socket: String, port: Int = 0, address: String = "127.0.0.1") throws {
    guard
      let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: FileManager.default.isExecutableFile)
    else { throw XCTSkip("python3 is not installed: this test needs it for its TCP forwarder") }
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = ["-c", Self.script, socket, String(port), address]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    // The first line is the port; reading it waits until the forwarder listens.
    var line = Data()
    while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
      line.append(byte)
    }
    guard let listening = Int(String(decoding: line, as: UTF8.self)) else {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
      throw XCTSkip("the TCP forwarder did not start (python3 printed no port)")
    }
    self.port = listening
  }

  /// Ends it and every connection through it. SIGKILL: a child of the test process starts with
  /// most signals blocked, SIGTERM among them.
  public func stop() {
    guard process.isRunning else { return }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
  }

  deinit { stop() }
}
