import Cluster
import Foundation
import TestSupport
import XCTest

/// TLS to PostgreSQL with libpq's `sslmode`s, against the test server's TCP listener, which takes
/// TLS only (`hostssl` lines in pg_hba.conf) with a certificate signed by a CA of its own
/// (`Scripts/postgres start --tls`).
final class TLSConnectionTests: XCTestCase {
  var cluster: TestCluster!
  var folder: TemporaryFolder!

  override func setUpWithError() throws {
    cluster = try TestCluster()
    folder = TemporaryFolder()
  }

  override func tearDown() {
    cluster?.remove()
  }

  private func rightCA() throws -> String {
    try cluster.tlsCertificateAuthority
  }

  /// A CA of this test's own, which signed nothing the server holds.
  private func wrongCA() throws -> String {
    let (key, certificate) = (folder.file("other-ca.key"), folder.file("other-ca.crt"))
    let made = try runProgram(
      "/usr/bin/openssl",
      [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=some other CA",
        "-keyout", key, "-out", certificate,
      ])
    XCTAssertEqual(made.status, 0, made.error)
    return certificate
  }

  private func connect(_ parameters: [String: String]) async throws -> ClusterDatabase {
    try await ClusterDatabase.connect(try ClusterURL(try cluster.tlsURLText(parameters)), timeout: 10)
  }

  /// Connecting must fail with a `.database` error; returns its message.
  private func refusal(_ parameters: [String: String], file: StaticString = #filePath, line: UInt = #line)
    async throws -> String
  {
    do {
      let db = try await connect(parameters)
      await db.close()
      XCTFail("connected with \(parameters)", file: file, line: line)
      return ""
    } catch let error as ClusterError {
      return error.message
    }
  }

  func testVerifyFullWithTheRightCAConnectsOverTLSAndWorks() async throws {
    let db = try await connect(["sslmode": "verify-full", "sslrootcert": try rightCA()])
    let encrypted = try await db.usesTLS()
    XCTAssertTrue(encrypted, "the server says this connection is not encrypted")
    _ = try await db.migrate()
    try await db.register(
      host: "tls-host", agent: "a", address: "", library: "/lib",
      capacity: HostCapacity(memoryTotal: 0, memoryFree: 0, diskTotal: 0, diskFree: 0), capabilities: [],
      heartbeatSeconds: 60)
    await db.close()
    let direct = try await cluster.connect()
    let names = try await direct.hosts().map(\.name)
    let overSocket = try await direct.usesTLS()
    await direct.close()
    XCTAssertEqual(names, ["tls-host"])
    XCTAssertFalse(overSocket, "a UNIX socket never uses TLS")
  }

  func testVerifyCAWithTheRightCAConnects() async throws {
    let db = try await connect(["sslmode": "verify-ca", "sslrootcert": try rightCA()])
    let encrypted = try await db.usesTLS()
    await db.close()
    XCTAssertTrue(encrypted)
  }

  func testAWrongCAIsRefusedNamingTheCertificateProblem() async throws {
    let other = try wrongCA()
    for mode in ["verify-full", "verify-ca", "require"] {
      let message = try await refusal(["sslmode": mode, "sslrootcert": other])
      XCTAssertTrue(message.contains("the server's certificate could not be verified"), "\(mode): \(message)")
      XCTAssertTrue(message.contains("not signed by a CA in sslrootcert '\(other)'"), "\(mode): \(message)")
      XCTAssertTrue(message.contains("sslmode=\(mode)"), "the URL shown names the mode: \(message)")
      XCTAssertFalse(message.contains(":\(passwordOfTLSURL())@"), "the password is never shown: \(message)")
    }
  }

  func testRequireAndPreferConnectOverTLSWithoutACA() async throws {
    for parameters in [["sslmode": "require"], ["sslmode": "prefer"], [:]] {
      let db = try await connect(parameters)
      let encrypted = try await db.usesTLS()
      await db.close()
      XCTAssertTrue(encrypted, "\(parameters) did not use the TLS the server offers")
    }
  }

  func testAllowTriesPlainThenTLSWhenTheServerDemandsIt() async throws {
    let db = try await connect(["sslmode": "allow"])
    let encrypted = try await db.usesTLS()
    await db.close()
    XCTAssertTrue(encrypted)
  }

  func testDisableAgainstAServerThatDemandsTLSSaysSo() async throws {
    let message = try await refusal(["sslmode": "disable"])
    XCTAssertTrue(message.contains("no encryption"), message)
    XCTAssertTrue(message.contains("the server takes this connection only over TLS"), message)
    XCTAssertTrue(message.contains("sslmode=verify-full"), message)
  }

  func testACAFileThatCannotBeReadIsAUsageErrorNamingIt() async throws {
    let missing = folder.file("no-such-ca.crt")
    let notPEM = folder.file("not-a-certificate.crt")
    try Data("hello".utf8).write(to: URL(fileURLWithPath: notPEM))
    for (file, expected) in [(missing, "cannot be read (no such file)"), (notPEM, "holds no PEM certificate")] {
      do {
        let db = try await connect(["sslmode": "verify-full", "sslrootcert": file])
        await db.close()
        XCTFail("connected with sslrootcert \(file)")
      } catch let error as ClusterError {
        XCTAssertEqual(error.kind, .usage)
        XCTAssertTrue(error.message.contains("sslrootcert '\(file)'"), error.message)
        XCTAssertTrue(error.message.contains(expected), error.message)
      }
    }
  }

  func testVerifyWithoutACAAnywhereSaysToGiveOne() async throws {
    // libpq's default CA file is ~/.postgresql/root.crt; a home without one.
    let home = ProcessInfo.processInfo.environment["HOME"]
    setenv("HOME", folder.path, 1)
    defer { if let home { setenv("HOME", home, 1) } else { unsetenv("HOME") } }
    do {
      let db = try await connect(["sslmode": "verify-full"])
      await db.close()
      XCTFail("connected with verify-full and no CA")
    } catch let error as ClusterError {
      XCTAssertEqual(error.kind, .usage)
      XCTAssertTrue(error.message.contains("no CA is given: add sslrootcert=FILE"), error.message)
      XCTAssertTrue(error.message.contains(folder.path + "/.postgresql/root.crt"), error.message)
    }
  }

  private func passwordOfTLSURL() -> String {
    ProcessInfo.processInfo.environment["VMLAB_TEST_CLUSTER_TLS"].flatMap { URLComponents(string: $0)?.password }
      ?? "\u{0}"
  }
}
