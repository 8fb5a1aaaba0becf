import LabKit
import TestSupport
import XCTest

@testable import Cluster

/// The agent's two phases of a lab operation on its library: a prepare hands back the operation it
/// left waiting, a retried prepare takes that one over instead of preparing twice, a decide carries
/// the decision out once and says so when asked again, and a roll-back without an id finds what a
/// late prepare left.
final class LabStepTests: AgentLibraryTestCase {
  override func setUpWithError() throws {
    try super.setUpWithError()
    for name in ["a", "b"] { _ = try library.createVM(name: name, diskSizes: [8 << 20]) }
  }

  private func run<T: Encodable>(_ kind: StepKind, _ arguments: T, attempt: Int = 1) throws -> StepRunner.Outcome {
    let text = String(decoding: try JSONEncoder().encode(arguments), as: UTF8.self)
    var runner = StepRunner(library: library, stillHeld: { true }, progress: { _ in })
    runner.reopen = {
      try self.library.close()
      self.library = try self.openLibrary()
      return self.library
    }
    return try runner.run(
      claimed(kind.rawValue, text, attempt: attempt))
  }

  private func checkpointNames(_ vm: String) throws -> [String] {
    try library.checkpoints(vm: vm).map(\.name)
  }

  func testARetriedPrepareTakesOverTheEarlierAttemptsOperationAndTheDecisionCommitsIt() throws {
    let step = PrepareCheckpointStep(operation: 9, vms: ["a", "b"], name: "clean", description: "lesson 1")
    let first = try run(.prepareCheckpoint, step)
    let id = try XCTUnwrap(first.prepared)
    XCTAssertTrue(first.message.contains("prepared checkpoint 'clean' of a, b (operation \(id))"), first.message)
    // The agent died before it recorded the id: the next attempt finds the operation in the journal.
    let retried = try run(.prepareCheckpoint, step, attempt: 2)
    XCTAssertEqual(retried.prepared, id)
    XCTAssertTrue(retried.message.contains("prepared by an earlier attempt (operation \(id))"), retried.message)
    XCTAssertEqual(library.unsettledOperations.filter { $0.preparedOperationID != nil }.count, 1, "prepared once")
    XCTAssertEqual(try checkpointNames("a"), [], "nothing is taken before the decision")

    let decided = try run(
      .decide, DecideStep(operation: 9, kind: "checkpoint", vms: ["a", "b"], prepared: id, commit: true))
    XCTAssertEqual(decided.message, "committed operation \(id) (checkpoint of a, b)")
    XCTAssertEqual(try checkpointNames("a"), ["clean"])
    XCTAssertEqual(try checkpointNames("b"), ["clean"])
    let again = try run(
      .decide, DecideStep(operation: 9, kind: "checkpoint", vms: ["a", "b"], prepared: id, commit: true))
    XCTAssertEqual(again.message, "operation \(id) no longer waits here: an earlier attempt committed it")
    XCTAssertEqual(try checkpointNames("a"), ["clean"], "committed once")
    XCTAssertEqual(try library.check(), [])
  }

  func testARollBackWithoutAnIdUndoesWhatALatePrepareLeftAndNothingWhenItLeftNothing() throws {
    let nothing = try run(.decide, DecideStep(operation: 3, kind: "restore", vms: ["a"], prepared: nil, commit: false))
    XCTAssertEqual(nothing.message, "nothing of lab operation 3 was prepared here; nothing to roll back")
    _ = try library.checkpoint(vm: "a", name: "clean")
    let prepared = try run(.prepareRestore, PrepareRestoreStep(operation: 4, vms: ["a"], checkpoint: nil))
    let id = try XCTUnwrap(prepared.prepared)
    XCTAssertTrue(prepared.message.contains("prepared the restore of a to 'clean'"), prepared.message)
    let rolledBack = try run(
      .decide, DecideStep(operation: 4, kind: "restore", vms: ["a"], prepared: nil, commit: false))
    XCTAssertEqual(rolledBack.message, "rolled back operation \(id) (restore of a)")
    XCTAssertEqual(try library.check(), [], "nothing waits any more")
    XCTAssertThrowsError(
      try run(.decide, DecideStep(operation: 4, kind: "restore", vms: ["a"], prepared: nil, commit: true))
    ) { error in
      XCTAssertTrue("\(error)".contains("a commit needs the prepared operation's id"), "\(error)")
    }
  }

  func testAPrepareThatCannotRunSaysWhyAndLeavesNothingWaiting() throws {
    XCTAssertThrowsError(
      try run(.prepareRestore, PrepareRestoreStep(operation: 1, vms: ["a", "b"], checkpoint: "clean"))
    ) { error in
      XCTAssertTrue("\(error)".contains("clean"), "\(error)")
    }
    XCTAssertThrowsError(try run(.prepareRestore, PrepareRestoreStep(operation: 1, vms: ["a"], checkpoint: nil))) {
      error in
      XCTAssertTrue("\(error)".contains("VM 'a' has no checkpoint; nothing was restored"), "\(error)")
    }
    XCTAssertThrowsError(try run(.prepareCheckpoint, PrepareCheckpointStep(operation: 1, vms: ["../x"], name: "c"))) {
      error in
      XCTAssertTrue("\(error)".contains("VM name '../x' is not allowed"), "\(error)")
    }
    XCTAssertThrowsError(try run(.decide, ["operation": 1])) { error in
      XCTAssertTrue("\(error)".contains("step 'decide' has arguments this agent cannot read"), "\(error)")
    }
    XCTAssertEqual(try library.check(), [])
  }
}
