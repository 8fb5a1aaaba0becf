import Cluster
import Foundation
import TestSupport
import XCTest

/// Client certificate authentication (pg_hba.conf's `cert`) against the test server, whose role
/// `vmlab_cert` logs in over TCP with a certificate made out to it and nothing else
/// (`Scripts/postgres start --tls`): the URL's `sslcert` and `sslkey`, and a clear error for each
/// file or server refusal, before or instead of a connection.
final class ClientCertificateTests: XCTestCase {
  var cluster: TestCluster!
  var folder: TemporaryFolder!
  private var savedHome: String?

  override func setUpWithError() throws {
    cluster = try TestCluster()
    folder = TemporaryFolder()
    // libpq's default client certificate is ~/.postgresql/postgresql.crt: a home without one, so
    // that only what a test's URL names is shown.
    savedHome = ProcessInfo.processInfo.environment["HOME"]
    try FileManager.default.createDirectory(atPath: folder.file("home"), withIntermediateDirectories: true)
    setenv("HOME", folder.file("home"), 1)
  }

  override func tearDown() {
    if let savedHome { setenv("HOME", savedHome, 1) } else { unsetenv("HOME") }
    cluster?.remove()
  }

  private func connect(_ changes: [String: String?] = [:]) async throws -> ClusterDatabase {
    try await ClusterDatabase.connect(try ClusterURL(try cluster.certificateURLText(changes)), timeout: 10)
  }

  /// Connecting must fail with a ClusterError of `kind`; returns its message.
  private func refusal(
    _ changes: [String: String?], kind: ClusterError.Kind, file: StaticString = #filePath, line: UInt = #line
  ) async throws -> String {
    do {
      let db = try await connect(changes)
      await db.close()
      XCTFail("connected with \(changes)", file: file, line: line)
      return ""
    } catch let error as ClusterError {
      XCTAssertEqual(error.kind, kind, error.message, file: file, line: line)
      return error.message
    }
  }

  private func openssl(_ arguments: [String]) throws {
    let made = try runProgram("/usr/bin/openssl", arguments)
    XCTAssertEqual(made.status, 0, made.error)
  }

  /// A copy of the role's key at `mode`, owned by the user running the tests.
  private func keyCopy(mode: Int) throws -> String {
    let copy = folder.file("key-\(String(mode, radix: 8)).pem")
    try FileManager.default.copyItem(atPath: try cluster.clientCertificateFiles.key, toPath: copy)
    XCTAssertEqual(chmod(copy, mode_t(mode)), 0)
    return copy
  }

  /// A certificate for `name` signed by the client CA the server trusts, with its key (mode 0600).
  private func certificate(for name: String) throws -> (certificate: String, key: String) {
    let files = try cluster.clientCertificateFiles
    let (key, request, certificate) = (
      folder.file("\(name).key"), folder.file("\(name).csr"), folder.file("\(name).crt")
    )
    try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=\(name)", "-keyout", key, "-out", request])
    try openssl([
      "x509", "-req", "-in", request, "-CA", files.caCertificate, "-CAkey", files.caKey, "-CAcreateserial",
      "-CAserial", folder.file("serial"), "-days", "1", "-out", certificate,
    ])
    chmod(key, 0o600)
    return (certificate, key)
  }

  func testTheCertificateRoleConnectsWithItsCertificateAndNoPassword() async throws {
    let text = try cluster.certificateURLText()
    XCTAssertNil(URLComponents(string: text)?.password, "the URL carries no password")
    let db = try await connect()
    let encrypted = try await db.usesTLS()
    XCTAssertTrue(encrypted)
    _ = try await db.migrate()
    let names = try await cluster.registerAndReadBack(host: "cert-host", through: db)
    XCTAssertEqual(names, ["cert-host"], "what the certificate's connection wrote is in the database")
  }

  func testLibpqsDefaultFilesAreUsedWhenTheURLNamesNone() async throws {
    let files = try cluster.clientCertificateFiles
    let defaults = folder.file("home/.postgresql")
    try FileManager.default.createDirectory(atPath: defaults, withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: files.certificate, toPath: defaults + "/postgresql.crt")
    try FileManager.default.copyItem(atPath: files.key, toPath: defaults + "/postgresql.key")
    chmod(defaults + "/postgresql.key", 0o600)
    let db = try await connect(["sslcert": nil, "sslkey": nil])
    let encrypted = try await db.usesTLS()
    await db.close()
    XCTAssertTrue(encrypted)
  }

  func testAServerThatAsksForACertificateWhenNoneIsGivenIsExplained() async throws {
    let message = try await refusal(["sslcert": nil, "sslkey": nil], kind: .database)
    XCTAssertTrue(message.contains("the server asks for a client certificate"), message)
    XCTAssertTrue(message.contains("vmlab_cert"), "names the user: \(message)")
    XCTAssertTrue(message.contains("add sslcert=FILE&sslkey=FILE"), "says what to do: \(message)")
    XCTAssertFalse(message.contains("check that PostgreSQL runs there"), "the server does run: \(message)")
  }

  func testMissingFilesAreUsageErrorsNamingThem() async throws {
    let files = try cluster.clientCertificateFiles
    let missing = folder.file("no-such-file.pem")
    let cases: [([String: String?], String)] = [
      (["sslcert": missing], "sslcert '\(missing)' cannot be read (no such file)"),
      (["sslkey": missing], "sslkey '\(missing)' cannot be read (no such file)"),
      (["sslcert": nil], "sslkey '\(files.key)' is given without a client certificate: add sslcert=FILE"),
      (
        ["sslkey": nil],
        "sslcert '\(files.certificate)' has no private key: add sslkey=FILE (the key the certificate was made for) to the URL, or put it in \(folder.file("home/.postgresql/postgresql.key"))"
      ),
    ]
    for (changes, expected) in cases {
      let message = try await refusal(changes, kind: .usage)
      XCTAssertTrue(message.contains(expected), "\(changes): \(message)")
    }
  }

  func testFilesThatAreNotPEMAreUsageErrorsNamingThem() async throws {
    let garbage = folder.file("garbage.pem")
    try Data("hello\n".utf8).write(to: URL(fileURLWithPath: garbage))
    chmod(garbage, 0o600)
    let encrypted = folder.file("encrypted.key")
    try openssl([
      "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-aes256", "-pass", "pass:secret", "-out",
      encrypted,
    ])
    chmod(encrypted, 0o600)
    let cases: [([String: String?], String)] = [
      (["sslcert": garbage], "sslcert '\(garbage)' holds no PEM certificate vmlab can read"),
      (["sslkey": garbage], "sslkey '\(garbage)' holds no PEM private key vmlab can read"),
      (["sslkey": encrypted], "sslkey '\(encrypted)' is encrypted with a passphrase"),
      (["sslkey": folder.path], "sslkey '\(folder.path)' is not a regular file"),
    ]
    for (changes, expected) in cases {
      let message = try await refusal(changes, kind: .usage)
      XCTAssertTrue(message.contains(expected), "\(changes): \(message)")
    }
  }

  func testAKeyOthersCanReadIsRefusedSayingHowToFixIt() async throws {
    for mode in [0o644, 0o640, 0o604] {
      let key = try keyCopy(mode: mode)
      let message = try await refusal(["sslkey": key], kind: .usage)
      XCTAssertTrue(
        message.contains("sslkey '\(key)' has group or world access (mode 0\(String(mode, radix: 8)))"), message)
      XCTAssertTrue(message.contains("run `chmod 600 '\(key)'`"), message)
    }
    // Fixed as the message says, the same file is taken.
    let key = try keyCopy(mode: 0o600)
    let db = try await connect(["sslkey": key])
    await db.close()
  }

  func testAKeyThatIsNotTheCertificatesIsRefusedBeforeConnecting() async throws {
    let other = folder.file("other.key")
    try openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", other])
    chmod(other, 0o600)
    let files = try cluster.clientCertificateFiles
    let message = try await refusal(["sslkey": other], kind: .usage)
    XCTAssertTrue(
      message.contains("sslkey '\(other)' is not the private key of sslcert '\(files.certificate)'"), message)
  }

  func testACertificateMadeOutToAnotherUserIsRefusedByTheServerSayingSo() async throws {
    let someone = try certificate(for: "someone-else")
    let message = try await refusal(["sslcert": someone.certificate, "sslkey": someone.key], kind: .database)
    XCTAssertTrue(message.contains("the server refused the client certificate"), message)
    XCTAssertTrue(message.contains("CN=vmlab_cert"), "says what name it must carry: \(message)")
  }

  func testACertificateFromACATheServerDoesNotTrustIsRefusedSayingSo() async throws {
    let (key, certificate) = (folder.file("self.key"), folder.file("self.crt"))
    try openssl([
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=vmlab_cert", "-keyout", key, "-out",
      certificate,
    ])
    chmod(key, 0o600)
    let message = try await refusal(["sslcert": certificate, "sslkey": key], kind: .database)
    XCTAssertTrue(message.contains("the server refused the client certificate sslcert '\(certificate)'"), message)
    XCTAssertTrue(message.contains("ssl_ca_file"), "says where the server's trusted CAs are: \(message)")
  }

  func testAServerThatAsksForAPasswordInsteadSaysSoAndPointsAtPgHbaOrder() async throws {
    // The test server's owner logs in over TCP with a password (scram-sha-256), not a certificate:
    // as when a `cert` line comes after a password line in pg_hba.conf.
    let files = try cluster.clientCertificateFiles
    let ca = try cluster.tlsCertificateAuthority
    func message(_ parameters: [String: String]) async throws -> String {
      var components = try XCTUnwrap(URLComponents(string: try cluster.tlsURLText(parameters)))
      components.password = nil
      do {
        let db = try await ClusterDatabase.connect(try ClusterURL(try XCTUnwrap(components.string)), timeout: 10)
        await db.close()
        XCTFail("connected without a password: \(parameters)")
        return ""
      } catch let error as ClusterError {
        XCTAssertEqual(error.kind, .database)
        return error.message
      }
    }
    let owner = try XCTUnwrap(URLComponents(string: try cluster.tlsURLText([:]))?.user)
    let withCertificate = try await message([
      "sslmode": "verify-full", "sslrootcert": ca, "sslcert": files.certificate, "sslkey": files.key,
    ])
    XCTAssertTrue(
      withCertificate.contains("the server asks for a password for user '\(owner)' and the URL gives none"),
      withCertificate)
    XCTAssertTrue(withCertificate.contains("sslcert '\(files.certificate)'"), withCertificate)
    XCTAssertTrue(withCertificate.contains("before the lines that ask a password"), withCertificate)
    let without = try await message(["sslmode": "verify-full", "sslrootcert": ca])
    XCTAssertTrue(without.contains("add it (postgresql://\(owner):PASSWORD@…)"), without)
    XCTAssertTrue(without.contains("or log in with a client certificate (sslcert, sslkey)"), without)
  }

  func testOverAUNIXSocketTheCertificateIsIgnoredAsLibpqDoes() async throws {
    // A socket never uses TLS, so even a key file that would be refused is never read.
    let key = try keyCopy(mode: 0o644)
    var url = cluster.url
    url.clientCertificate = folder.file("no-such.crt")
    url.clientKey = key
    let db = try await ClusterDatabase.connect(url)
    let encrypted = try await db.usesTLS()
    await db.close()
    XCTAssertFalse(encrypted)
  }
}
