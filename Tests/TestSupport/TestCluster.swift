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
    var components = try Self.tlsServer()
    components.path = "/" + name
    components.queryItems = parameters.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
    return components.string!
  }

  /// The CA that signed the TLS server's certificate (the `sslrootcert` of `VMLAB_TEST_CLUSTER_TLS`).
  /// Skips without the TLS server, as `tlsURLText` does.
  public var tlsCertificateAuthority: String {
    get throws {
      guard let ca = try Self.tlsServer().queryItems?.first(where: { $0.name == "sslrootcert" })?.value else {
        throw XCTSkip("VMLAB_TEST_CLUSTER_TLS names no sslrootcert (Scripts/postgres start --tls sets one)")
      }
      return ca
    }
  }

  /// This test's database over TCP with TLS as the role of client certificate authentication:
  /// `Scripts/postgres start --tls` sets `VMLAB_TEST_CLUSTER_CERT` to a URL with `sslcert` and
  /// `sslkey` (a certificate for CN=vmlab_cert) and no password. `changes` replaces or adds
  /// parameters (nil removes one). Skips without that server.
  public func certificateURLText(_ changes: [String: String?] = [:]) throws -> String {
    var components = try Self.certificateServer()
    components.path = "/" + name
    var items = Dictionary(
      (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { a, _ in a })
    for (key, value) in changes { items[key] = value }
    components.queryItems = items.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
    return components.string!
  }

  /// The files of `VMLAB_TEST_CLUSTER_CERT`: its client certificate and key, and the client CA
  /// (certificate and key) the server trusts for clients, which can sign certificates for
  /// other names.
  public var clientCertificateFiles: (certificate: String, key: String, caCertificate: String, caKey: String) {
    get throws {
      let items = try Self.certificateServer().queryItems ?? []
      guard let certificate = items.first(where: { $0.name == "sslcert" })?.value,
        let key = items.first(where: { $0.name == "sslkey" })?.value
      else {
        throw XCTSkip("VMLAB_TEST_CLUSTER_CERT names no sslcert and sslkey (Scripts/postgres start --tls sets them)")
      }
      let folder = (certificate as NSString).deletingLastPathComponent
      return (certificate, key, folder + "/client-ca.crt", folder + "/client-ca.key")
    }
  }

  private static func certificateServer() throws -> URLComponents {
    try server(
      in: "VMLAB_TEST_CLUSTER_CERT", needed: "the client certificate tests need the TLS server of Scripts/postgres")
  }

  /// `VMLAB_TEST_CLUSTER_TLS`, or a skip saying how to get that server.
  private static func tlsServer() throws -> URLComponents {
    try server(in: "VMLAB_TEST_CLUSTER_TLS", needed: "the TLS tests need a server on TCP with TLS")
  }

  /// The URL in environment variable `name`, or a skip saying what needs it and how to start it.
  private static func server(in name: String, needed: String) throws -> URLComponents {
    guard let text = ProcessInfo.processInfo.environment[name], !text.isEmpty else {
      throw XCTSkip(
        "\(name) is not set: \(needed) (Scripts/test starts one; by hand: eval \"$(Scripts/postgres start --tls)\")"
      )
    }
    guard let components = URLComponents(string: text) else { throw XCTSkip("\(name) is not a URL: \(text)") }
    return components
  }

  /// Restarts the test server (`pg_ctl restart -m fast` through `Scripts/postgres restart`): every
  /// connection is cut and the server comes back on the same socket and port. Skips when the
  /// server is not one `Scripts/postgres` made (`VMLAB_POSTGRES_DIR` unset).
  public func restartServer() throws {
    guard let folder = ProcessInfo.processInfo.environment["VMLAB_POSTGRES_DIR"], !folder.isEmpty else {
      throw XCTSkip(
        "VMLAB_POSTGRES_DIR is not set: restarting the database needs a server made by Scripts/postgres (Scripts/test starts one)"
      )
    }
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("Scripts/postgres").path
    let log = NSTemporaryDirectory() + "vmlab-postgres-restart-\(UUID().uuidString).log"
    defer { try? FileManager.default.removeItem(atPath: log) }
    // posix_spawn and waitpid rather than Foundation's Process: pg_ctl leaves the new server
    // behind as a daemon, and Process was seen never to notice that the script had ended.
    let command = "'\(script)' restart '\(folder)' >'\(log)' 2>&1"
    var pid: pid_t = 0
    let words: [String] = ["/bin/sh", "-c", command]
    let argv: [UnsafeMutablePointer<CChar>?] = words.map { word in strdup(word) } + [nil]
    defer { argv.forEach { free($0) } }
    let spawned = posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ)
    guard spawned == 0 else {
      throw ClusterError(.database, "cannot run Scripts/postgres restart: \(String(cString: strerror(spawned)))")
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    // WIFEXITED and WEXITSTATUS, which Swift does not import.
    let exited = status & 0x7f == 0
    let code = (status >> 8) & 0xff
    guard exited && code == 0 else {
      let said = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
      throw ClusterError(.database, "Scripts/postgres restart \(folder) failed (status \(status)): \(said)")
    }
  }

  /// A new connection to this test's database.
  public func connect() async throws -> ClusterDatabase {
    try await ClusterDatabase.connect(url)
  }

  /// Registers host `host` through `db` (which it closes) and returns the hosts the database holds,
  /// read through a connection of its own on the socket: what another way in wrote is really there.
  public func registerAndReadBack(host: String, through db: ClusterDatabase) async throws -> [String] {
    try await db.register(
      host: host, agent: "a", address: "", library: "/lib",
      capacity: HostCapacity(memoryTotal: 0, memoryFree: 0, diskTotal: 0, diskFree: 0), capabilities: [],
      heartbeatSeconds: 60)
    await db.close()
    let direct = try await connect()
    do {
      let names = try await direct.hosts().map(\.name)
      await direct.close()
      return names
    } catch {
      await direct.close()
      throw error
    }
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
