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

  /// This test's database over TCP with TLS: `Scripts/postgres start --tls` listens on 127.0.0.1
  /// with TLS only and sets `VMLAB_TEST_CLUSTER_TLS` to a verify-full URL. The URL's own
  /// parameters are replaced by `parameters` (sslmode, sslrootcert). Skips without that server.
  public func tlsURLText(_ parameters: [String: String]) throws -> String {
    guard let text = ProcessInfo.processInfo.environment["VMLAB_TEST_CLUSTER_TLS"], !text.isEmpty else {
      throw XCTSkip(
        "VMLAB_TEST_CLUSTER_TLS is not set: the TLS tests need a server on TCP with TLS (Scripts/test starts one; by hand: eval \"$(Scripts/postgres start --tls)\")"
      )
    }
    guard var components = URLComponents(string: text) else {
      throw XCTSkip("VMLAB_TEST_CLUSTER_TLS is not a URL: \(text)")
    }
    components.path = "/" + name
    components.queryItems = parameters.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
    return components.string!
  }

  /// The CA that signed the TLS server's certificate (the `sslrootcert` of `VMLAB_TEST_CLUSTER_TLS`).
  public var tlsCertificateAuthority: String? {
    ProcessInfo.processInfo.environment["VMLAB_TEST_CLUSTER_TLS"].flatMap { URLComponents(string: $0) }?
      .queryItems?.first { $0.name == "sslrootcert" }?.value
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
