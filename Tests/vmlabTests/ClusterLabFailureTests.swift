import Foundation
import TestSupport
import XCTest

@testable import Cluster

/// A lab operation across three agents whose coordinator dies, whose lab two clients race for, or
/// whose database restarts: the lab ends all or nothing on every host.
final class ClusterLabFailureTests: ClusterLabTestCase {
  /// Runs `lab restore class clean` (or `arguments`) until the lab is no longer busy (the dead
  /// coordinator's operation counts as abandoned after 5 s of silence); returns the last result.
  private func untilNotBusy(_ arguments: [String]) throws -> CommandResult {
    var last: CommandResult?
    try waitUntil("the lab no longer busy (last: \(last?.error ?? ""))", timeout: 45) {
      last = try clusterCommand(arguments)
      return !(last!.status == 1 && last!.error.contains("is busy"))
    }
    return last!
  }

  func testACoordinatorThatDiedAfterItDecidedIsFinishedByTheNextCommand() throws {
    try makeLab()
    // The coordinator's first phase and its decision, as `ClusterLabs` writes them, and then
    // nothing: it died before it queued a decide step.
    let operation = try database { db in
      let lab = try await db.lab(named: "class")
      let begun = try await db.beginLabOperation(
        lab: "class", kind: "checkpoint", checkpoint: "clean", description: "", disksOnly: false,
        createdBy: "a coordinator that dies", parts: lab.membersByHost)
      return try XCTUnwrap(begun).operation
    }
    try waitUntil("every host prepared") {
      try database { db in try await db.labOperation(operation) }.hosts.allSatisfy { $0.preparedID != nil }
    }
    _ = try database { db in try await db.decideLabOperation(operation, commit: true, reason: "every host prepared")
    }
    // Prepared and waiting: each library says so, and its VMs refuse other work.
    let waiting = try localCommand("h2", ["library", "check"])
    XCTAssertNotEqual(waiting.status, 0)
    XCTAssertTrue(waiting.output.contains("waits for its decision"), waiting.output + waiting.error)
    let busy = try clusterCommand(["lab", "restore", "class", "clean"])
    XCTAssertEqual(busy.status, 1)
    XCTAssertTrue(
      busy.error.contains("lab 'class' is busy: checkpoint 'clean' (operation \(operation)), started"), busy.error)
    XCTAssertTrue(busy.error.contains("by a coordinator that dies"), busy.error)

    let restore = try untilNotBusy(["lab", "restore", "class", "clean"])
    XCTAssertEqual(restore.status, 0, restore.error)
    try assertCheckpoints(["clean"])
    try assertLibrariesClean()
    let finished = try database { db in try await db.labOperation(operation) }
    XCTAssertTrue(finished.finished)
    XCTAssertEqual(finished.decision, "commit")
  }

  func testACoordinatorKilledBeforeItDecidedIsRolledBackByTheNextCommand() throws {
    // h1 takes 3 s to prepare: the coordinator is killed while it waits for h1.
    try makeLab(slow: ["h1"])
    let checkpoint = try background(["lab", "checkpoint", "class", "clean"], name: "checkpoint")
    try waitUntil("h2 and h3 prepared") {
      try openOperation()?.hosts.filter { $0.preparedID != nil }.map(\.host) == ["h2", "h3"]
    }
    checkpoint.stop()
    XCTAssertNil(try openOperation()?.decision, "killed before it decided")
    let next = try untilNotBusy(["lab", "checkpoint", "class", "second"])
    XCTAssertEqual(next.status, 0, next.error)
    // Presumed abort: 'clean' was rolled back on every host; 'second' was taken whole.
    try assertCheckpoints(["second"])
    try assertLibrariesClean()
    let jobs = try clusterCommand(["job", "list"])
    XCTAssertTrue(jobs.output.contains("lab-roll-back"), jobs.output)
  }

  func testTwoClientsRacingOnOneLabOneWinsAndTheOtherChangesNothing() throws {
    try makeLab(slow: ["h1"])
    let first = try background(["lab", "checkpoint", "class", "first"], name: "first")
    let second = try background(["lab", "checkpoint", "class", "second"], name: "second")
    let statuses = [first.wait(), second.wait()]
    XCTAssertEqual(statuses.compactMap { $0 }.sorted(), [0, 1], "\(first.error)\n\(second.error)")
    let (winner, loser) = statuses[0] == 0 ? ("first", second) : ("second", first)
    XCTAssertTrue(loser.error.contains("lab 'class' is busy: checkpoint '\(winner)'"), loser.error)
    XCTAssertTrue(loser.error.contains("started") && loser.error.contains(" by "), loser.error)
    try assertCheckpoints([winner])
    try assertLibrariesClean()
  }

  func testTheDatabaseRestartedMidOperationEndsAllOrNothing() throws {
    guard let postgres = ProcessInfo.processInfo.environment["VMLAB_POSTGRES_DIR"], !postgres.isEmpty else {
      throw XCTSkip("VMLAB_POSTGRES_DIR is not set: restarting the database needs the server of Scripts/postgres")
    }
    try makeLab(slow: ["h1"])
    let checkpoint = try background(["lab", "checkpoint", "class", "clean"], name: "checkpoint")
    try waitUntil("h2 and h3 prepared") {
      try openOperation()?.hosts.filter { $0.preparedID != nil }.map(\.host) == ["h2", "h3"]
    }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    try restartDatabase(script: root.appendingPathComponent("Scripts/postgres").path, folder: postgres)
    let status = checkpoint.wait(timeout: 90)
    XCTAssertNotNil(status, "the coordinator neither finished nor gave up")
    for host in hosts { XCTAssertTrue(agents[host]!.process.isRunning, agents[host]!.log) }
    if status != 0 {
      XCTAssertTrue(checkpoint.error.contains("database"), "a failure says it was the database: \(checkpoint.error)")
    }
    // Whatever the coordinator saw, the next operation finishes this one and the lab is whole.
    let restore = try untilNotBusy(["lab", "restore", "class", "--most-recent"])
    let names = try checkpointNames("h1", "h1-a")
    XCTAssertTrue(names == ["clean"] || names == [], "\(names)")
    try assertCheckpoints(names)
    if names == ["clean"] { XCTAssertEqual(restore.status, 0, restore.error) }
    try assertLibrariesClean()
    XCTAssertEqual(status, 0, "the coordinator should ride out a restart this short: \(checkpoint.error)")
  }

  /// `Scripts/postgres restart`, run without Foundation's `Process`: that one learns of its child's
  /// end from a descriptor the child inherits, and the restarted server (a grandchild) would keep
  /// it open for ever. The shell (bash: dash cannot name descriptors past 9) closes every inherited
  /// descriptor past 2 first, for the same reason.
  private func restartDatabase(script: String, folder: String) throws {
    let command =
      "for fd in /proc/$$/fd/*; do n=${fd##*/}; [ \"$n\" -gt 2 ] && eval \"exec $n>&-\"; done; exec \"$1\" restart \"$2\" >/dev/null 2>&1 </dev/null"
    let arguments = ["/bin/bash", "-c", command, "bash", script, folder]
    var pointers = arguments.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    var pid: pid_t = 0
    XCTAssertEqual(posix_spawn(&pid, "/bin/bash", nil, nil, &pointers, environ), 0, "cannot run \(script)")
    var status: Int32 = 0
    let deadline = Date().addingTimeInterval(60)
    while waitpid(pid, &status, WNOHANG) == 0 {
      guard Date() < deadline else {
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
        XCTFail("Scripts/postgres restart did not finish within 60 s")
        return
      }
      Thread.sleep(forTimeInterval: 0.05)
    }
    XCTAssertEqual(status, 0, "Scripts/postgres restart failed (see \(folder)/server.log)")
  }
}
