import Cluster
import LabKit
import TestSupport
import XCTest

/// Placement against PostgreSQL: rooms from heartbeats less the VMs being created, two requests
/// that see each other, names in use, offers, and `createVMs` waiting for the agents' results.
final class PlacementDatabaseTests: XCTestCase {
  var cluster: TestCluster!
  var db: ClusterDatabase!
  let gib: Int64 = 1 << 30

  override func setUp() async throws {
    cluster = try TestCluster()
    db = try await cluster.connect()
    try await db.migrate()
  }

  override func tearDown() async throws {
    await db?.close()
    cluster?.remove()
  }

  private func register(_ host: String, memory: Int64, disk: Int64 = 100 << 30) async throws {
    try await db.register(
      host: host, agent: "agent-\(host)", address: host, library: "/lib/\(host)",
      capacity: HostCapacity(memoryTotal: memory, memoryFree: memory, diskTotal: disk, diskFree: disk),
      capabilities: ["simulated"], heartbeatSeconds: 600)
  }

  private func vms(_ prefix: String, _ count: Int, memory: Int64) -> [CreateVMStep] {
    (1...count).map { CreateVMStep(name: "\(prefix)\($0)", disks: [1 << 20], memory: UInt64(memory)) }
  }

  private func hostsOf(job: Int64) async throws -> [String: Int] {
    let steps = try await db.jobs(ids: [job])[0].steps
    return Dictionary(steps.map { ($0.host, 1) }, uniquingKeysWith: +)
  }

  func testRequestsOneAfterTheOtherSeeTheVMsStillBeingCreated() async throws {
    for host in ["h1", "h2", "h3"] { try await register(host, memory: 4 * gib) }
    let placement = ClusterPlacement(db)
    let first = try await placement.submit(vms("a", 6, memory: gib))
    let firstHosts = try await hostsOf(job: first)
    XCTAssertEqual(firstHosts, ["h1": 2, "h2": 2, "h3": 2])
    // No agent ran them: the heartbeats still say 4 GiB everywhere, the queued steps do not.
    let second = try await placement.submit(vms("b", 6, memory: gib))
    let secondHosts = try await hostsOf(job: second)
    XCTAssertEqual(secondHosts, ["h1": 2, "h2": 2, "h3": 2])
    do {
      _ = try await placement.submit(vms("c", 1, memory: gib))
      XCTFail("a 13th VM of 1 GiB was placed on 12 GiB")
    } catch {
      XCTAssertEqual(
        "\(error)",
        "1 VM of 1 GiB need 1 GiB of memory; the live hosts have 0 bytes free: h1 0 bytes, h2 0 bytes, h3 0 bytes; nothing was created"
      )
    }
    let jobs = try await db.jobs()
    XCTAssertEqual(jobs.count, 2, "a refused request queued a job")
  }

  func testTwoClientsPlacingAtOnceDoNotFillTheSameRoom() async throws {
    for host in ["h1", "h2"] { try await register(host, memory: 3 * gib) }
    let url = cluster.url
    let (x, y) = (vms("x", 3, memory: gib), vms("y", 3, memory: gib))
    async let one: Result<Int64, Error> = Self.submitOnOwnConnection(url, x)
    async let two: Result<Int64, Error> = Self.submitOnOwnConnection(url, y)
    let results = await [one, two]
    XCTAssertTrue(results.allSatisfy { (try? $0.get()) != nil }, "\(results)")
    let steps = try await db.jobs().flatMap(\.steps)
    XCTAssertEqual(Dictionary(steps.map { ($0.host, 1) }, uniquingKeysWith: +), ["h1": 3, "h2": 3])
    do {
      _ = try await ClusterPlacement(db).submit(vms("z", 1, memory: gib))
      XCTFail("placed past the room both clients took")
    } catch {}
  }

  private static func submitOnOwnConnection(_ url: ClusterURL, _ steps: [CreateVMStep]) async -> Result<Int64, Error> {
    do {
      let db = try await ClusterDatabase.connect(url)
      defer { Task { await db.close() } }
      return .success(try await ClusterPlacement(db).submit(steps))
    } catch {
      return .failure(error)
    }
  }

  func testANameInUseOrBeingCreatedIsRefusedBeforeAnythingIsQueued() async throws {
    try await register("h1", memory: 8 * gib)
    let placement = ClusterPlacement(db)
    _ = try await placement.submit([CreateVMStep(name: "web", disks: [1 << 20])])
    do {
      _ = try await placement.submit([
        CreateVMStep(name: "api", disks: [1 << 20]), CreateVMStep(name: "WEB", disks: []),
      ])
      XCTFail("a second VM 'web' was queued")
    } catch {
      XCTAssertEqual(
        "\(error)", "VM name in use in the cluster: 'web' on host h1; choose another name; nothing was created")
    }
    do {
      _ = try await placement.submit([CreateVMStep(name: "a", disks: []), CreateVMStep(name: "A", disks: [])])
      XCTFail("the same name twice was queued")
    } catch {
      XCTAssertEqual("\(error)", "VM 'A' is asked for twice; nothing was created")
    }
    do {
      _ = try await placement.submit([CreateVMStep(name: "../x", disks: [])])
      XCTFail("a bad name was queued")
    } catch let error as ClusterError {
      XCTAssertEqual(error.kind, .usage)
      XCTAssertTrue(error.message.contains("VM name '../x' is not allowed"), error.message)
    }
    let jobs = try await db.jobs()
    XCTAssertEqual(jobs.count, 1)
  }

  func testAnOfferLimitsTheRoomAndCountsTheVMsAlreadyThere() async throws {
    try await register("h1", memory: 64 * gib)
    try await register("h2", memory: 64 * gib)
    try await db.setOffer(host: "h1", agent: "agent-h1", memory: 2 * gib, disk: nil)
    let placement = ClusterPlacement(db)
    let job = try await placement.submit(vms("a", 1, memory: gib), host: "h1")
    // The agent's part, by hand: claim, place, finish.
    let step = try await XCTUnwrapAsync(try await db.claimStep(host: "h1", agent: "agent-h1", leaseSeconds: 30))
    let placed = try await db.placeVM("a1", key: "a1", host: "h1", step: step.id, fence: step.fence)
    let finished = try await db.finish(step, succeeded: true, message: "made")
    XCTAssertTrue(placed && finished)
    let state = try await db.jobs(ids: [job])[0].state
    XCTAssertEqual(state, "done")
    _ = try await db.heartbeat(
      host: "h1", agent: "agent-h1",
      capacity: HostCapacity(memoryTotal: 64 * gib, memoryFree: 64 * gib, diskTotal: 100 * gib, diskFree: 100 * gib))
    // After a heartbeat the VM is in the measured figures, but the offer still counts it.
    do {
      _ = try await placement.plan(vms("b", 1, memory: 2 * gib), host: "h1")
      XCTFail("planned a 2 GiB VM into an offer of 2 GiB that holds 1 GiB already")
    } catch {
      XCTAssertTrue("\(error)".contains("host 'h1' (--host-name) has 1 GiB of memory"), "\(error)")
    }
    // Without the pin it goes to h2, which offers what it has.
    let elsewhere = try await placement.plan(vms("b", 1, memory: 2 * gib))
    XCTAssertEqual(elsewhere.map(\.host), ["h2"])
  }

  func testCreateVMsWaitsForTheStepsAndNamesAFailedHostAndVM() async throws {
    for host in ["h1", "h2"] { try await register(host, memory: 4 * gib) }
    let url = cluster.url
    // Two stand-in agents: h1 makes its VMs, h2 fails.
    let agents = Task {
      let db = try await ClusterDatabase.connect(url)
      defer { Task { await db.close() } }
      var finished = 0
      let deadline = Date().addingTimeInterval(20)
      while finished < 2 && Date() < deadline {
        for host in ["h1", "h2"] {
          guard let step = try await db.claimStep(host: host, agent: "agent-\(host)", leaseSeconds: 30) else {
            continue
          }
          let name = try JSONDecoder().decode(CreateVMStep.self, from: Data(step.arguments.utf8)).name
          if host == "h1" {
            _ = try await db.placeVM(name, key: name, host: host, step: step.id, fence: step.fence)
            _ = try await db.finish(step, succeeded: true, message: "created \(name)")
          } else {
            _ = try await db.finish(step, succeeded: false, message: "disk full")
          }
          finished += 1
        }
        try await Task.sleep(nanoseconds: 20_000_000)
      }
    }
    defer { agents.cancel() }
    var placement = ClusterPlacement(db)
    placement.pollSeconds = 0.05
    placement.timeout = 20
    do {
      _ = try await placement.createVMs(vms("v", 2, memory: gib))
      XCTFail("a failed step was not reported")
    } catch {
      let text = "\(error)"
      XCTAssertTrue(text.contains("failed: VM 'v"), text)
      XCTAssertTrue(text.contains("on host h2: disk full; created: v"), text)
      XCTAssertTrue(text.hasSuffix("on h1"), text)
    }
    try await agents.value
    let placed = try await db.placedVMs()
    XCTAssertEqual(placed.map(\.host), ["h1"])
    XCTAssertEqual(placed[0].hostState, .alive)
  }
}

/// XCTUnwrap for an async expression.
func XCTUnwrapAsync<T>(_ value: @autoclosure () async throws -> T?, file: StaticString = #filePath, line: UInt = #line)
  async throws -> T
{
  let result = try await value()
  return try XCTUnwrap(result, file: file, line: line)
}
