import Foundation
import TestSupport
import XCTest

@testable import LabKit

/// `Library.merge(checkpoints:)`: one engine call for a merge over several VMs, with the rule for
/// changing several VMs checked there (the CLI's `--all` and Lua's `{all=true}` only pass it on).
final class BulkMergeTests: LabKitTestCase {
  /// web01 with `one` and `two`, db01 with `one`; each VM's disk holds data written after each.
  func makeVMs() throws -> (web: [Checkpoint], db: [Checkpoint]) {
    try library.createVM(name: "web01", diskSizes: [4 * MiB])
    try library.createVM(name: "db01", diskSizes: [4 * MiB])
    try library.write("web01", disk: 1, at: 0, pattern(1, 4096))
    try library.checkpoint(vm: "web01", name: "one")
    try library.write("web01", disk: 1, at: 8192, pattern(2, 4096))
    try library.checkpoint(vm: "web01", name: "two")
    try library.write("web01", disk: 1, at: 65536, pattern(3, 4096))
    try library.write("db01", disk: 1, at: 0, pattern(4, 4096))
    try library.checkpoint(vm: "db01", name: "one")
    try library.write("db01", disk: 1, at: 4096, pattern(5, 4096))
    return (try library.checkpoints(vm: "web01"), try library.checkpoints(vm: "db01"))
  }

  func testSeveralVMsNeedTheCallersConfirmation() throws {
    let (web, db) = try makeVMs()
    let ids = [web[1].id, db[0].id]
    let error = expectError(.unconfirmedBulkChange) {
      try library.merge(checkpoints: ids, all: false, confirm: "say all=yes")
    }
    XCTAssertEqual(
      error?.message,
      "merge: this would change 2 VMs (web01, db01); changing several VMs at once must be deliberate: say all=yes")
    XCTAssertEqual(try library.checkpoints().count, 3, "nothing was merged")
    // A plan needs no confirmation and changes nothing; one VM needs none either.
    let plans = try library.merge(checkpoints: ids, all: false, whatIf: true, confirm: "")
    XCTAssertEqual(plans.map(\.vm), ["web01", "db01"])
    XCTAssertEqual(plans.map(\.applied), [false, false])
    XCTAssertEqual(try library.checkpoints().count, 3)
    try library.merge(checkpoints: [web[1].id], all: false, confirm: "")
    XCTAssertEqual(try library.checkpoints().map(\.name), ["one", "one"])
  }

  func testEveryVMIsMergedAndReadsAsBefore() throws {
    let (web, db) = try makeVMs()
    let before = [
      try library.contents("web01", disk: 1, size: 4 * MiB), try library.contents("db01", disk: 1, size: 4 * MiB),
    ]
    var approved: [String] = []
    // web01's `one` folds `two` too, which is then skipped.
    let plans = try library.merge(
      checkpoints: [web[0].id, web[1].id, db[0].id], all: true, confirm: "",
      approve: { plans in approved = plans.map { "\($0.vm) \($0.checkpointsRemoved)" } })
    XCTAssertEqual(approved, ["web01 [\"one\", \"two\"]", "web01 [\"two\"]", "db01 [\"one\"]"])
    XCTAssertEqual(plans.map(\.vm), ["web01", "db01"])
    XCTAssertEqual(plans.map(\.applied), [true, true])
    XCTAssertEqual(try library.checkpoints(), [])
    assertEqualBytes(try library.contents("web01", disk: 1, size: 4 * MiB), before[0], "web01 reads as before")
    assertEqualBytes(try library.contents("db01", disk: 1, size: 4 * MiB), before[1], "db01 reads as before")
    try assertConsistent()
  }

  func testAnApprovalThatSaysNoMergesNothing() throws {
    let (web, db) = try makeVMs()
    struct Declined: Error {}
    XCTAssertThrowsError(
      try library.merge(checkpoints: [web[0].id, db[0].id], all: true, confirm: "", approve: { _ in throw Declined() })
    ) { XCTAssertTrue($0 is Declined, "\($0)") }
    XCTAssertEqual(try library.checkpoints().count, 3)
    try assertConsistent()
  }

  /// Each VM's merge stands on its own: one that fails is named, the other is merged, and the failed
  /// one is finished before the next operation on its VM.
  func testOneVMFailingIsNamedAndTheOtherIsMerged() throws {
    let (web, db) = try makeVMs()
    let plan = FaultPlan(step: "merge:files")
    library.faultInjection = plan.hit
    let error = expectError(.failed) {
      try library.merge(checkpoints: [web[1].id, db[0].id], all: true, confirm: "")
    }
    library.faultInjection = nil
    XCTAssertTrue(error?.message.contains("merge failed for 1 of 2 VMs (1 merged)") ?? false, error?.message ?? "")
    XCTAssertTrue(error?.message.contains("injected failure") ?? false, error?.message ?? "")
    XCTAssertEqual(try library.checkpoints().count, 2, "one VM's checkpoint is merged, the other is not yet")
    try reopen()
    XCTAssertEqual(try library.checkpoints().map(\.name), ["one"], "opening finished the interrupted merge")
    try assertConsistent()
  }

  func testAStaleCheckpointIsAClearError() throws {
    let (web, db) = try makeVMs()
    try library.merge(checkpoint: db[0].id)
    let error = expectError(.notFound) {
      try library.merge(checkpoints: [web[1].id, db[0].id], all: true, confirm: "")
    }
    XCTAssertTrue(error?.message.contains("checkpoint \(db[0].id) not found") ?? false, error?.message ?? "")
    XCTAssertEqual(try library.checkpoints().count, 2, "nothing else was merged")
  }
}
