import Cluster
import Foundation
import TestSupport
import XCTest

/// A `vmlab agent` process of a test, its messages in a log file. `stop()` ends it whatever state
/// it is in (paused ones are continued first); the test case calls it in its teardown.
final class AgentProcess {
  let host: String
  let library: String
  let logPath: String
  let process = Process()

  init(
    cluster: TestCluster, host: String, library: String, logPath: String, heartbeat: Double = 0.5,
    lease: Double = 3, url: String? = nil, environment: [String: String] = [:], arguments: [String] = [],
    launcher: [String] = []
  ) throws {
    self.host = host
    self.library = library
    self.logPath = logPath
    FileManager.default.createFile(atPath: logPath, contents: nil)
    let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
    try log.seekToEnd()
    let agentArguments =
      [
        "agent", "--cluster", url ?? cluster.urlText, "--host-name", host, "--library", library,
        "--heartbeat", String(heartbeat), "--lease", String(lease), "--poll", "0.5",
      ] + arguments
    // A launcher (such as `ip netns exec NS`) execs vmlab in place, so the process is the agent.
    if let program = launcher.first {
      process.executableURL = URL(fileURLWithPath: program)
      process.arguments = Array(launcher.dropFirst()) + [try VMLabBinary.path] + agentArguments
    } else {
      process.executableURL = URL(fileURLWithPath: try VMLabBinary.path)
      process.arguments = agentArguments
    }
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.standardOutput = log
    process.standardError = log
    process.standardInput = FileHandle.nullDevice
    try process.run()
    try log.close()
  }

  var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

  /// Returns once the log holds `text`; fails the test when the agent ended or the time ran out.
  func waitForLog(_ text: String, timeout: Double = 30, file: StaticString = #filePath, line: UInt = #line) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
      if log.contains(text) { return }
      if !process.isRunning && !log.contains(text) { break }
      Thread.sleep(forTimeInterval: 0.05)
    }
    XCTFail("agent \(host) never logged '\(text)':\n\(log)", file: file, line: line)
    throw XCTSkip("gave up waiting for agent \(host)")
  }

  func signal(_ number: Int32) {
    if process.isRunning { kill(process.processIdentifier, number) }
  }

  /// Waits for it to end (up to `timeout` seconds); true when it did.
  @discardableResult
  func waitForExit(timeout: Double = 20) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    return !process.isRunning
  }

  /// Ends it: continued if paused, SIGKILL, reaped.
  func stop() {
    guard process.isRunning else { return }
    signal(SIGCONT)
    signal(SIGKILL)
    waitForExit()
  }
}

/// End-to-end cluster tests: a database of their own, agents as separate processes with separate
/// libraries, every agent stopped and the database dropped in teardown even when the test fails.
class ClusterTestCase: XCTestCase {
  var cluster: TestCluster!
  var folder: TemporaryFolder!
  var agents: [String: AgentProcess] = [:]
  private var retired: [AgentProcess] = []
  /// Forwarders a test started (stopped in teardown).
  var forwarders: [SocketForwarder] = []

  override func setUpWithError() throws {
    cluster = try TestCluster()
    folder = TemporaryFolder()
  }

  override func tearDown() {
    for agent in agents.values + retired { agent.stop() }
    for forwarder in forwarders { forwarder.stop() }
    cluster?.remove()
  }

  func library(_ host: String) -> String { folder.file("library-\(host)") }

  @discardableResult
  func startAgent(
    _ host: String, heartbeat: Double = 0.5, lease: Double = 3, url: String? = nil,
    environment: [String: String] = [:], arguments: [String] = [], launcher: [String] = []
  ) throws -> AgentProcess {
    if let old = agents[host] { retired.append(old) }
    let agent = try AgentProcess(
      cluster: cluster, host: host, library: library(host), logPath: folder.file("agent-\(host).log"),
      heartbeat: heartbeat, lease: lease, url: url, environment: environment, arguments: arguments,
      launcher: launcher)
    agents[host] = agent
    try agent.waitForLog("host '\(host)' registered")
    return agent
  }

  /// Runs vmlab against the cluster (`--cluster` before the command, as users write it).
  func clusterCommand(_ arguments: [String]) throws -> CommandResult {
    try vmlab(["--cluster", cluster.urlText] + arguments, in: folder.path)
  }

  /// `host list --json`, by host name.
  func hostRows() throws -> [String: [String: Any]] {
    let result = try clusterCommand(["host", "list", "--json"])
    XCTAssertEqual(result.status, 0, result.error)
    let hosts = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [[String: Any]])
    return Dictionary(uniqueKeysWithValues: hosts.map { ($0["name"] as! String, $0) })
  }

  func hostStates() throws -> [String: String] {
    let result = try clusterCommand(["host", "list", "--json"])
    XCTAssertEqual(result.status, 0, result.error)
    let hosts = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [[String: Any]])
    return Dictionary(uniqueKeysWithValues: hosts.map { ($0["name"] as! String, $0["state"] as! String) })
  }

  /// Polls `condition` every 50 ms until it holds or `timeout` seconds pass (then the test fails).
  func waitUntil(
    _ what: String, timeout: Double = 30, file: StaticString = #filePath, line: UInt = #line,
    _ condition: () throws -> Bool
  ) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
      if try condition() { return }
      Thread.sleep(forTimeInterval: 0.05)
    }
    XCTFail("not within \(timeout) s: \(what)", file: file, line: line)
    throw XCTSkip("gave up waiting: \(what)")
  }

  /// A running VM `web` on host h1 (a virtual-server VM with additions, so a checkpoint shuts it
  /// down first: slow when `VMLAB_SIMULATED_SHUTDOWN_SECONDS` is set), then a job that checkpoints
  /// it: the step the failure tests interrupt. Returns that job's id.
  func submitCheckpointOfARunningVM() throws -> Int64 {
    let setUp = try submit(
      "set-up",
      [
        try StepRequest(
          host: "h1", kind: .createVM,
          CreateVMStep(name: "web", disks: [8 << 20], hostKind: "virtual-server", additions: true)),
        try StepRequest(host: "h1", kind: .startVMs, VMsStep(vms: ["web"])),
      ])
    XCTAssertEqual(try waitForJob(setUp).state, "done")
    return try submit(
      "checkpoint", [try StepRequest(host: "h1", kind: .checkpointVMs, CheckpointVMsStep(vms: ["web"], name: "clean"))])
  }

  /// Runs `body` on a connection of its own to the test's cluster database (closed afterwards).
  func database<T: Sendable>(_ body: @escaping @Sendable (ClusterDatabase) async throws -> T) throws -> T {
    let url = cluster.url
    return try runBlocking { try await ClusterDatabase.using(url, body) }
  }

  /// Queues a job through the cluster API (the client's part that later commands build on).
  func submit(_ kind: String, _ steps: [StepRequest], maxAttempts: Int = 3) throws -> Int64 {
    try database { db in try await db.submitJob(kind: kind, steps: steps, maxAttempts: maxAttempts) }
  }

  func job(_ id: Int64) throws -> ClusterJob {
    try database { db in try await db.jobs(ids: [id])[0] }
  }

  /// Waits until job `id` is done or failed and returns it.
  @discardableResult
  func waitForJob(_ id: Int64, timeout: Double = 60, file: StaticString = #filePath, line: UInt = #line) throws
    -> ClusterJob
  {
    var last: ClusterJob?
    try waitUntil("job \(id) finished (last: \(String(describing: last)))", timeout: timeout, file: file, line: line) {
      last = try job(id)
      return last!.steps.allSatisfy { $0.state == "done" || $0.state == "failed" }
    }
    return last!
  }

  /// The library of `host`, read with the vmlab binary.
  func localCommand(_ host: String, _ arguments: [String]) throws -> CommandResult {
    try vmlab(arguments + ["--library", library(host), "--wait"], in: folder.path)
  }
}
