import Cluster
import TestSupport
import XCTest

/// Hosts: registration, a name held by a live agent, heartbeats, and alive, dead or stopped by the
/// database's clock.
final class HostRegistrationTests: XCTestCase {
  var cluster: TestCluster!
  var db: ClusterDatabase!
  let capacity = HostCapacity(memoryTotal: 16 << 30, memoryFree: 5 << 30, diskTotal: 100 << 30, diskFree: 40 << 30)

  override func setUp() async throws {
    cluster = try TestCluster()
    db = try await cluster.connect()
    try await db.migrate()
  }

  override func tearDown() async throws {
    await db?.close()
    cluster?.remove()
  }

  private func register(_ host: String, agent: String, heartbeat: Double = 60) async throws {
    try await db.register(
      host: host, agent: agent, address: "machine-\(host)", library: "/lib/\(host)", capacity: capacity,
      capabilities: ["simulated", "qemu"], heartbeatSeconds: heartbeat)
  }

  func testARegisteredHostIsListedAliveWithItsCapacity() async throws {
    try await register("h1", agent: "a1")
    let hosts = try await db.hosts()
    XCTAssertEqual(hosts.count, 1)
    XCTAssertEqual(hosts[0].name, "h1")
    XCTAssertEqual(hosts[0].state, .alive)
    XCTAssertEqual(hosts[0].capacity, capacity)
    XCTAssertEqual(hosts[0].capabilities, ["simulated", "qemu"])
    XCTAssertEqual(hosts[0].library, "/lib/h1")
    XCTAssertEqual(hosts[0].vmCount, 0)
    XCTAssertLessThan(hosts[0].heartbeatAge, 5)
  }

  func testALiveAgentKeepsItsNameAndADeadOneLosesIt() async throws {
    try await register("h1", agent: "a1", heartbeat: 0.3)
    do {
      try await register("h1", agent: "a2")
      XCTFail("a second agent took a live host's name")
    } catch let error as ClusterError {
      XCTAssertEqual(error.kind, .usage)
      XCTAssertTrue(error.message.contains("host name 'h1' is held by a live agent (a1"), error.message)
      XCTAssertTrue(error.message.contains("another --host-name"), error.message)
    }
    try await waitFor("h1 dead") { try await self.db.hosts().first?.state == .dead }
    try await register("h1", agent: "a2")
    let oldAgentHeld = try await db.heartbeat(host: "h1", agent: "a1", capacity: capacity)
    XCTAssertFalse(
      oldAgentHeld,
      "the old agent's heartbeat tells it the name was taken")
    let newAgentHeld = try await db.heartbeat(host: "h1", agent: "a2", capacity: capacity)
    XCTAssertTrue(newAgentHeld)
    let holder = try await db.hosts().first?.agent
    XCTAssertEqual(holder, "a2")
  }

  func testHeartbeatsKeepAHostAliveAndACleanStopShowsAsStopped() async throws {
    try await register("h1", agent: "a1", heartbeat: 0.3)
    try await register("h2", agent: "a2", heartbeat: 0.3)
    try await waitFor("h2 dead while h1 heartbeats") {
      _ = try await self.db.heartbeat(host: "h1", agent: "a1", capacity: self.capacity)
      let hosts = try await self.db.hosts()
      XCTAssertEqual(hosts.first { $0.name == "h1" }?.state, .alive)
      return hosts.first { $0.name == "h2" }?.state == .dead
    }
    try await db.markStopped(host: "h1", agent: "a1")
    let afterStop = try await db.hosts().first { $0.name == "h1" }?.state
    XCTAssertEqual(afterStop, .stopped)
    try await register("h1", agent: "a3")
    let afterNewAgent = try await db.hosts().first { $0.name == "h1" }?.state
    XCTAssertEqual(afterNewAgent, .alive, "a stopped host's name is free")
  }

  private func waitFor(_ what: String, seconds: Double = 10, _ condition: @escaping () async throws -> Bool)
    async throws
  {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      if try await condition() { return }
      try await Task.sleep(nanoseconds: 50_000_000)
    }
    XCTFail("not within \(seconds) s: \(what)")
  }
}
