import Cluster
import XCTest

/// `--cluster` URLs: the forms libpq users write, and a clear usage error for each mistake.
final class ClusterURLTests: XCTestCase {
  func testTCPWithUserPasswordPortAndDatabase() throws {
    let url = try ClusterURL("postgresql://lab:s%40cret@db.example:6543/vmlab")
    XCTAssertEqual(url.endpoint, .tcp(host: "db.example", port: 6543))
    XCTAssertEqual(url.user, "lab")
    XCTAssertEqual(url.password, "s@cret")
    XCTAssertEqual(url.database, "vmlab")
    XCTAssertEqual(url.description, "postgresql://lab:***@db.example:6543/vmlab", "the password is never shown")
  }

  func testTCPDefaultsToPort5432AndTakesIPv6() throws {
    XCTAssertEqual(try ClusterURL("postgres://lab@db/vmlab").endpoint, .tcp(host: "db", port: 5432))
    XCTAssertEqual(try ClusterURL("postgresql://lab@[::1]:7000/vmlab").endpoint, .tcp(host: "::1", port: 7000))
  }

  func testSocketFolderAsQueryOrHost() throws {
    let url = try ClusterURL("postgresql:///vmlab?host=/tmp/pg")
    XCTAssertEqual(url.endpoint, .socket(folder: "/tmp/pg", port: 5432))
    XCTAssertEqual(url.endpoint.socketPath, "/tmp/pg/.s.PGSQL.5432")
    XCTAssertFalse(url.user.isEmpty, "without a user, the account's name is used as libpq does")
    let encoded = try ClusterURL("postgresql://lab@%2Fvar%2Frun%2Fpostgresql/vmlab")
    XCTAssertEqual(encoded.endpoint, .socket(folder: "/var/run/postgresql", port: 5432))
    XCTAssertEqual(encoded.user, "lab")
    let withPort = try ClusterURL("postgresql:///vmlab?host=/tmp/pg&port=5433&user=ops")
    XCTAssertEqual(withPort.endpoint, .socket(folder: "/tmp/pg", port: 5433))
    XCTAssertEqual(withPort.user, "ops")
  }

  func testMistakesAreUsageErrorsThatSayWhat() {
    let cases: [(String, String)] = [
      ("db.example/vmlab", "no scheme"),
      ("mysql://lab@db/vmlab", "the scheme is 'mysql', not postgresql"),
      ("postgresql://lab@db", "names no database"),
      ("postgresql://lab@db/", "names no database"),
      ("postgresql:///vmlab", "names no host"),
      ("postgresql://lab@db:99999/vmlab", "port 99999 is not from 1 to 65535"),
      ("postgresql://lab@db:/vmlab", "the port after ':' is missing"),
      ("postgresql://lab@db/vm/lab", "holds a '/'"),
      ("postgresql:///vmlab?host=relative/dir", "absolute socket folder"),
      ("postgresql://lab@db/vmlab?sslmode=always", "sslmode=always is not a TLS mode (use disable, allow, prefer"),
      ("postgresql://lab@db/vmlab?sslmode=verify-full&sslrootcert=", "sslrootcert= names no file"),
      ("postgresql://lab@db/vmlab?sslcert=", "sslcert= names no file"),
      ("postgresql://lab@db/vmlab?sslcert=/c.crt&sslkey=", "sslkey= names no file"),
      (
        "postgresql://lab@db/vmlab?sslpassword=x",
        "unknown parameter 'sslpassword' (known: host, port, user, password, sslmode, sslrootcert, sslcert, sslkey)"
      ),
      ("postgresql://lab@db/vmlab?colour=blue", "unknown parameter 'colour'"),
      ("postgresql://db.example/vmlab?host=/tmp/pg", "both a host 'db.example' and a socket folder"),
      ("postgresql://lab:pw@db:port/vmlab", "not a valid URL"),
    ]
    for (text, expected) in cases {
      XCTAssertThrowsError(try ClusterURL(text), text) { error in
        let error = error as? ClusterError
        XCTAssertEqual(error?.kind, .usage, text)
        XCTAssertTrue(error?.message.contains(expected) == true, "\(text): \(error?.message ?? "")")
        XCTAssertTrue(error?.message.contains("postgresql://USER") == true, "shows the forms: \(text)")
      }
    }
  }

  func testTLSParametersAsLibpqTakesThem() throws {
    let plain = try ClusterURL("postgresql://lab@db/vmlab")
    XCTAssertEqual(plain.tls, .prefer, "libpq's default")
    XCTAssertNil(plain.rootCertificate)
    XCTAssertEqual(plain.description, "postgresql://lab@db:5432/vmlab", "the default mode is not shown")
    let strict = try ClusterURL("postgresql://lab:pw@db/vmlab?sslmode=verify-full&sslrootcert=/etc/vmlab/ca.crt")
    XCTAssertEqual(strict.tls, .verifyFull)
    XCTAssertEqual(strict.rootCertificate, "/etc/vmlab/ca.crt")
    XCTAssertEqual(
      strict.description, "postgresql://lab:***@db:5432/vmlab?sslmode=verify-full&sslrootcert=/etc/vmlab/ca.crt")
    XCTAssertNil(plain.clientCertificate)
    XCTAssertNil(plain.clientKey)
    let withCertificate = try ClusterURL(
      "postgresql://lab@db/vmlab?sslmode=verify-full&sslrootcert=/etc/vmlab/ca.crt&sslcert=/etc/vmlab/host1.crt&sslkey=/etc/vmlab/host1.key"
    )
    XCTAssertEqual(withCertificate.clientCertificate, "/etc/vmlab/host1.crt")
    XCTAssertEqual(withCertificate.clientKey, "/etc/vmlab/host1.key")
    XCTAssertEqual(
      withCertificate.description,
      "postgresql://lab@db:5432/vmlab?sslmode=verify-full&sslrootcert=/etc/vmlab/ca.crt&sslcert=/etc/vmlab/host1.crt&sslkey=/etc/vmlab/host1.key",
      "the files are shown (they are no secret; errors about them need them)")
    for mode in TLSMode.allCases {
      XCTAssertEqual(try ClusterURL("postgresql://lab@db/vmlab?sslmode=\(mode.rawValue)").tls, mode)
    }
    // On a socket the mode is taken and ignored, as libpq does.
    XCTAssertEqual(try ClusterURL("postgresql:///vmlab?host=/tmp/pg&sslmode=require").tls, .require)
  }

  func testAPasswordInAWrongURLIsNotEchoed() {
    XCTAssertThrowsError(try ClusterURL("postgresql://lab:hunter2@db:bad/vmlab")) { error in
      XCTAssertFalse("\(error)".contains("hunter2"), "\(error)")
    }
  }
}
