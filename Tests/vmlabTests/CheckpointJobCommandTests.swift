import Foundation
import TestSupport
import XCTest

/// `vmlab checkpoint new` over several VMs or a lab, waiting or `--async`, and `vmlab job wait`.
final class CheckpointJobCommandTests: XCTestCase {
  private var folder: TemporaryFolder!
  private var library: [String] { ["--library", folder.file("library")] }
  /// Each simulated guest takes this long to shut down, so that jobs that run one after the other
  /// cannot overlap, and an `--async` command returns while they still run.
  private let slowGuests = ["VMLAB_SIMULATED_SHUTDOWN_SECONDS": "2"]

  override func setUp() {
    folder = TemporaryFolder()
  }

  override func tearDown() {
    // A background vmlab that an --async command left runs until its jobs end: wait for it, so no
    // test leaves one behind (job wait always waits for the library).
    _ = try? vmlab(["job", "wait"] + library)
  }

  @discardableResult
  private func run(
    _ arguments: [String], expect status: Int32 = 0, environment: [String: String] = [:],
    file: StaticString = #filePath,
    line: UInt = #line
  ) throws -> CommandResult {
    let result = try vmlab(arguments + library, in: folder.path, environment: environment)
    XCTAssertFalse(result.signaled, "vmlab crashed: \(result.error)", file: file, line: line)
    XCTAssertEqual(result.status, status, "\(arguments): \(result.output) \(result.error)", file: file, line: line)
    return result
  }

  private func jobs(_ output: String) throws -> [[String: Any]] {
    try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]], output)
  }

  private func date(_ value: Any?) throws -> Date {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    let text = try XCTUnwrap(value as? String)
    return try XCTUnwrap(formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text), text)
  }

  /// Every job started before any of them finished: they ran at the same time.
  private func assertOverlap(_ jobs: [[String: Any]], file: StaticString = #filePath, line: UInt = #line) throws {
    let started = try jobs.map { try date($0["started"]) }
    let finished = try jobs.map { try date($0["finished"]) }
    XCTAssertLessThan(
      started.max()!, finished.min()!, "the jobs ran one after the other: \(jobs)", file: file, line: line)
  }

  private func runningVMs(_ names: [String]) throws {
    for name in names {
      try run(["vm", "create", name, "--disk", "4M", "--additions"])
      try run(["vm", "start", name])
    }
  }

  private func checkpointNames(_ vm: String) throws -> [String] {
    let listed = try jobs(try run(["checkpoint", "list", "--vm", vm, "--json"]).output)
    return listed.compactMap { $0["name"] as? String }
  }

  func testAsyncReturnsTheJobIdsAtOnceAndJobWaitReportsThem() throws {
    try runningVMs(["a", "b", "c"])
    let queued = try jobs(
      try run(["checkpoint", "new", "a", "b", "c", "--name", "round1", "--async", "--json"], environment: slowGuests)
        .output)
    XCTAssertEqual(queued.compactMap { $0["target"] as? String }, ["a", "b", "c"])
    XCTAssertEqual(queued.compactMap { $0["kind"] as? String }, ["checkpoint", "checkpoint", "checkpoint"])
    // Each guest takes two seconds to shut down: none of them can be done when the command returns.
    XCTAssertTrue(
      queued.allSatisfy { ["queued", "running"].contains($0["status"] as? String) }, "returned at once: \(queued)")
    let ids = queued.compactMap { ($0["id"] as? Int).map(String.init) }

    let waited = try jobs(try run(["job", "wait"] + ids + ["--json"]).output)
    XCTAssertEqual(waited.compactMap { $0["status"] as? String }, ["completed", "completed", "completed"])
    try assertOverlap(waited)
    for vm in ["a", "b", "c"] { XCTAssertEqual(try checkpointNames(vm), ["round1"]) }
    let shown = try parseJSON(try run(["vm", "show", "a", "--json"]).output)
    XCTAssertEqual(shown["state"] as? String, "running", "started again after its checkpoint")
    try run(["library", "check"])
  }

  func testJobWaitWithoutIdsWaitsForEveryUnfinishedJob() throws {
    try runningVMs(["a", "b"])
    let text = try run(["checkpoint", "new", "a", "b", "--name", "n1", "--async"], environment: slowGuests).output
    XCTAssertTrue(text.contains("job 1: checkpoint of a queued"), text)
    XCTAssertTrue(text.contains("vmlab job wait 1 2"), text)
    let waited = try run(["job", "wait"])
    let listed = try run(["job", "list"]).output
    XCTAssertTrue(
      waited.output.contains("a   completed") && waited.output.contains("b   completed"), waited.output + listed)
    // Nothing is left to wait for now.
    XCTAssertTrue(try run(["job", "wait"]).output.contains("no jobs were queued or running"))
  }

  func testSeveralVMsWithoutAsyncRunInParallelAndTheCommandWaits() throws {
    try runningVMs(["a", "b", "c"])
    let finished = try jobs(
      try run(["checkpoint", "new", "a", "b", "c", "--name", "together", "--json"], environment: slowGuests).output)
    XCTAssertEqual(finished.compactMap { $0["status"] as? String }, ["completed", "completed", "completed"])
    try assertOverlap(finished)
    for vm in ["a", "b", "c"] { XCTAssertEqual(try checkpointNames(vm), ["together"]) }
  }

  func testALabIsCheckpointedAllOrNothingAsOneJob() throws {
    try runningVMs(["a", "b"])
    try run(["lab", "create", "class", "a", "b"])
    let queued = try jobs(try run(["checkpoint", "new", "--lab", "class", "--name", "r2", "--async", "--json"]).output)
    XCTAssertEqual(queued.count, 1)
    XCTAssertEqual(queued.first?["kind"] as? String, "lab-checkpoint")
    let id = String(try XCTUnwrap(queued.first?["id"] as? Int))
    XCTAssertEqual(try jobs(try run(["job", "wait", id, "--json"]).output).first?["status"] as? String, "completed")
    XCTAssertEqual(try checkpointNames("a"), ["r2"])
    XCTAssertEqual(try checkpointNames("b"), ["r2"])
    // Waiting: a table of what happened to each VM.
    let table = try run(["checkpoint", "new", "--lab", "class", "--name", "r3"]).output
    XCTAssertTrue(table.contains("r3"), table)
  }

  func testTheOldFormStaysAndMistakesQueueNothing() throws {
    try runningVMs(["a", "b"])
    var result = try run(["checkpoint", "new", "a", "clean"])
    XCTAssertTrue(result.output.contains("'clean' of a taken (shut down, started again)"), result.output)

    // Two words that are both VMs: which was meant is not guessed.
    result = try run(["checkpoint", "new", "a", "b"], expect: 2)
    XCTAssertTrue(result.error.contains("'b' is a VM"), result.error)
    XCTAssertTrue(result.error.contains("--name"), result.error)
    result = try run(["checkpoint", "new", "a", "b", "c"], expect: 2)
    XCTAssertTrue(result.error.contains("--name NAME"), result.error)
    result = try run(["checkpoint", "new", "a", "--lab", "class", "--name", "x"], expect: 2)
    XCTAssertTrue(result.error.contains("VMs or --lab"), result.error)
    result = try run(["checkpoint", "new", "a", "A", "--name", "x"], expect: 2)
    XCTAssertTrue(result.error.contains("named twice"), result.error)
    result = try run(["checkpoint", "new", "--name", "x"], expect: 2)
    XCTAssertTrue(result.error.contains("--lab"), result.error)

    // An unknown VM among several: an error (also with --async, from the background process), and
    // no job queued for the others.
    for async in [[], ["--async"]] {
      result = try run(["checkpoint", "new", "a", "ghost", "--name", "x"] + async, expect: 1)
      XCTAssertTrue(result.error.contains("VM 'ghost' not found"), result.error)
    }
    result = try run(["checkpoint", "new", "--lab", "nolab", "--name", "x", "--async"], expect: 1)
    XCTAssertTrue(result.error.contains("nolab"), result.error)
    XCTAssertEqual(try checkpointNames("a"), ["clean"])
    XCTAssertEqual(try jobs(try run(["job", "list", "--json"]).output).count, 0)
    result = try run(["job", "wait", "99"], expect: 1)
    XCTAssertTrue(result.error.contains("job 99 not found"), result.error)
  }
}
