import Cluster
import Foundation
import XCTest

/// A database of its own on the test PostgreSQL server (`VMLAB_TEST_CLUSTER`, which `Scripts/test`
/// sets after `Scripts/postgres start`), for one test; dropped by `remove()`. Without the server the
/// test is skipped, saying how to get one.
public final class TestCluster: @unchecked Sendable {
  public let url: ClusterURL
  /// The URL as `--cluster` takes it.
  public let urlText: String
  let admin: ClusterURL
  let name: String

  public init() throws {
    guard let text = ProcessInfo.processInfo.environment["VMLAB_TEST_CLUSTER"], !text.isEmpty else {
      throw XCTSkip(
        "VMLAB_TEST_CLUSTER is not set: the cluster tests need a PostgreSQL server (Scripts/test starts one; by hand: eval \"$(Scripts/postgres start)\")"
      )
    }
    admin = try ClusterURL(text)
    name = "vmlab_test_\(UUID().uuidString.prefix(8).lowercased())"
    var url = admin
    url.database = name
    self.url = url
    guard case .socket(let folder, let port) = url.endpoint else {
      throw XCTSkip("VMLAB_TEST_CLUSTER must name a UNIX socket folder (postgresql:///DB?host=/DIR), not \(text)")
    }
    urlText =
      "postgresql://\(url.user)@/\(name)?host=\(folder)" + (port == ClusterURL.defaultPort ? "" : "&port=\(port)")
    let (admin, name) = (self.admin, self.name)
    try runBlocking {
      let db = try await ClusterDatabase.connect(admin)
      do {
        try await db.createDatabase(named: name)
      } catch {
        await db.close()
        throw error
      }
      await db.close()
    }
  }

  /// A new connection to this test's database.
  public func connect() async throws -> ClusterDatabase {
    try await ClusterDatabase.connect(url)
  }

  /// Drops the database (ending its connections).
  public func remove() {
    let (admin, name) = (self.admin, self.name)
    _ = try? runBlocking {
      let db = try await ClusterDatabase.connect(admin)
      try? await db.dropDatabase(named: name)
      await db.close()
    }
  }
}
