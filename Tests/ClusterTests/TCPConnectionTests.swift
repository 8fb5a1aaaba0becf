import Cluster
import Foundation
import TestSupport
import XCTest

/// The TCP form of the URL against a real server. The test server listens on its UNIX socket only,
/// so a small forwarder (Python, as the other interoperability tests use) carries a loopback TCP
/// port to it; PostgreSQL's wire protocol is the same on both.
final class TCPConnectionTests: XCTestCase {
  var cluster: TestCluster!
  var forwarder: Process?

  override func setUpWithError() throws {
    cluster = try TestCluster()
  }

  override func tearDown() {
    if let forwarder, forwarder.isRunning {
      // SIGKILL: a child of the test process starts with most signals blocked, SIGTERM among them.
      kill(forwarder.processIdentifier, SIGKILL)
      forwarder.waitUntilExit()
    }
    cluster?.remove()
  }

  /// Starts the forwarder to the test server's socket; returns its port.
  private func forward(to socket: String) throws -> Int {
    let script = """
      import socket, sys, threading
      listener = socket.socket()
      listener.bind(("127.0.0.1", 0))
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
    guard
      let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: FileManager.default.isExecutableFile)
    else { throw XCTSkip("python3 is not installed: the TCP test needs it for its forwarder") }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = ["-c", script, socket]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    forwarder = process
    // The first line is the port; reading it waits until the forwarder listens.
    var line = Data()
    while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
      line.append(byte)
    }
    return try XCTUnwrap(Int(String(decoding: line, as: UTF8.self)), "the forwarder printed no port")
  }

  func testTheTCPFormConnectsAndWorks() async throws {
    let socket = try XCTUnwrap(cluster.url.endpoint.socketPath)
    let port = try forward(to: socket)
    let url = try ClusterURL("postgresql://\(cluster.url.user):unused@127.0.0.1:\(port)/\(cluster.url.database)")
    XCTAssertEqual(url.endpoint, .tcp(host: "127.0.0.1", port: port))
    let db = try await ClusterDatabase.connect(url, timeout: 10)
    let (_, version) = try await db.migrate()
    XCTAssertEqual(version, Schema.latestVersion)
    try await db.register(
      host: "tcp-host", agent: "a", address: "", library: "/lib",
      capacity: HostCapacity(memoryTotal: 0, memoryFree: 0, diskTotal: 0, diskFree: 0), capabilities: [],
      heartbeatSeconds: 60)
    await db.close()
    // What went over TCP is in the database the socket reaches.
    let direct = try await cluster.connect()
    let names = try await direct.hosts().map(\.name)
    await direct.close()
    XCTAssertEqual(names, ["tcp-host"])
  }
}
