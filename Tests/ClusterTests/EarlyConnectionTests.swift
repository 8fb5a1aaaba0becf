import TestSupport
import XCTest

@testable import Cluster

/// A connection begun while the command line is parsed is the one the command's first connect to
/// that URL uses, and its failure is said as any connect's is.
final class EarlyConnectionTests: XCTestCase {
  func testTheFirstConnectToTheURLTakesTheConnectionBegunForIt() async throws {
    let cluster = try TestCluster()
    defer { cluster.remove() }
    EarlyConnection.begin(cluster.urlText)
    let taken = try XCTUnwrap(EarlyConnection.take(cluster.url), "nothing was begun for \(cluster.urlText)")
    XCTAssertNil(EarlyConnection.take(cluster.url), "taken once")
    let connection = try await taken.value
    XCTAssertFalse(connection.isClosed)
    try await connection.close()

    // Through connect: the early connection answers statements like any other.
    EarlyConnection.begin(cluster.urlText)
    let db = try await ClusterDatabase.connect(cluster.url)
    XCTAssertNil(EarlyConnection.take(cluster.url), "connect took it")
    let version = try await db.schemaVersion()
    XCTAssertEqual(version, 0)
    await db.close()
  }

  func testAnotherURLIsNotGivenTheEarlyConnection() async throws {
    let cluster = try TestCluster()
    defer { cluster.remove() }
    EarlyConnection.begin(cluster.urlText)
    var other = cluster.url
    other.database = "postgres"
    XCTAssertNil(EarlyConnection.take(other))
    let begun = try XCTUnwrap(EarlyConnection.take(cluster.url))
    try await begun.value.close()
    // A URL that does not parse begins nothing (the command says what is wrong with it).
    EarlyConnection.begin("mysql://nothing")
    XCTAssertNil(EarlyConnection.take(cluster.url))
  }

  func testAnEarlyConnectionThatFailedIsTheConnectsFailure() async throws {
    let folder = TemporaryFolder()
    let text = "postgresql:///vmlab?host=\(folder.path)"
    EarlyConnection.begin(text)
    do {
      _ = try await ClusterDatabase.connect(try ClusterURL(text))
      XCTFail("connected to nothing")
    } catch let error as ClusterError {
      XCTAssertEqual(error.kind, .database)
      XCTAssertTrue(error.message.contains("cannot reach the cluster database postgresql://"), error.message)
      XCTAssertTrue(error.message.contains("check that PostgreSQL runs there"), error.message)
    }
    XCTAssertNil(EarlyConnection.take(try ClusterURL(text)))
  }
}
