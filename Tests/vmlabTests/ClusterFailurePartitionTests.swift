import Cluster
import Foundation
import TestSupport
import XCTest

/// Three hosts in network namespaces of the test's own, each reaching PostgreSQL over TCP through
/// its veth link (a forwarder listens on the link's host side); one link is cut in the middle of a
/// step. Needs root and iproute2 (CI runs as root); skipped otherwise.
final class ClusterFailurePartitionTests: ClusterTestCase {
  let hosts = ["h1", "h2", "h3"]
  private var namespaces: [String: NetworkNamespace] = [:]

  override func setUpWithError() throws {
    try NetworkNamespace.checkAvailable()
    try super.setUpWithError()
  }

  override func tearDown() {
    // Agents first (a namespace outlives nothing that runs in it), then the links.
    super.tearDown()
    for namespace in namespaces.values { namespace.remove() }
  }

  /// Each host in a namespace of its own, its agent reaching the database only over its link.
  private func startHostsInNamespaces(lease: Double, environment: [String: String]) throws {
    let socket = try XCTUnwrap(cluster.url.endpoint.socketPath)
    let tag = String(UUID().uuidString.lowercased().filter(\.isHexDigit).prefix(5))
    let subnet = Int.random(in: 0...255)
    for (index, host) in hosts.enumerated() {
      let namespace = try NetworkNamespace(tag: tag, index: index, subnet: subnet)
      namespaces[host] = namespace
      let link = try SocketForwarder(to: socket, address: namespace.hostAddress)
      forwarders.append(link)
      let url =
        "postgresql://\(cluster.url.user)@\(namespace.hostAddress):\(link.port)/\(cluster.url.database)?sslmode=disable"
      try startAgent(host, lease: lease, url: url, environment: environment, launcher: namespace.launcher)
    }
  }

  func testAHostCutOffMidStepShowsDeadLosesItsLeaseAndItsStaleFenceIsRefusedWhenItComesBack() throws {
    try startHostsInNamespaces(lease: 1.5, environment: ["VMLAB_SIMULATED_SHUTDOWN_SECONDS": "3"])
    try waitUntil("three hosts alive") { try hostStates() == ["h1": "alive", "h2": "alive", "h3": "alive"] }
    let job = try submitCheckpointOfARunningVM()
    let h1 = agents["h1"]!
    try h1.waitForLog("(checkpoint-vms, job \(job), attempt 1 of 3")
    let firstFence = try self.job(job).steps[0].fence

    try namespaces["h1"]!.cut()
    try waitUntil("h1 dead while its link is down") { try hostStates()["h1"] == "dead" }
    var step: StepStatus?
    try waitUntil("h1's step taken back when its lease ran out") {
      step = try self.job(job).steps[0]
      return step!.state == "queued"
    }
    XCTAssertTrue(step!.error?.contains("attempt 1 of 3 on host h1 ended: its lease ran out") == true, "\(step!)")
    try h1.waitForLog("cannot reach the cluster database")
    try h1.waitForLog("starting no new step until it answers")
    // Cut off, it takes nothing: the step waits, queued, for its host.
    XCTAssertEqual(try self.job(job).steps[0].attempts, 1)
    XCTAssertEqual(try hostStates(), ["h1": "dead", "h2": "alive", "h3": "alive"])

    try namespaces["h1"]!.restore()
    try h1.waitForLog("fence \(firstFence)): abandoned, the database refused its result: fence \(firstFence) is stale")
    try h1.waitForLog("the cluster database answers again")
    let finished = try waitForJob(job)
    XCTAssertEqual(finished.state, "done", "\(finished.steps)\n\(h1.log)")
    XCTAssertEqual(finished.steps[0].attempts, 2)
    XCTAssertGreaterThan(finished.steps[0].fence, firstFence)
    XCTAssertEqual(
      finished.steps[0].result, "checkpoint 'clean' of no VM; web had it already (an earlier attempt)",
      "the cut-off attempt's checkpoint is kept, not taken twice")
    XCTAssertFalse(h1.log.contains("fence \(firstFence)): done"), h1.log)
    try waitUntil("h1 alive again") { try hostStates()["h1"] == "alive" }
    let check = try localCommand("h1", ["library", "check"])
    XCTAssertEqual(check.status, 0, "\(check.output)\(check.error)")
    let list = try localCommand("h1", ["checkpoint", "list", "--vm", "web", "--json"])
    let checkpoints = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(list.output.utf8)) as? [[String: Any]])
    XCTAssertEqual(checkpoints.compactMap { $0["name"] as? String }, ["clean"])
  }
}
