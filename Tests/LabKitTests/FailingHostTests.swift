import Foundation
import TestSupport
import XCTest

@testable import LabKit

/// A host that fails before the catalog commit leaves everything as it was, and the operation
/// failed; one that fails after it leaves the operation done, says so ("taken; the VM did not start
/// again"), and records the VM as stopped. For checkpoints, restores and lab operations.
final class FailingHostTests: FailingHostTestCase {
  /// A running VM with data on both disks.
  func runningVM(_ name: String, kind: HostKind, additions: Bool = true) throws {
    try library.createVM(name: name, diskSizes: [diskSize, diskSize], additions: additions, hostKind: kind)
    try library.write(name, disk: 1, at: 0, pattern(1, 5000))
    try library.write(name, disk: 2, at: MiB, pattern(2, 5000))
  }

  func expectAfterCommit(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> String {
    expectError(.hostFailedAfterCommit, body, file: file, line: line)?.message ?? ""
  }

  // MARK: Checkpoint

  func testCheckpointWhoseHostFailsToStopTheVMIsNotTakenAndChangesNothing() throws {
    try runningVM("vs", kind: .virtualServer)
    try runningVM("hv", kind: .hypervisor)
    let files = filesUnder(root)
    failing.fail("shutDown", for: ["vs"])
    failing.fail("saveMemoryAndStop", for: ["hv"])
    for vm in ["vs", "hv"] {
      let error = expectError(.failed) { try self.library.checkpoint(vm: vm, name: "c") }
      XCTAssertTrue(
        error?.message.contains("the simulated host could not") ?? false, "names the host: \(error?.message ?? "")")
      XCTAssertEqual(try library.checkpoints(vm: vm), [], "no checkpoint of \(vm)")
      XCTAssertEqual(try library.vm(named: vm).state, .running, "\(vm) still runs")
    }
    XCTAssertEqual(filesUnder(root), files, "no file made or left")
    let stopped = expectError(.failed) { try self.library.checkpoint(vm: "vs", name: "c") }
    XCTAssertTrue(
      stopped?.message.hasPrefix("checkpoint 'c' of VM 'vs' not taken: the simulated host could not shut down")
        ?? false,
      stopped?.message ?? "")
    XCTAssertEqual(failing.inner.memory("hv"), "booted hv", "the online VM runs on as it did")
    try assertConsistent()
  }

  func testOnlineCheckpointFailingAfterTheStateWasSavedResumesTheVMAndRemovesTheFile() throws {
    try runningVM("hv", kind: .hypervisor)
    failing.inner.setMemory("hv", "working memory")
    let files = filesUnder(root)
    library.faultInjection = FaultPlan(step: "checkpoint:disk2").hit
    _ = expectError(.failed) { try self.library.checkpoint(vm: "hv", name: "c") }
    XCTAssertEqual(filesUnder(root), files, "the state file and the first disk are gone again")
    XCTAssertEqual(failing.inner.memory("hv"), "working memory", "resumed from its state before it was removed")
    XCTAssertEqual(try library.vm(named: "hv").state, .running)
    try assertConsistent()
  }

  func testCheckpointWhoseVMDoesNotStartAgainIsTakenAndSaysSo() throws {
    try runningVM("vs", kind: .virtualServer)
    let before = try library.contents("vs", disk: 1)
    failing.fail("start", for: ["vs"])
    let message = expectAfterCommit { try self.library.checkpoint(vm: "vs", name: "clean") }
    XCTAssertTrue(
      message.hasPrefix(
        "checkpoint 'clean' of VM 'vs' taken; the VM did not start again: the simulated host could not start VM 'vs'"),
      message)
    XCTAssertTrue(message.contains("vmlab vm start vs"), message)
    let checkpoint = try XCTUnwrap(try library.checkpoints(vm: "vs").first)
    XCTAssertEqual(checkpoint.name, "clean")
    XCTAssertTrue(same(try library.contents(of: checkpoint, disk: 1), before))
    XCTAssertEqual(try library.vm(named: "vs").state, .stopped, "the catalog says what is true")
    try assertConsistent()
    failing.heal()
    XCTAssertEqual(try library.start(vm: "vs").state, .running)
  }

  func testOnlineCheckpointWhoseVMDoesNotResumeIsTakenWithItsState() throws {
    try runningVM("hv", kind: .hypervisor)
    failing.inner.setMemory("hv", "lesson 3")
    failing.fail("resume", for: ["hv"])
    let message = expectAfterCommit { try self.library.checkpoint(vm: "hv", name: "online") }
    XCTAssertTrue(message.hasPrefix("checkpoint 'online' of VM 'hv' taken; the VM did not start again"), message)
    let checkpoint = try XCTUnwrap(try library.checkpoints(vm: "hv").first)
    XCTAssertTrue(checkpoint.online, "its memory was saved with it")
    XCTAssertEqual(try library.vm(named: "hv").state, .stopped)
    try assertConsistent()
    // The state is in the checkpoint: restoring it brings the VM back where it was.
    failing.heal()
    try library.restore(checkpoint: checkpoint.id)
    XCTAssertEqual(failing.inner.memory("hv"), "lesson 3")
    XCTAssertEqual(try library.vm(named: "hv").state, .running)
  }

  func testOnlineCheckpointWhoseFileSystemsDoNotThawIsTakenAndTheVMRuns() throws {
    try runningVM("hv", kind: .hypervisor)
    failing.fail("thaw", for: ["hv"])
    let message = expectAfterCommit { try self.library.checkpoint(vm: "hv", name: "c") }
    XCTAssertTrue(
      message.hasPrefix("checkpoint 'c' of VM 'hv' taken; it runs, but its file systems could not be thawed"), message)
    XCTAssertEqual(try library.checkpoints(vm: "hv").map(\.name), ["c"])
    XCTAssertEqual(try library.vm(named: "hv").state, .running, "it was resumed")
    try assertConsistent()
  }

  // MARK: Restore

  func testRestoreWhoseHostFailsToStopTheVMChangesNothing() throws {
    try runningVM("vs", kind: .virtualServer)
    let checkpoint = try library.checkpoint(vm: "vs", name: "c").checkpoint
    try library.write("vs", disk: 1, at: 0, pattern(9, 100))
    let contents = try library.contents("vs", disk: 1)
    let files = filesUnder(root)
    failing.fail("shutDown")
    _ = expectError(.failed) { try self.library.restore(checkpoint: checkpoint.id) }
    XCTAssertEqual(filesUnder(root), files)
    XCTAssertTrue(same(try library.contents("vs", disk: 1), contents), "the work since the checkpoint is kept")
    XCTAssertEqual(try library.vm(named: "vs").state, .running)
    try assertConsistent()
  }

  func testRestoreWhoseVMDoesNotResumeIsRestoredAndSaysSo() throws {
    try runningVM("hv", kind: .hypervisor)
    let checkpoint = try library.checkpoint(vm: "hv", name: "c").checkpoint
    let atCheckpoint = try library.contents("hv", disk: 2)
    try library.write("hv", disk: 2, at: MiB, pattern(9, 100))
    failing.fail("resume")
    let message = expectAfterCommit { try self.library.restore(checkpoint: checkpoint.id) }
    XCTAssertTrue(message.hasPrefix("VM 'hv' restored to checkpoint 'c'; the VM did not start again"), message)
    XCTAssertTrue(same(try library.contents("hv", disk: 2), atCheckpoint), "restored")
    XCTAssertEqual(try library.vm(named: "hv").state, .stopped)
    try assertConsistent()
  }

  // MARK: Labs

  func testLabCheckpointWhoseHostFailsToStopOneVMTakesNoCheckpoint() throws {
    for name in ["a", "b", "c"] { try runningVM(name, kind: .virtualServer) }
    try library.createLab(name: "room", vms: ["a", "b", "c"])
    failing.fail("shutDown", for: ["b"])
    _ = expectError(.failed) { try self.library.checkpointLab("room", checkpoint: "clean") }
    for name in ["a", "b", "c"] {
      XCTAssertEqual(try library.checkpoints(vm: name), [], "\(name) has no checkpoint")
    }
    try assertConsistent()
  }

  func testLabCheckpointWhoseVMDoesNotStartAgainKeepsEveryCheckpoint() throws {
    for name in ["a", "b", "c"] { try runningVM(name, kind: .virtualServer) }
    try library.createLab(name: "room", vms: ["a", "b", "c"])
    failing.fail("start", for: ["b"])
    let message = expectAfterCommit { try self.library.checkpointLab("room", checkpoint: "clean") }
    XCTAssertTrue(message.hasPrefix("lab 'room' checkpointed as 'clean', but 1 of 3 VMs did not start again"), message)
    XCTAssertTrue(message.contains("VM 'b'"), message)
    for name in ["a", "b", "c"] {
      XCTAssertEqual(try library.checkpoints(vm: name).map(\.name), ["clean"], "\(name) keeps its checkpoint")
    }
    XCTAssertEqual(try library.vm(named: "a").state, .running)
    XCTAssertEqual(try library.vm(named: "b").state, .stopped)
    try assertConsistent()
  }

  func testLabRestoreWhoseVMDoesNotStartAgainRestoresEveryVM() throws {
    for name in ["a", "b", "c"] { try runningVM(name, kind: .virtualServer) }
    try library.createLab(name: "room", vms: ["a", "b", "c"])
    try library.checkpointLab("room", checkpoint: "clean")
    let clean = try ["a", "b", "c"].map { try library.contents($0, disk: 1) }
    for name in ["a", "b", "c"] { try library.write(name, disk: 1, at: 0, pattern(7, 300)) }
    failing.fail("start", for: ["c"])
    let message = expectAfterCommit { try self.library.restoreLab("room", checkpoint: "clean") }
    XCTAssertTrue(message.hasPrefix("3 VMs restored; VM 'c' did not start again"), message)
    for (index, name) in ["a", "b", "c"].enumerated() {
      XCTAssertTrue(same(try library.contents(name, disk: 1), clean[index]), "\(name) is back at clean")
    }
    XCTAssertEqual(try library.vm(named: "a").state, .running)
    XCTAssertEqual(try library.vm(named: "c").state, .stopped, "the catalog says c is off")
    try assertConsistent()
  }

  func testLabRestoreWhoseHostFailsToStopOneVMRestoresNone() throws {
    for name in ["a", "b"] { try runningVM(name, kind: .virtualServer) }
    try library.createLab(name: "room", vms: ["a", "b"])
    try library.checkpointLab("room", checkpoint: "clean")
    for name in ["a", "b"] { try library.write(name, disk: 1, at: 0, pattern(7, 300)) }
    let work = try ["a", "b"].map { try library.contents($0, disk: 1) }
    failing.fail("shutDown", for: ["b"])
    _ = expectError(.failed) { try self.library.restoreLab("room", checkpoint: "clean") }
    for (index, name) in ["a", "b"].enumerated() {
      XCTAssertTrue(same(try library.contents(name, disk: 1), work[index]), "\(name) keeps its work")
    }
    try assertConsistent()
  }
}
