import TestSupport
import XCTest

@testable import Cluster

/// The cluster database's schema: made from nothing, brought forward from an older version with
/// its rows kept, applied once when several processes start together, and refused when newer.
final class SchemaMigrationTests: XCTestCase {
  var cluster: TestCluster!

  override func setUpWithError() throws {
    cluster = try TestCluster()
  }

  override func tearDown() {
    cluster?.remove()
  }

  func testAnEmptyDatabaseIsBroughtToTheLatestVersion() async throws {
    let db = try await cluster.connect()
    defer { Task { await db.close() } }
    let emptyVersion = try await db.schemaVersion()
    XCTAssertEqual(emptyVersion, 0)
    let (from, to) = try await db.migrate()
    XCTAssertEqual(from, 0)
    XCTAssertEqual(to, Schema.latestVersion)
    let again = try await db.migrate()
    XCTAssertEqual(again.from, again.to, "a second run changes nothing")
    let hosts = try await db.hosts()
    XCTAssertEqual(hosts, [])
  }

  func testAnOlderDatabaseKeepsItsRowsAndGainsTheLaterMigrations() async throws {
    let db = try await cluster.connect()
    defer { Task { await db.close() } }
    try await db.migrate(upTo: 1)
    let olderVersion = try await db.schemaVersion()
    XCTAssertEqual(olderVersion, 1)
    try await db.register(
      host: "h1", agent: "test", address: "", library: "/lib",
      capacity: HostCapacity(memoryTotal: 8, memoryFree: 4, diskTotal: 10, diskFree: 5), capabilities: ["simulated"],
      heartbeatSeconds: 60)
    let job = try await db.submitJob(
      kind: "create-vms",
      steps: [try StepRequest(host: "h1", kind: .createVM, CreateVMStep(name: "a", disks: [1 << 20]))])

    let (from, to) = try await db.migrate()
    XCTAssertEqual(from, 1)
    XCTAssertEqual(to, Schema.latestVersion)
    let keptHosts = try await db.hosts().map(\.name)
    XCTAssertEqual(keptHosts, ["h1"])
    let jobs = try await db.jobs()
    XCTAssertEqual(jobs.map(\.id), [job])
    XCTAssertEqual(jobs[0].steps.map(\.state), ["queued"])
    // Version 2's claim path works on the rows version 1 wrote.
    let claimed = try await db.claimStep(host: "h1", agent: "test", leaseSeconds: 30)
    XCTAssertEqual(claimed?.jobID, job)
  }

  func testProcessesStartingTogetherApplyEachMigrationOnce() async throws {
    let url = cluster.url
    try await withThrowingTaskGroup(of: Void.self) { group in
      for _ in 0..<4 {
        group.addTask {
          let db = try await ClusterDatabase.connect(url)
          do {
            try await db.migrate()
          } catch {
            await db.close()
            throw error
          }
          await db.close()
        }
      }
      try await group.waitForAll()
    }
    let db = try await cluster.connect()
    defer { Task { await db.close() } }
    let version = try await db.schemaVersion()
    XCTAssertEqual(version, Schema.latestVersion)
  }

  func testADatabaseNewerThanThisVmlabIsRefusedUntouched() async throws {
    let db = try await cluster.connect()
    defer { Task { await db.close() } }
    try await db.migrate()
    try await db.execute("INSERT INTO schema_version (version, name) VALUES (99, 'from the future')")
    do {
      try await db.migrate()
      XCTFail("a newer schema was accepted")
    } catch let error as ClusterError {
      XCTAssertEqual(error.kind, .database)
      XCTAssertTrue(error.message.contains("schema version 99, newer than this vmlab knows"), error.message)
      XCTAssertTrue(error.message.contains("upgrade vmlab"), error.message)
    }
    let untouchedVersion = try await db.schemaVersion()
    XCTAssertEqual(untouchedVersion, 99)
  }
}

/// A name in the shared database that a user could not have typed is refused where it is read.
final class DatabaseNameTests: XCTestCase {
  func testABadHostNameInTheDatabaseIsRefused() async throws {
    let cluster = try TestCluster()
    defer { cluster.remove() }
    let db = try await cluster.connect()
    try await db.migrate()
    try await db.execute("INSERT INTO host (name, library) VALUES ('../evil', '/lib')")
    do {
      _ = try await db.hosts()
      XCTFail("a bad host name was listed")
    } catch let error as ClusterError {
      XCTAssertEqual(error.kind, .database)
      XCTAssertTrue(error.message.contains("the cluster database holds a bad host name"), error.message)
      XCTAssertTrue(error.message.contains("'../evil'"), error.message)
    }
    await db.close()
  }
}

/// A client whose role may read but not create tables uses an up-to-date database.
final class ReadOnlyRoleTests: XCTestCase {
  func testAnUpToDateDatabaseIsOnlyReadWhenOpened() async throws {
    let cluster = try TestCluster()
    defer { cluster.remove() }
    let owner = try await cluster.connect()
    try await owner.migrate()
    let role = "vmlab_reader_\(UUID().uuidString.prefix(8).lowercased())"
    try await owner.execute("CREATE ROLE \(role) LOGIN")
    try await owner.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    try await owner.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO \(role)")
    var url = cluster.url
    url.user = role
    do {
      let reader = try await ClusterDatabase.connect(url)
      let (from, to) = try await reader.migrate()
      XCTAssertEqual(from, Schema.latestVersion)
      XCTAssertEqual(to, Schema.latestVersion)
      let hosts = try await reader.hosts()
      XCTAssertEqual(hosts, [])
      await reader.close()
    } catch {
      XCTFail("\(error)")
    }
    try await owner.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM \(role)")
    try await owner.execute("DROP ROLE \(role)")
    await owner.close()
  }
}
