import Foundation
import TestSupport
import XCTest

@testable import LabKit

/// Online checkpoints on a host that pauses VMs instead of restarting them (`pauseAndSwitch`):
/// freeze, pause, journaled { memory, new disks }, commit, switch, continue, thaw. Failures
/// before the commit continue the VM on its old leaves; after it, a VM that cannot be switched is
/// turned off; a VM left paused by a crash is switched to the catalog's leaves when the library opens.
final class PausedCheckpointTests: FailingHostTestCase {
  override var hostCapabilities: HostCapabilities? { .all }

  private func runningVM(_ name: String, additions: Bool = true) throws {
    try library.createVM(name: name, diskSizes: [diskSize, diskSize], additions: additions, hostKind: .hypervisor)
    try library.start(vm: name)
    failing.inner.setMemory(name, "lesson 3 of \(name)")
  }

  private func leaves(_ vm: String) throws -> [String] { try library.vm(named: vm).disks.map(\.path) }

  func testTheVMIsPausedSwitchedAndContinuedNotRestarted() throws {
    try runningVM("hv")
    let before = try leaves("hv")
    let result = try library.checkpoint(vm: "hv", name: "clean")
    XCTAssertEqual(
      Array(failing.inner.log.suffix(6)),
      ["freeze hv", "pause hv", "save-running hv", "switch hv", "continue hv", "thaw hv"])
    XCTAssertFalse(failing.inner.log.contains("resume hv"), "never restarted")
    XCTAssertEqual(result.action, .online)
    XCTAssertEqual(result.vmState, .running)
    XCTAssertNotNil(result.pauseSeconds)
    XCTAssertTrue(result.checkpoint.online)
    let after = try leaves("hv")
    XCTAssertNotEqual(after, before)
    XCTAssertEqual(failing.inner.disks["hv"], after, "the host writes the catalog's new leaves")
    XCTAssertEqual(failing.inner.memory("hv"), "lesson 3 of hv", "it ran on with its memory")
    let state = try XCTUnwrap(
      try FileManager.default.contentsOfDirectory(atPath: root + "/vms/hv").first { $0.hasSuffix(".vsv") })
    XCTAssertEqual(try String(contentsOfFile: root + "/vms/hv/" + state, encoding: .utf8), "lesson 3 of hv")
    try assertConsistent()
    // The saved moment comes back on restore.
    failing.inner.setMemory("hv", "lesson 4")
    try library.restore(checkpoint: result.checkpoint.id)
    XCTAssertEqual(failing.inner.memory("hv"), "lesson 3 of hv")
  }

  func testDisksOnlySavesNoMemory() throws {
    try runningVM("hv", additions: false)
    let result = try library.checkpoint(vm: "hv", name: "disks", disksOnly: true)
    XCTAssertEqual(Array(failing.inner.log.suffix(3)), ["pause hv", "switch hv", "continue hv"])
    XCTAssertFalse(result.checkpoint.online, "no memory with it")
    XCTAssertFalse(
      try FileManager.default.contentsOfDirectory(atPath: root + "/vms/hv").contains { $0.hasSuffix(".vsv") })
    XCTAssertEqual(try library.vm(named: "hv").state, .running)
    try assertConsistent()
  }

  func testAFailureBeforeTheCommitContinuesTheVMOnItsOldLeaves() throws {
    try runningVM("hv")
    let files = filesUnder(root)
    let before = try leaves("hv")
    failing.fail("saveMemory", for: ["hv"])
    let error = expectError(.failed) { try self.library.checkpoint(vm: "hv", name: "c") }
    XCTAssertTrue(error?.message.contains("could not save the memory of VM 'hv'") ?? false, "\(error!)")
    XCTAssertEqual(Array(failing.inner.log.suffix(3)), ["pause hv", "continue hv", "thaw hv"])
    XCTAssertEqual(filesUnder(root), files, "no file made or left")
    XCTAssertEqual(try leaves("hv"), before)
    XCTAssertNotEqual(failing.inner.disks["hv"], nil)
    XCTAssertEqual(failing.inner.disks["hv"], before, "never switched")
    XCTAssertEqual(try library.checkpoints(vm: "hv"), [])

    failing.heal()
    library.faultInjection = FaultPlan(step: "checkpoint:disk2").hit
    _ = expectError(.failed) { try self.library.checkpoint(vm: "hv", name: "c") }
    XCTAssertEqual(filesUnder(root), files, "the state file and the first disk are gone again")
    XCTAssertEqual(failing.inner.disks["hv"], before)
    XCTAssertEqual(failing.inner.log.last, "thaw hv")
    try assertConsistent()
  }

  func testAPauseThatFailsTakesNothingAndThawsTheGuest() throws {
    try runningVM("hv")
    failing.fail("pause", for: ["hv"])
    let error = expectError(.failed) { try self.library.checkpoint(vm: "hv", name: "c") }
    XCTAssertTrue(error?.message.contains("could not pause VM 'hv'") ?? false, "\(error!)")
    XCTAssertEqual(Array(failing.inner.log.suffix(2)), ["freeze hv", "thaw hv"])
    XCTAssertEqual(try library.vm(named: "hv").state, .running)
    try assertConsistent()
  }

  func testASwitchThatFailsAfterTheCommitTurnsTheVMOffAndSaysSo() throws {
    try runningVM("hv")
    failing.fail("switchDisks", for: ["hv"])
    let error = expectError(.hostFailedAfterCommit) { try self.library.checkpoint(vm: "hv", name: "c") }
    XCTAssertTrue(
      error?.message.hasPrefix("checkpoint 'c' of VM 'hv' taken; the VM did not start again") ?? false, "\(error!)")
    XCTAssertTrue(failing.inner.log.contains("turnoff hv"), "not left writing the frozen disks")
    XCTAssertEqual(try library.vm(named: "hv").state, .stopped)
    XCTAssertEqual(try library.checkpoints(vm: "hv").map(\.name), ["c"])
    try assertConsistent()
  }

  func testAVMLeftPausedIsSwitchedToTheCatalogsLeavesWhenTheLibraryOpens() throws {
    try runningVM("hv")
    try library.checkpoint(vm: "hv", name: "c")
    try failing.inner.switchDisks(vm: "hv", to: ["/stale/leaf.vhd"])
    failing.leftPaused("hv")
    try reopen()
    XCTAssertEqual(failing.inner.disks["hv"], try leaves("hv"))
    XCTAssertEqual(Array(failing.inner.log.suffix(3)), ["switch hv", "continue hv", "thaw hv"])
    XCTAssertEqual(try library.vm(named: "hv").state, .running)
    XCTAssertEqual(try failing.powerState(of: "hv"), .running)

    // A host that cannot switch it: turned off and recorded as stopped outside vmlab.
    failing.leftPaused("hv")
    failing.fail("switchDisks", for: ["hv"])
    try reopen()
    XCTAssertEqual(try library.vm(named: "hv").state, .stopped)
    XCTAssertNotNil(try library.vm(named: "hv").stoppedOutside)
    XCTAssertEqual(failing.inner.log.last, "turnoff hv")
  }

  func testALabCheckpointPausesEveryVMBeforeAnyContinues() throws {
    try runningVM("a")
    try runningVM("b", additions: false)
    try library.createLab(name: "class", vms: ["a", "b"])
    let taken = try library.checkpointLab("class", checkpoint: "start")
    let log = failing.inner.log
    let lastPause = try XCTUnwrap(log.lastIndex { $0.hasPrefix("pause") })
    let firstSwitch = try XCTUnwrap(log.firstIndex { $0.hasPrefix("switch") })
    XCTAssertLessThan(lastPause, firstSwitch, "one moment: \(log)")
    XCTAssertEqual(Set(log.filter { $0.hasPrefix("continue") }), ["continue a", "continue b"])
    XCTAssertEqual(failing.inner.disks["a"], try leaves("a"))
    XCTAssertEqual(failing.inner.disks["b"], try leaves("b"))
    _ = taken
    try assertConsistent()
  }
}
