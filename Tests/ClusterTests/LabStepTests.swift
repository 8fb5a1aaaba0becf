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

  private func run<T: Encodable>(
    _ kind: StepKind, _ arguments: T, attempt: Int = 1, keeping prepared: PreparedOperations? = nil
  ) throws -> StepRunner.Outcome {
    let text = String(decoding: try JSONEncoder().encode(arguments), as: UTF8.self)
    var runner = StepRunner(library: library, stillHeld: { true }, progress: { _ in })
    runner.preparedOperations = prepared
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

  func testADecideStepCarriesOutWhatThisAgentsPrepareStepKeptOrElseWhatTheJournalHolds() throws {
    let clean = try library.checkpoint(vm: "a", name: "clean")
    _ = try library.checkpoint(vm: "b", name: "clean")
    let kept = PreparedOperations()
    let restore = PrepareRestoreStep(operation: 5, vms: ["a", "b"], checkpoint: "clean")
    let id = try XCTUnwrap(try run(.prepareRestore, restore, keeping: kept).prepared)
    let decided = try run(
      .decide, DecideStep(operation: 5, kind: "restore", vms: ["a", "b"], prepared: id, commit: true), keeping: kept)
    XCTAssertEqual(decided.message, "committed operation \(id) (restore of a, b)")
    XCTAssertNil(kept.take(id), "a decided operation is no longer kept")
    XCTAssertEqual(try library.vm(named: "a").currentCheckpointID, clean.checkpoint.id)
    // The replaced disks wait for the agent to tidy once the step's end is recorded.
    XCTAssertEqual(decided.untidied, ["a", "b"])
    XCTAssertEqual(
      try library.check().first, "1 operation(s) are half done in the journal; reopen the library to finish them")
    try library.tidy(vms: decided.untidied)
    XCTAssertEqual(try library.check(), [])

    // An agent that restarted between the phases keeps nothing: the journal has it all.
    let second = try XCTUnwrap(try run(.prepareRestore, restore, keeping: kept).prepared)
    let afterRestart = try run(
      .decide, DecideStep(operation: 6, kind: "restore", vms: ["a", "b"], prepared: second, commit: false),
      keeping: PreparedOperations())
    XCTAssertEqual(afterRestart.message, "rolled back operation \(second) (restore of a, b)")
    // What the first agent kept is stale now: deciding it says it no longer waits and changes nothing.
    let stale = try run(
      .decide, DecideStep(operation: 6, kind: "restore", vms: ["a", "b"], prepared: second, commit: true),
      keeping: kept)
    XCTAssertEqual(stale.message, "operation \(second) no longer waits here: an earlier attempt committed it")
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
