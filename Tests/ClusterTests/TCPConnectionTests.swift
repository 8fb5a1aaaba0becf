import Cluster
import Foundation
import TestSupport
import XCTest

/// The TCP form of the URL against a real server. The test server listens on its UNIX socket only,
/// so a small forwarder (Python, as the other interoperability tests use) carries a loopback TCP
/// port to it; PostgreSQL's wire protocol is the same on both.
final class TCPConnectionTests: XCTestCase {
  var cluster: TestCluster!
  var forwarder: SocketForwarder?

  override func setUpWithError() throws {
    cluster = try TestCluster()
  }

  override func tearDown() {
    forwarder?.stop()
    cluster?.remove()
  }

  func testTheTCPFormConnectsAndWorks() async throws {
    let socket = try XCTUnwrap(cluster.url.endpoint.socketPath)
    let forwarder = try SocketForwarder(to: socket)
    self.forwarder = forwarder
    let port = forwarder.port
    let url = try ClusterURL("postgresql://\(cluster.url.user):unused@127.0.0.1:\(port)/\(cluster.url.database)")
    XCTAssertEqual(url.endpoint, .tcp(host: "127.0.0.1", port: port))
    let db = try await ClusterDatabase.connect(url, timeout: 10)
    let (_, version) = try await db.migrate()
    XCTAssertEqual(version, Schema.latestVersion)
    // What went over TCP is in the database the socket reaches.
    let names = try await cluster.registerAndReadBack(host: "tcp-host", through: db)
    XCTAssertEqual(names, ["tcp-host"])
  }
}
