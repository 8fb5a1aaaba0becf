import Cluster
import TestSupport
import XCTest

/// A database that cannot be reached, or refuses us, is an error that names it and says why.
final class ConnectionErrorTests: XCTestCase {
  func testNoServerOnTheSocketFolder() async throws {
    let folder = TemporaryFolder()
    let url = try ClusterURL("postgresql:///vmlab?host=\(folder.path)")
    do {
      _ = try await ClusterDatabase.connect(url, timeout: 5)
      XCTFail("connected to nothing")
    } catch let error as ClusterError {
      XCTAssertEqual(error.kind, .database)
      XCTAssertTrue(error.message.contains("cannot reach the cluster database postgresql://"), error.message)
      XCTAssertTrue(error.message.contains(folder.path), error.message)
      XCTAssertTrue(error.message.contains("check that PostgreSQL runs there"), error.message)
    }
  }

  func testNothingListeningOnTheTCPPort() async throws {
    let url = try ClusterURL("postgresql://lab@127.0.0.1:1/vmlab")
    do {
      _ = try await ClusterDatabase.connect(url, timeout: 5)
      XCTFail("connected to nothing")
    } catch let error as ClusterError {
      XCTAssertEqual(error.kind, .database)
      XCTAssertTrue(error.message.contains("postgresql://lab@127.0.0.1:1/vmlab"), error.message)
      XCTAssertTrue(error.message.lowercased().contains("refused"), error.message)
    }
  }

  func testADatabaseThatDoesNotExistIsNamedByTheServer() async throws {
    let cluster = try TestCluster()
    defer { cluster.remove() }
    var url = cluster.url
    url.database = "no_such_database"
    do {
      _ = try await ClusterDatabase.connect(url, timeout: 5)
      XCTFail("connected to a database that does not exist")
    } catch let error as ClusterError {
      XCTAssertTrue(error.message.contains("database \"no_such_database\" does not exist"), error.message)
    }
  }
}
