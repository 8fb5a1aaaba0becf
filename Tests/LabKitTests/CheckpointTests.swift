import Foundation
import TestSupport
import XCTest

@testable import LabKit

final class CheckpointTests: LabKitTestCase {
  /// Writes distinct data to every disk, crossing a 2 MiB block boundary and in a later block.
  func scribble(_ vm: String, disks: Int, tag: UInt8) throws {
    for disk in 1...disks {
      try library.write(vm, disk: disk, at: 2 * MiB - 1000, pattern(tag &+ UInt8(disk), 5000))
      try library.write(vm, disk: disk, at: UInt64(disk) * 3 * MiB + UInt64(tag) * 512, pattern(tag, 700))
    }
  }

  func snapshot(_ vm: String, disks: Int) throws -> [[UInt8]] {
    try (1...disks).map { try library.contents(vm, disk: $0) }
  }

  func testCheckpointMakesOneDifferencingDiskPerSlotNamedAfterTheBase() throws {
    try library.createVM(name: "web01", diskSizes: [diskSize, diskSize, diskSize])
    let result = try library.checkpoint(vm: "web01", name: "clean", description: "fresh install")
    XCTAssertEqual(result.action, .none)
    let vm = try library.vm(named: "web01")
    XCTAssertEqual(vm.disks.count, 3)
    for disk in vm.disks {
      let name = (disk.path as NSString).lastPathComponent
      let parsed = try XCTUnwrap(CheckpointFileName(parsing: name), name)
      XCTAssertEqual(parsed.base, "web01-disk\(disk.slot)")
      XCTAssertEqual(parsed.slot, disk.slot)
      XCTAssertEqual(parsed.stamp, result.checkpoint.stamp)
      XCTAssertEqual(disk.chain.count, 2)
    }
    XCTAssertEqual(
      result.checkpoint.disks.map { ($0 as NSString).lastPathComponent },
      ["web01-disk1.vhd", "web01-disk2.vhd", "web01-disk3.vhd"])
    XCTAssertEqual(vm.currentCheckpointID, result.checkpoint.id)
    XCTAssertEqual(try library.checkpoints(vm: "web01").map(\.description), ["fresh install"])
    try assertConsistent()
  }

  func testRestoreBringsBackEveryDiskOfAMultiDiskVM() throws {
    try library.createVM(name: "db", diskSizes: [diskSize, diskSize, diskSize])
    try scribble("db", disks: 3, tag: 1)
    let before = try snapshot("db", disks: 3)
    let checkpoint = try library.checkpoint(vm: "db", name: "one").checkpoint
    try scribble("db", disks: 3, tag: 2)
    try library.write("db", disk: 2, at: 0, pattern(9, 4096))
    XCTAssertFalse(same(try snapshot("db", disks: 3), before))
    let (plan, result) = try library.restore(checkpoint: checkpoint.id)
    XCTAssertTrue(plan.applied)
    XCTAssertEqual(result?.action, .turnedOff)  // it ran (for the writes) and has no additions
    XCTAssertEqual(result?.vmState, .running, "it ran, so it boots again on the restored disks")
    let after = try snapshot("db", disks: 3)
    for disk in 0..<3 { assertEqualBytes(after[disk], before[disk], "disk \(disk + 1) after restore") }
    try assertConsistent()
  }

  func testRestoringTheSameCheckpointAgainAndAgain() throws {
    try library.createVM(name: "lab1", diskSizes: [diskSize, diskSize])
    try scribble("lab1", disks: 2, tag: 3)
    let moment = try snapshot("lab1", disks: 2)
    let checkpoint = try library.checkpoint(vm: "lab1", name: "start").checkpoint
    let filesAtStart = filesUnder(root + "/vms/lab1").count
    for round in 0..<6 {
      if round % 2 == 0 { try scribble("lab1", disks: 2, tag: UInt8(10 + round)) }  // sometimes nothing changed
      try library.restore(checkpoint: checkpoint.id)
      XCTAssertTrue(same(try snapshot("lab1", disks: 2), moment), "round \(round)")
      XCTAssertEqual(try library.checkpoints(vm: "lab1").map(\.name), ["start"])
      XCTAssertEqual(filesUnder(root + "/vms/lab1").count, filesAtStart, "restores must not pile up files")
      try assertConsistent()
    }
  }

  func testCheckpointTreeBranchesAndEveryCheckpointKeepsItsMoment() throws {
    try library.createVM(name: "t", diskSizes: [diskSize, diskSize])
    try scribble("t", disks: 2, tag: 1)
    let a = try library.checkpoint(vm: "t", name: "a").checkpoint
    let atA = try snapshot("t", disks: 2)
    try scribble("t", disks: 2, tag: 2)
    let b = try library.checkpoint(vm: "t", name: "b").checkpoint
    let atB = try snapshot("t", disks: 2)
    try scribble("t", disks: 2, tag: 3)
    try library.restore(checkpoint: a.id)
    try scribble("t", disks: 2, tag: 4)
    let c = try library.checkpoint(vm: "t", name: "c").checkpoint
    let atC = try snapshot("t", disks: 2)
    try scribble("t", disks: 2, tag: 5)
    let d = try library.checkpoint(vm: "t", name: "d").checkpoint
    let atD = try snapshot("t", disks: 2)
    XCTAssertEqual(b.parentID, a.id)
    XCTAssertEqual(c.parentID, a.id, "a checkpoint after restoring a branches from a")
    XCTAssertEqual(d.parentID, c.id)
    let expected: [(Checkpoint, [[UInt8]])] = [(b, atB), (d, atD), (a, atA), (c, atC), (b, atB), (a, atA), (d, atD)]
    for (checkpoint, moment) in expected {
      try scribble("t", disks: 2, tag: 77)
      try library.restore(checkpoint: checkpoint.id)
      XCTAssertTrue(same(try snapshot("t", disks: 2), moment), "restore \(checkpoint.name)")
      XCTAssertEqual(try library.vm(named: "t").currentCheckpointID, checkpoint.id)
      XCTAssertEqual(try library.checkpoint(id: checkpoint.id).isCurrent, true)
      try assertConsistent()
    }
    XCTAssertEqual(try library.checkpoints(vm: "t").map(\.name), ["a", "b", "c", "d"])
  }

  func testMostRecentPerVMAndByName() throws {
    try library.createVM(name: "alpha", diskSizes: [diskSize])
    try library.createVM(name: "beta", diskSizes: [diskSize])
    try library.createVM(name: "gamma", diskSizes: [diskSize])
    try library.checkpoint(vm: "alpha", name: "a1")
    try library.checkpoint(vm: "beta", name: "b1")
    try library.checkpoint(vm: "alpha", name: "a2")
    let b2 = try library.checkpoint(vm: "beta", name: "b2").checkpoint
    // Restoring an older one does not change which is most recent.
    try library.restore(checkpoint: try library.checkpoint(vm: "beta", named: "b1").id)
    let latest = try library.mostRecentCheckpoints()
    XCTAssertEqual(latest.map(\.vm), ["alpha", "beta"], "gamma has none; every VM with one is listed")
    XCTAssertEqual(latest.map(\.name), ["a2", "b2"])
    XCTAssertEqual(try library.mostRecentCheckpoints(vm: "beta").map(\.id), [b2.id])
    XCTAssertEqual(try library.mostRecentCheckpoints(vm: "gamma"), [])
    XCTAssertEqual(try library.mostRecentCheckpoints(vm: "BETA").map(\.name), ["b2"], "VM names ignore case")
    // Same name twice: the name means the newest.
    let again = try library.checkpoint(vm: "alpha", name: "a1").checkpoint
    XCTAssertEqual(try library.checkpoint(vm: "alpha", named: "a1").id, again.id)
    XCTAssertEqual(try library.checkpoint(vm: "alpha", named: String(b2.id - 1)).vm, "alpha", "a number is an id")
    let error = expectError(.notFound) { _ = try library.checkpoint(vm: "alpha", named: "nope") }
    XCTAssertTrue(error?.message.contains("'a2'") ?? false, error?.message ?? "")
    _ = expectError(.notFound) { _ = try library.mostRecentCheckpoints(vm: "delta") }
  }

  func testWhatIfPlansChangeNothing() throws {
    try library.createVM(name: "w", diskSizes: [diskSize, diskSize])
    try scribble("w", disks: 2, tag: 1)
    let a = try library.checkpoint(vm: "w", name: "a").checkpoint
    try scribble("w", disks: 2, tag: 2)
    let b = try library.checkpoint(vm: "w", name: "b").checkpoint
    try scribble("w", disks: 2, tag: 3)
    try library.turnOff(vm: "w")
    let files = filesUnder(root)
    let contents = try snapshot("w", disks: 2)
    let catalogBefore = try library.checkpoints(vm: "w")
    let vmBefore = try library.vm(named: "w")

    let restorePlan = try library.restore(checkpoint: a.id, whatIf: true)
    XCTAssertNil(restorePlan.result)
    XCTAssertFalse(restorePlan.plan.applied)
    XCTAssertEqual(restorePlan.plan.filesCreated.count, 2)
    XCTAssertEqual(restorePlan.plan.filesRemoved.count, 2, "the current leaves go; b's states stay")

    let mergePlan = try library.merge(checkpoint: a.id, whatIf: true)
    XCTAssertFalse(mergePlan.applied)
    XCTAssertEqual(mergePlan.checkpointsRemoved, ["a", "b"])
    XCTAssertEqual(mergePlan.alsoAffected, ["b"])
    XCTAssertEqual(mergePlan.filesRemoved.count, 4)
    XCTAssertGreaterThan(mergePlan.bytesMerged, 3 * 5000)

    let removePlan = try library.remove(checkpoint: b.id, whatIf: true)
    XCTAssertFalse(removePlan.applied)
    XCTAssertEqual(removePlan.checkpointsRemoved, ["b"])
    XCTAssertEqual(removePlan.filesRemoved.count, 2)
    XCTAssertGreaterThan(removePlan.bytesMerged, 0)

    XCTAssertEqual(filesUnder(root), files)
    XCTAssertTrue(same(try snapshot("w", disks: 2), contents), "contents differ")
    XCTAssertEqual(try library.checkpoints(vm: "w"), catalogBefore)
    XCTAssertEqual(try library.vm(named: "w"), vmBefore)

    // The plans say what the real operations then do.
    let removed = try library.remove(checkpoint: b.id)
    XCTAssertEqual(removed.filesRemoved, removePlan.filesRemoved)
    XCTAssertTrue(removed.applied)
    for path in removed.filesRemoved { XCTAssertFalse(FileManager.default.fileExists(atPath: path)) }
    try assertConsistent()
  }

  func testGuestWritesOnlyWhileRunning() throws {
    try library.createVM(name: "g", diskSizes: [diskSize])
    _ = expectError(.invalidState) { try library.guestWrite(vm: "g", disk: 1, offset: 0, bytes: [1]) }
    try library.start(vm: "g")
    try library.guestWrite(vm: "g", disk: 1, offset: 0, bytes: [1, 2, 3])
    try library.save(vm: "g")
    _ = expectError(.invalidState) { try library.guestWrite(vm: "g", disk: 1, offset: 0, bytes: [9]) }
    try library.start(vm: "g")
    try library.turnOff(vm: "g")
    _ = expectError(.invalidState) { try library.guestWrite(vm: "g", disk: 1, offset: 0, bytes: [9]) }
    XCTAssertEqual(try library.diskRead(vm: "g", disk: 1, offset: 0, count: 4), [1, 2, 3, 0])
    try library.start(vm: "g")
    _ = expectError(.notFound) { try library.guestWrite(vm: "g", disk: 2, offset: 0, bytes: [9]) }
  }

  func testVirtualServerShutsDownWithAdditionsAndTurnsOffWithout() throws {
    try library.createVM(name: "soft", diskSizes: [diskSize], additions: true, hostKind: .virtualServer)
    try library.createVM(name: "hard", diskSizes: [diskSize], additions: false, hostKind: .virtualServer)
    for name in ["soft", "hard"] {
      try library.write(name, disk: 1, at: 0, pattern(1, 1000))
    }
    let soft = try library.checkpoint(vm: "soft", name: "c")
    let hard = try library.checkpoint(vm: "hard", name: "c")
    XCTAssertEqual(soft.action, .shutDown)
    XCTAssertEqual(hard.action, .turnedOff)
    XCTAssertEqual(soft.vmState, .running, "it runs again afterwards")
    XCTAssertEqual(hard.vmState, .running)
    XCTAssertFalse(soft.checkpoint.online)
    XCTAssertTrue(host.log.contains("shutdown soft"))
    XCTAssertTrue(host.log.contains("turnoff hard"))
    XCTAssertFalse(host.log.contains("shutdown hard"))
    // A stopped VM needs nothing and stays stopped.
    try library.turnOff(vm: "soft")
    let stopped = try library.checkpoint(vm: "soft", name: "d")
    XCTAssertEqual(stopped.action, .none)
    XCTAssertEqual(stopped.vmState, .stopped)
    // Shut down needs additions.
    _ = expectError(.invalidState) { try library.shutDown(vm: "hard") }
    // A saved VM: its saved state goes, and the result says so; a restore reports the same.
    try library.save(vm: "hard")
    XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/vms/hard/saved.vsv"))
    let saved = try library.checkpoint(vm: "hard", name: "from-saved")
    XCTAssertEqual(saved.action, .savedStateDiscarded)
    XCTAssertEqual(saved.vmState, .stopped)
    XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/vms/hard/saved.vsv"))
    try library.start(vm: "hard")
    try library.save(vm: "hard")
    let plan = try library.restore(checkpoint: saved.checkpoint.id, whatIf: true).plan
    XCTAssertEqual(plan.powerAction, .savedStateDiscarded)
    XCTAssertTrue(plan.filesRemoved.contains(root + "/vms/hard/saved.vsv"), "\(plan.filesRemoved)")
    XCTAssertEqual(try library.restore(checkpoint: saved.checkpoint.id).result?.action, .savedStateDiscarded)
    XCTAssertEqual(try library.vm(named: "hard").state, .stopped)
    try assertConsistent()
  }

  func testHypervisorCheckpointsOnlineAndRestoresTheRunningState() throws {
    try library.createVM(name: "hv", diskSizes: [diskSize, diskSize], hostKind: .hypervisor)
    try library.write("hv", disk: 1, at: 0, pattern(1, 3000))
    try library.write("hv", disk: 2, at: 5 * MiB, pattern(2, 3000))
    host.setMemory("hv", "memory at checkpoint")
    let before = try snapshot("hv", disks: 2)
    let result = try library.checkpoint(vm: "hv", name: "online")
    XCTAssertEqual(result.action, .online)
    XCTAssertEqual(result.vmState, .running)
    XCTAssertTrue(result.checkpoint.online)
    XCTAssertEqual(host.memory("hv"), "memory at checkpoint", "the guest goes on where it was")
    XCTAssertFalse(host.log.contains("shutdown hv") || host.log.contains("turnoff hv"))
    XCTAssertGreaterThan(try library.space(of: result.checkpoint.id), 0)

    try library.write("hv", disk: 1, at: 0, pattern(3, 3000))
    host.setMemory("hv", "later memory")
    let (_, restored) = try library.restore(checkpoint: result.checkpoint.id)
    XCTAssertEqual(restored?.action, .online)
    XCTAssertEqual(restored?.vmState, .running)
    XCTAssertEqual(host.memory("hv"), "memory at checkpoint")
    XCTAssertEqual(try library.vm(named: "hv").state, .running)
    XCTAssertTrue(same(try snapshot("hv", disks: 2), before), "contents differ")
    try library.guestWrite(vm: "hv", disk: 1, offset: 0, bytes: [1])  // it really runs
    try assertConsistent()

    // Again, from a stopped VM.
    try library.turnOff(vm: "hv")
    try library.restore(checkpoint: result.checkpoint.id)
    XCTAssertEqual(host.memory("hv"), "memory at checkpoint")
    XCTAssertEqual(try library.vm(named: "hv").state, .running)

    // A stopped hypervisor VM is checkpointed offline.
    try library.turnOff(vm: "hv")
    let offline = try library.checkpoint(vm: "hv", name: "offline")
    XCTAssertEqual(offline.action, .none)
    XCTAssertFalse(offline.checkpoint.online)
    try assertConsistent()
  }

  func testNamesAreValidatedAndNothingEscapesTheLibrary() throws {
    let bad = [
      "", "../evil", "..", "a/b", "/abs", "a\u{0}b", String(repeating: "x", count: 65), ".hidden", "a b", "x..y",
      "-dash", "é",
    ]
    for name in bad {
      _ = expectError(.invalidName) { try library.createVM(name: name, diskSizes: [diskSize]) }
      _ = expectError(.invalidName) { try library.createLab(name: name) }
    }
    XCTAssertNoThrow(try library.createVM(name: String(repeating: "x", count: 64), diskSizes: [MiB]))
    XCTAssertEqual(filesUnder(folder.path).filter { !$0.hasPrefix("lib/") }, [], "nothing written outside the library")

    try library.createVM(name: "ok", diskSizes: [diskSize])
    for name in ["", "a\u{0}b", "tab\there", String(repeating: "c", count: 129)] {
      _ = expectError(.invalidName) { try library.checkpoint(vm: "ok", name: name) }
    }
    // Checkpoint names are labels, never paths.
    let sneaky = try library.checkpoint(vm: "ok", name: "../../../../tmp/sneaky").checkpoint
    XCTAssertEqual(sneaky.name, "../../../../tmp/sneaky")
    for path in try library.vm(named: "ok").disks.map(\.path) {
      XCTAssertTrue(path.hasPrefix(root + "/vms/ok/"), path)
    }
    XCTAssertEqual(filesUnder(folder.path).filter { !$0.hasPrefix("lib/") }, [])
    try assertConsistent()
  }

  func testCreateVMRefusesDuplicatesAndNoDisks() throws {
    try library.createVM(name: "dup", diskSizes: [diskSize])
    _ = expectError(.alreadyExists) { try library.createVM(name: "DUP", diskSizes: [diskSize]) }
    _ = expectError(.invalidArgument) { try library.createVM(name: "nodisk", diskSizes: []) }
    XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/vms/nodisk"))
    try library.removeVM(named: "dup")
    XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/vms/dup"))
    XCTAssertEqual(try library.vms().map(\.name), [])
    try assertConsistent()
  }

  func testChangesSpaceAndExport() throws {
    try library.createVM(name: "x", diskSizes: [diskSize, diskSize])
    try library.write("x", disk: 1, at: 0, pattern(1, 512))
    let a = try library.checkpoint(vm: "x", name: "a").checkpoint
    let atA = try snapshot("x", disks: 2)
    XCTAssertEqual(try library.changes(since: a.id).map(\.changedBytes), [0, 0])
    try library.write("x", disk: 2, at: 4 * MiB, pattern(2, 1024))
    let changes = try library.changes(since: a.id)
    XCTAssertEqual(changes.map(\.slot), [1, 2])
    XCTAssertEqual(changes[0].ranges, [])
    XCTAssertEqual(changes[1].ranges, [.init(offset: 4 * MiB, length: 1024)])
    let b = try library.checkpoint(vm: "x", name: "b").checkpoint
    XCTAssertGreaterThanOrEqual(try library.space(of: b.id), 1024)
    XCTAssertEqual(try library.space(of: a.id), 0, "a's state is the base disks, which it does not own")
    try library.write("x", disk: 1, at: 0, pattern(3, 512))
    let out = folder.path + "/export"
    let paths = try library.exportCheckpoint(a.id, to: out)
    XCTAssertEqual(paths.count, 2)
    let imported = try Library(at: folder.path + "/other", host: host)
    for (index, path) in paths.enumerated() {
      try imported.createVM(name: "copy\(index)", from: path)
      XCTAssertTrue(same(try imported.contents("copy\(index)", disk: 1), atA[index]), "contents differ")
    }
  }
}
