import Foundation
import TestSupport
import XCTest

@testable import LabKit

/// Checkpoints and restores in two phases, as a cluster takes a lab's over several hosts: prepare
/// (VMs paused or stopped, every file made and synced, the commit kept in the journal), then commit
/// or roll back on the decision. Between the phases the VMs refuse other work; after a crash the entry waits for
/// its decision instead of rolling back, and the decision is carried out from the journal alone.
final class TwoPhaseOperationTests: FailingHostTestCase {
  override var hostCapabilities: HostCapabilities? { .all }

  /// A paused-and-switched VM (`hv`) and a virtual-server VM with additions (`vs`), both running
  /// with data on their disks.
  private func twoRunningVMs() throws {
    try library.createVM(name: "hv", diskSizes: [diskSize], additions: true, hostKind: .hypervisor)
    try library.createVM(name: "vs", diskSizes: [diskSize, diskSize], additions: true)
    for vm in ["hv", "vs"] {
      try library.start(vm: vm)
      try library.write(vm, disk: 1, at: 0, pattern(vm == "hv" ? 1 : 2, 5000))
    }
    failing.inner.setMemory("hv", "lesson 3")
  }

  private func contents() throws -> [[UInt8]] {
    [try library.contents("hv", disk: 1), try library.contents("vs", disk: 1), try library.contents("vs", disk: 2)]
  }

  private func assertWaits(_ vm: String, operation id: Int64, line: UInt = #line) {
    let error = expectError(.invalidState) { _ = try self.library.checkpoint(vm: vm, name: "other") }
    XCTAssertEqual(
      error?.message,
      "VMs 'hv', 'vs' have a prepared checkpoint (operation \(id)) that waits for its decision; nothing else is done to them until the cluster commits or rolls it back (by hand, when the cluster's decision is known or the cluster is gone: `vmlab library decide \(id) --commit` or `--roll-back`)",
      line: line)
  }

  func testACommitTakesTheCheckpointOnEveryVMAtTheMomentItWasPrepared() throws {
    try twoRunningVMs()
    let moment = try contents()
    let prepared = try library.prepareCheckpoint(vms: ["hv", "vs"], name: "clean", description: "day 1")
    XCTAssertEqual(prepared.vms, ["hv", "vs"])
    // Prepared: the files are there, no checkpoint yet, hv paused, vs shut down; nothing else runs.
    XCTAssertEqual(Array(failing.inner.log.suffix(2)), ["pause hv", "save-running hv"])
    XCTAssertEqual(try library.checkpoints(), [])
    XCTAssertFalse(failing.inner.log.contains("continue hv"), "hv stays paused until the decision")
    XCTAssertEqual(try library.vm(named: "vs").state, .stopped)
    XCTAssertEqual(filesUnder(root).filter { $0.contains(prepared.stamp) }.count, 4, "3 disks and hv's memory")
    assertWaits("hv", operation: prepared.operationID)
    assertWaits("vs", operation: prepared.operationID)
    XCTAssertThrowsError(try library.write("vs", disk: 1, at: 0, pattern(9, 100)), "no guest writes either")

    let results = try library.decide(prepared, commit: true)
    XCTAssertEqual(results.map(\.checkpoint.vm), ["hv", "vs"])
    XCTAssertEqual(Set(results.map(\.checkpoint.stamp)), [prepared.stamp], "one moment")
    XCTAssertEqual(results.map(\.vmState), [.running, .running])
    XCTAssertEqual(Array(failing.inner.log.suffix(4).prefix(3)), ["switch hv", "continue hv", "thaw hv"])
    XCTAssertEqual(failing.inner.memory("hv"), "lesson 3", "hv was continued, never restarted")
    try assertConsistent()
    // Both come back to that moment.
    for vm in ["hv", "vs"] { try library.write(vm, disk: 1, at: 0, pattern(7, 5000)) }
    try library.restoreLab(try library.createLab(name: "room", vms: ["hv", "vs"]).name, checkpoint: "clean")
    XCTAssertTrue(same(try contents(), moment))
    let again = expectError(.invalidState) { _ = try self.library.decide(prepared, commit: false) }
    XCTAssertEqual(again?.message, "prepared operation \(prepared.operationID) was decided already")
  }

  func testARollBackLeavesNoFileAndTheVMsRunOnAsTheyDid() throws {
    try twoRunningVMs()
    let files = filesUnder(root)
    let moment = try contents()
    let leaves = try ["hv", "vs"].map { try library.vm(named: $0).disks.map(\.path) }
    let prepared = try library.prepareCheckpoint(vms: ["hv", "vs"], name: "clean")
    XCTAssertEqual(try library.decide(prepared, commit: false), [])
    XCTAssertEqual(filesUnder(root), files, "every file the first phase made is gone")
    XCTAssertEqual(try library.checkpoints(), [])
    XCTAssertEqual(try ["hv", "vs"].map { try library.vm(named: $0).disks.map(\.path) }, leaves)
    XCTAssertEqual(try ["hv", "vs"].map { try library.vm(named: $0).state }, [.running, .running])
    XCTAssertTrue(failing.inner.log.contains("continue hv"))
    XCTAssertFalse(failing.inner.log.contains("switch hv"), "never switched")
    XCTAssertTrue(same(try contents(), moment))
    try assertConsistent()
    _ = try library.checkpoint(vm: "vs", name: "later")
  }

  func testAfterACrashTheEntryWaitsAndTheDecisionIsCarriedOutFromTheJournal() throws {
    for commit in [true, false] {
      try twoRunningVMs()
      let files = filesUnder(root)
      let moment = try contents()
      let prepared = try library.prepareCheckpoint(vms: ["hv", "vs"], name: "clean")
      // The process ends here, before any decision, its host holding hv paused: nothing is rolled
      // back on opening, and hv is not continued on its old leaves.
      failing.leftPaused("hv")
      try reopen()
      XCTAssertEqual(library.unsettledOperations.map(\.preparedOperationID), [prepared.operationID])
      XCTAssertEqual(try failing.powerState(of: "hv"), .paused, "held paused")
      assertWaits("vs", operation: prepared.operationID)
      XCTAssertEqual(try library.decidePrepared(operation: prepared.operationID, commit: commit), ["hv", "vs"])
      XCTAssertEqual(try failing.powerState(of: "hv"), .running, "continued on the catalog's leaves")
      XCTAssertEqual(try library.vm(named: "vs").state, .running, "the commit records how phase one stopped vs")
      XCTAssertEqual(failing.inner.disks["hv"], try library.vm(named: "hv").disks.map(\.path))
      XCTAssertEqual(try library.checkpoints().map(\.name), commit ? ["clean", "clean"] : [])
      if !commit { XCTAssertEqual(filesUnder(root), files) }
      try assertConsistent()
      if commit {
        try library.turnOff(vm: "vs")
        try library.restore(checkpoint: try library.checkpoint(vm: "vs", named: "clean").id)
        XCTAssertTrue(same(try library.contents("vs", disk: 1), moment[1]))
      }
      let missing = expectError(.notFound) {
        _ = try self.library.decidePrepared(operation: prepared.operationID, commit: true)
      }
      XCTAssertTrue(missing?.message.contains("no prepared operation \(prepared.operationID) waits") ?? false)
      for vm in ["hv", "vs"] {
        _ = try? library.turnOff(vm: vm)
        try library.removeVM(named: vm)
      }
    }
  }

  func testACrashBeforeTheCommitIsKeptRollsBackAndOneAfterWaits() throws {
    try twoRunningVMs()
    let files = filesUnder(root)
    library.faultInjection = FaultPlan(step: "checkpoint:files", error: SimulatedCrash()).hit
    XCTAssertThrowsError(try library.prepareCheckpoint(vms: ["hv", "vs"], name: "clean"))
    library.faultInjection = nil
    try reopen()
    XCTAssertEqual(library.unsettledOperations, [], "not prepared yet: rolled back like any operation")
    XCTAssertEqual(filesUnder(root), files)
    XCTAssertEqual(try library.checkpoints(), [])

    library.faultInjection = FaultPlan(step: "checkpoint:prepared", error: SimulatedCrash()).hit
    XCTAssertThrowsError(try library.prepareCheckpoint(vms: ["hv", "vs"], name: "clean"))
    library.faultInjection = nil
    try reopen()
    let waiting = try XCTUnwrap(library.unsettledOperations.first?.preparedOperationID)
    try library.decidePrepared(operation: waiting, commit: true)
    XCTAssertEqual(try library.checkpoints().map(\.vm), ["hv", "vs"])
    try assertConsistent()
  }

  func testBadRequestsPrepareNothing() throws {
    try twoRunningVMs()
    let files = filesUnder(root)
    XCTAssertNotNil(
      expectError(.invalidArgument) { _ = try self.library.prepareCheckpoint(vms: ["hv", "HV"], name: "c") })
    XCTAssertNotNil(expectError(.notFound) { _ = try self.library.prepareCheckpoint(vms: ["hv", "ghost"], name: "c") })
    XCTAssertNotNil(expectError(.invalidName) { _ = try self.library.prepareCheckpoint(vms: ["hv"], name: "") })
    XCTAssertEqual(filesUnder(root), files)
    XCTAssertEqual(library.unsettledOperations, [])
    XCTAssertFalse(failing.inner.log.contains("pause hv"))
  }

  // MARK: Restore

  /// `vs` and `pl` (no additions) running, each with a checkpoint "clean" and data written after it;
  /// returns their contents at the checkpoint and now.
  private func twoVMsWithACheckpoint() throws -> (clean: [[UInt8]], now: [[UInt8]], ids: [Int64]) {
    try library.createVM(name: "pl", diskSizes: [diskSize])
    try library.createVM(name: "vs", diskSizes: [diskSize, diskSize], additions: true)
    for vm in ["pl", "vs"] {
      try library.start(vm: vm)
      try library.write(vm, disk: 1, at: 0, pattern(3, 4000))
    }
    let ids = try ["pl", "vs"].map { try library.checkpoint(vm: $0, name: "clean").checkpoint.id }
    let clean = [try library.contents("pl", disk: 1), try library.contents("vs", disk: 1)]
    for vm in ["pl", "vs"] { try library.write(vm, disk: 1, at: MiB, pattern(4, 4000)) }
    return (clean, [try library.contents("pl", disk: 1), try library.contents("vs", disk: 1)], ids)
  }

  private func restoredContents() throws -> [[UInt8]] {
    [try library.contents("pl", disk: 1), try library.contents("vs", disk: 1)]
  }

  func testAPreparedRestoreCommitsOnDecisionAndRollsBackWithoutLoss() throws {
    let (clean, now, ids) = try twoVMsWithACheckpoint()
    let files = filesUnder(root)
    let leaves = try ["pl", "vs"].map { try library.vm(named: $0).disks.map(\.path) }

    // Rolled back: every new leaf gone, the data written after the checkpoint kept, both running.
    var prepared = try library.prepareRestore(checkpoints: ids)
    XCTAssertEqual(try ["pl", "vs"].map { try library.vm(named: $0).state }, [.stopped, .stopped])
    XCTAssertEqual(filesUnder(root).count, files.count + 3, "a new leaf for each of the 3 disks")
    let refused = expectError(.invalidState) { _ = try self.library.start(vm: "pl") }
    XCTAssertTrue(refused?.message.contains("prepared restore (operation \(prepared.operationID))") ?? false)
    XCTAssertEqual(try library.decide(prepared, commit: false), [])
    XCTAssertEqual(filesUnder(root), files)
    XCTAssertEqual(try ["pl", "vs"].map { try library.vm(named: $0).disks.map(\.path) }, leaves)
    XCTAssertEqual(try ["pl", "vs"].map { try library.vm(named: $0).state }, [.running, .running])
    XCTAssertTrue(same(try restoredContents(), now))
    try assertConsistent()

    // Committed: both at their checkpoint, running again.
    prepared = try library.prepareRestore(checkpoints: ids)
    let outcomes = try library.decide(prepared, commit: true)
    XCTAssertEqual(outcomes.map(\.vm), ["pl", "vs"])
    XCTAssertEqual(outcomes.map(\.state), [.running, .running])
    XCTAssertTrue(same(try restoredContents(), clean))
    try assertConsistent()
  }

  func testACommitTidiedLaterKeepsTheReplacedLeavesUntilTidiedOrReopened() throws {
    let (clean, now, ids) = try twoVMsWithACheckpoint()
    let files = filesUnder(root)
    for reopening in [false, true] {
      let prepared = try library.prepareRestore(checkpoints: ids)
      let outcomes = try library.decide(prepared, commit: true, tidying: .later)
      XCTAssertEqual(outcomes.map(\.state), [.running, .running])
      // The commit is in force; only the 3 leaves it replaced are still on disk, named by nothing.
      let committed = filesUnder(root)
      XCTAssertEqual(committed.count, files.count + 3, "the replaced leaves are left for later")
      let named = Set(
        try ["pl", "vs"].flatMap {
          try library.vm(named: $0).disks.map { String($0.path.dropFirst(self.root.count + 1)) }
        })
      XCTAssertEqual(named.count, 3)
      XCTAssertTrue(named.isSubset(of: Set(committed)), "\(named) not in \(committed)")
      if reopening {
        try reopen()
        XCTAssertEqual(library.unsettledOperations, [])
      } else {
        try library.tidy(vms: ["pl", "vs"])
      }
      XCTAssertEqual(filesUnder(root).count, files.count, "the replaced leaves went")
      XCTAssertTrue(same(try restoredContents(), clean))
      try assertConsistent()
      // Written after the checkpoint again, for the next round.
      for vm in ["pl", "vs"] { try library.write(vm, disk: 1, at: MiB, pattern(4, 4000)) }
      XCTAssertTrue(same(try restoredContents(), now))
    }
  }

  func testAPreparedRestoreLeftByACrashIsDecidedFromTheJournal() throws {
    let (clean, now, ids) = try twoVMsWithACheckpoint()
    let files = filesUnder(root)
    for commit in [false, true] {
      let prepared = try library.prepareRestore(checkpoints: ids)
      try reopen()
      XCTAssertEqual(library.unsettledOperations.map(\.preparedOperationID), [prepared.operationID])
      XCTAssertEqual(try library.decidePrepared(operation: prepared.operationID, commit: commit), ["pl", "vs"])
      XCTAssertEqual(library.unsettledOperations, [])
      // Both ran before phase one stopped them: they run again, as the commit records.
      XCTAssertEqual(try ["pl", "vs"].map { try library.vm(named: $0).state }, [.running, .running])
      XCTAssertTrue(same(try restoredContents(), commit ? clean : now))
      if !commit { XCTAssertEqual(filesUnder(root), files) }
      try assertConsistent()
    }
  }
}
