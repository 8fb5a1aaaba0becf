import Foundation
import GRDB
import TestSupport
import VHD
import XCTest

@testable import LabKit

final class LabTests: LabKitTestCase {
  /// 4 MiB rounded up to a whole CHS geometry: the size a VM created with 4 MiB disks sees.
  let small = DiskGeometry.rounding(size: 4 * MiB).size

  func makeLab(_ count: Int) throws -> [String] {
    let names = (1...count).map { "pc\($0)" }
    for name in names {
      try library.createVM(name: name, diskSizes: [small, small], additions: true)
      try library.write(name, disk: 1, at: 0, pattern(1, 1000))
    }
    try library.createLab(name: "class", vms: names)
    return names
  }

  func testLabCheckpointAndRestoreEveryVM() throws {
    let names = try makeLab(3)
    let results = try library.checkpointLab("class", checkpoint: "start")
    XCTAssertEqual(results.map(\.vm), names)
    XCTAssertEqual(Set(results.map(\.action)), [.shutDown])
    XCTAssertEqual(try library.labCheckpointNames("class"), ["start"])
    var moments: [String: [UInt8]] = [:]
    for name in names {
      moments[name] = try library.contents(name, disk: 1, size: small)
      try library.write(name, disk: 1, at: 10, pattern(2, 5000))
    }
    try library.turnOff(vm: "pc2")
    let restored = try library.restoreLab("class", checkpoint: "start")
    XCTAssertEqual(restored.map(\.vm), names)
    for name in names {
      XCTAssertTrue(same(try library.contents(name, disk: 1, size: small), moments[name]!), name)
    }
    XCTAssertEqual(try library.vms().map(\.state), [.running, .stopped, .running], "running VMs run again")
    // Without a name: each VM's most recent one.
    try library.write("pc1", disk: 1, at: 10, pattern(3, 100))
    try library.restoreLab("class", checkpoint: nil)
    XCTAssertTrue(same(try library.contents("pc1", disk: 1, size: small), moments["pc1"]!))
    try assertConsistent()
  }

  /// The checkpoints a restore of several VMs goes back to, as a lab restore here and a host's part
  /// of one across a cluster find them: the latest of a name, each VM's most recent one, and an
  /// error that says what a VM has when it lacks one, before anything is touched.
  func testTheCheckpointsToRestoreAreFoundForEveryVMOrNone() throws {
    let names = try makeLab(3)
    try library.checkpointLab("class", checkpoint: "start")
    try library.checkpoint(vm: "pc1", name: "start")
    try library.checkpoint(vm: "pc2", name: "later")
    let start = try library.checkpointsToRestore(vms: names, named: "start")
    XCTAssertEqual(start.map(\.vm), names)
    XCTAssertEqual(start.map(\.checkpoint), ["start", "start", "start"])
    XCTAssertEqual(
      start[0].checkpointID, try library.checkpoint(vm: "pc1", named: "start").id, "the latest of that name")
    let recent = try library.checkpointsToRestore(vms: names, named: nil)
    XCTAssertEqual(recent.map(\.checkpoint), ["start", "later", "start"])

    XCTAssertThrowsError(try library.checkpointsToRestore(vms: names, named: "later")) { error in
      XCTAssertTrue("\(error)".contains("VM 'pc1' has no checkpoint 'later'; it has 'start', 'start'"), "\(error)")
    }
    try library.createVM(name: "fresh", diskSizes: [small])
    XCTAssertThrowsError(try library.checkpointsToRestore(vms: ["pc1", "fresh"], named: nil, lab: "class")) { error in
      XCTAssertEqual(
        (error as? LabKitError)?.message, "VM 'fresh' of lab 'class' has no checkpoint; nothing was restored")
    }
    XCTAssertThrowsError(try library.checkpointsToRestore(vms: ["nobody"], named: "start")) { error in
      XCTAssertEqual((error as? LabKitError)?.kind, .notFound, "\(error)")
    }
  }

  /// A lab restore writes the manifests while the discarded leaves are deleted: when it returns,
  /// every VM's vm.json names the leaves the catalog names, and the old leaves are gone.
  func testLabRestoreLeavesManifestsAndNoOldLeaves() throws {
    let names = try makeLab(6)
    try library.checkpointLab("class", checkpoint: "start")
    for name in names { try library.write(name, disk: 2, at: 0, pattern(4, 4096)) }
    let before = try names.flatMap { try library.vm(named: $0).disks.map(\.path) }
    try library.restoreLab("class", checkpoint: "start")
    for path in before { XCTAssertFalse(FileManager.default.fileExists(atPath: path), "\(path) was discarded") }
    for name in names {
      let data = try Data(contentsOf: URL(fileURLWithPath: library.root + "/vms/\(name)/vm.json"))
      let manifest = try Library.manifestDecoder.decode(VMManifest.self, from: data)
      let leaves = try library.vm(named: name).disks.map(\.path)
      XCTAssertEqual(manifest.slots.map { library.root + "/" + $0.leaf }, leaves, name)
      XCTAssertFalse(leaves.contains { before.contains($0) }, name)
    }
    try assertConsistent()
  }

  /// A lab's checkpoint is one moment: every VM's checkpoint has the same time and file stamp,
  /// running VMs run again afterwards, and one journaled operation made them.
  func testLabCheckpointIsOneMoment() throws {
    let names = try makeLab(5)
    let plan = FaultPlan(step: "checkpoint:journaled", occurrence: 99)
    library.faultInjection = plan.hit
    let results = try library.checkpointLab("class", checkpoint: "moment")
    library.faultInjection = nil
    XCTAssertEqual(plan.seen.filter { $0 == "checkpoint:journaled" }.count, 1, "one journaled operation")
    let checkpoints = try names.map { try library.checkpoint(vm: $0, named: "moment") }
    XCTAssertEqual(Set(checkpoints.map(\.created)).count, 1, "one time")
    XCTAssertEqual(Set(checkpoints.map(\.stamp)).count, 1, "one stamp")
    XCTAssertEqual(results.map(\.vm), names)
    for name in names { XCTAssertEqual(try library.vm(named: name).state, .running) }
    try assertConsistent()
  }

  func testLabCheckpointIsAllOrNothing() throws {
    let names = try makeLab(4)
    try library.checkpointLab("class", checkpoint: "before")
    let filesBefore = filesUnder(root)
    let contents = try names.map { try library.contents($0, disk: 1, size: small) }
    // The third VM's second disk fails, after the disks of two VMs were made.
    let plan = FaultPlan(step: "checkpoint:disk2", occurrence: 3)
    library.faultInjection = plan.hit
    let error = expectError(.failed) { try library.checkpointLab("class", checkpoint: "second") }
    library.faultInjection = nil
    XCTAssertTrue(
      error?.message.contains("lab 'class' was not checkpointed (no VM was)") ?? false, error?.message ?? "")
    XCTAssertEqual(plan.seen.filter { $0 == "checkpoint:disk2" }.count, 3)
    for name in names {
      XCTAssertEqual(try library.checkpoints(vm: name).map(\.name), ["before"], "\(name) keeps no 'second'")
      XCTAssertEqual(try library.vm(named: name).state, .running)
      XCTAssertEqual(try library.vm(named: name).disks[0].chain.count, 2, "\(name): back to one level over the base")
    }
    XCTAssertTrue(same(try names.map { try library.contents($0, disk: 1, size: small) }, contents))
    XCTAssertEqual(filesUnder(root).filter { $0.hasSuffix(".vhd") }, filesBefore.filter { $0.hasSuffix(".vhd") })
    XCTAssertEqual(try library.labCheckpointNames("class"), ["before"])
    try assertConsistent()
    try library.restoreLab("class", checkpoint: "before")
    try assertConsistent()
  }

  func testLabRestoreWithAnUnknownNameTouchesNothing() throws {
    let names = try makeLab(3)
    try library.checkpointLab("class", checkpoint: "start")
    // pc3 alone has a later one.
    try library.checkpoint(vm: "pc3", name: "only-pc3")
    for name in names { try library.write(name, disk: 2, at: 0, pattern(5, 800)) }
    let files = filesUnder(root)
    let vms = try library.vms()
    let contents = try names.map { try library.contents($0, disk: 2, size: small) }
    let log = host.log.count
    let error = expectError(.notFound) { try library.restoreLab("class", checkpoint: "only-pc3") }
    XCTAssertTrue(error?.message.contains("pc1") ?? false, error?.message ?? "")
    _ = expectError(.notFound) { try library.restoreLab("class", checkpoint: "nothing") }
    _ = expectError(.notFound) { try library.restoreLab("nolab", checkpoint: "start") }
    XCTAssertEqual(filesUnder(root), files)
    XCTAssertEqual(try library.vms(), vms)
    XCTAssertTrue(same(try names.map { try library.contents($0, disk: 2, size: small) }, contents))
    XCTAssertEqual(host.log.count, log, "no VM was stopped")
  }

  func testLabMembersAndNames() throws {
    try library.createVM(name: "a1", diskSizes: [small])
    try library.createVM(name: "b1", diskSizes: [small])
    try library.createLab(name: "L", vms: ["b1"])
    try library.addToLab("L", vms: ["a1", "b1"])
    XCTAssertEqual(try library.lab(named: "l").vms, ["b1", "a1"])
    _ = expectError(.alreadyExists) { try library.createLab(name: "l") }
    _ = expectError(.notFound) { try library.addToLab("L", vms: ["zz"]) }
    try library.createLab(name: "empty")
    _ = expectError(.invalidState) { try library.checkpointLab("empty", checkpoint: "x") }
    try library.removeVM(named: "a1")
    XCTAssertEqual(try library.lab(named: "L").vms, ["b1"])
  }
}

final class JobTests: LabKitTestCase {
  func testJobsRunInParallelAcrossVMsAndArePersisted() throws {
    let names = (1...4).map { "j\($0)" }
    for name in names {
      try library.createVM(name: name, diskSizes: [4 * MiB], additions: true)
      try library.start(vm: name)
    }
    host.shutdownDelay = 0.4
    let jobs = try names.map { try library.checkpointJob(vm: $0, name: "nightly") }
    XCTAssertEqual(Set(jobs.map(\.status)), [.queued])
    let done = try library.wait(jobs: jobs.map(\.id))
    XCTAssertEqual(done.map(\.status), Array(repeating: .completed, count: 4))
    // In parallel: every job started before any other finished (each waits 0.4 s for its guest).
    let firstFinish = try XCTUnwrap(done.compactMap(\.finished).min())
    XCTAssertTrue(done.allSatisfy { ($0.started ?? .distantFuture) < firstFinish }, "the 4 shutdowns overlap")
    for job in done {
      XCTAssertNotNil(job.started)
      XCTAssertNotNil(job.finished)
      XCTAssertEqual(job.progress, 1)
      XCTAssertTrue(job.result?.contains("'nightly' (shut down)") ?? false, job.result ?? "")
    }
    // Jobs of one VM are serialised, and failures are recorded.
    host.shutdownDelay = 0
    let checkpoint = try library.checkpoint(vm: "j1", named: "nightly")
    let restore = try library.restoreJob(checkpoint: checkpoint.id)
    let merge = try library.mergeJob(checkpoint: checkpoint.id)
    let restored = try library.wait(job: restore.id)
    let merged = try library.wait(job: merge.id)
    XCTAssertEqual(restored.status, .completed, restored.error ?? "")
    XCTAssertLessThanOrEqual(try XCTUnwrap(restored.finished), try XCTUnwrap(merged.started), "in submission order")
    XCTAssertEqual(merged.status, .completed, merged.error ?? "")
    let again = try library.restoreJob(checkpoint: try library.checkpoint(vm: "j2", named: "nightly").id)
    try library.wait(job: again.id)
    library.faultInjection = FaultPlan(step: "checkpoint:disk1").hit
    let failing = try library.checkpointJob(vm: "j3", name: "doomed")
    let failed = try library.wait(job: failing.id)
    library.faultInjection = nil
    XCTAssertEqual(failed.status, .failed)
    XCTAssertTrue(failed.error?.contains("injected failure") ?? false, failed.error ?? "")
    XCTAssertEqual(try library.job(id: failed.id), failed)
    XCTAssertEqual(try library.jobs().count, 8)
    XCTAssertEqual(try library.jobs().first?.id, failed.id, "newest first")
    // Persisted: a new process sees them.
    try reopen()
    XCTAssertEqual(try library.jobs().map(\.status).filter { $0 == .completed }.count, 7)
    XCTAssertEqual(try library.job(id: failed.id).error, failed.error)
    XCTAssertEqual(try library.wait(job: failed.id).status, .failed)
    _ = expectError(.notFound) { try library.wait(job: 999) }
    try assertConsistent()
  }

  func testCloseWaitsForQueuedJobsAndFreesTheFolderAtOnce() throws {
    try library.createVM(name: "busy", diskSizes: [4 * MiB], additions: true)
    try library.start(vm: "busy")
    host.shutdownDelay = 0.3
    let job = try library.checkpointJob(vm: "busy", name: "late")
    let closing = library!
    try closing.close()
    // The folder is free straight away, and the job had finished before the close returned.
    library = try Library(at: root, host: host)
    XCTAssertEqual(try library.job(id: job.id).status, .completed)
    XCTAssertEqual(try library.checkpoints(vm: "busy").map(\.name), ["late"])
    // The closed object refuses work instead of writing without the lock.
    XCTAssertThrowsError(try closing.vms()) { error in
      XCTAssertTrue("\(error)".contains("was closed; open the library again"), "\(error)")
    }
    XCTAssertNoThrow(try closing.close(), "closing twice does nothing")
    try assertConsistent()
  }

  func testJobsInterruptedByAProcessEndAreMarkedFailed() throws {
    try library.createVM(name: "slow", diskSizes: [4 * MiB])
    // A job row left running by a process that died.
    try library.catalog.database.write { db in
      try db.execute(
        sql:
          "INSERT INTO job(kind, target, status, progress, created) VALUES ('checkpoint', 'slow', 'running', 0.5, ?)",
        arguments: [Date()])
    }
    try reopen()
    let job = try XCTUnwrap(try library.jobs().first)
    XCTAssertEqual(job.status, .failed)
    XCTAssertTrue(job.error?.contains("interrupted") ?? false)
  }
}

final class CloneTests: LabKitTestCase {
  func testThirtyLinkedClonesShareOneProtectedTemplate() throws {
    // A source disk with data, outside the library.
    let source = try Library(at: folder.path + "/source", host: host)
    try source.createVM(name: "golden", diskSizes: [16 * MiB])
    try source.write("golden", disk: 1, at: 0, pattern(7, 3 * Int(MiB)))
    let goldenPath = try source.vm(named: "golden").disks[0].path
    let golden = try source.contents("golden", disk: 1)
    for index in 1...30 {
      try library.createVM(name: "clone\(index)", from: goldenPath, linked: true)
    }
    let templates = filesUnder(root + "/templates")
    XCTAssertEqual(templates.count, 1, "one template for all clones: \(templates.sorted())")
    let templatePath = root + "/templates/" + templates.first!
    let templateSize = try FileManager.default.attributesOfItem(atPath: templatePath)[.size] as! Int
    XCTAssertGreaterThan(templateSize, 3 * Int(MiB))
    let templateBytes = try Data(contentsOf: URL(fileURLWithPath: templatePath))
    for index in 1...30 {
      let vm = try library.vm(named: "clone\(index)")
      XCTAssertEqual(vm.disks[0].chain.last, templatePath)
      let size = try FileManager.default.attributesOfItem(atPath: vm.disks[0].path)[.size] as! Int
      XCTAssertLessThan(size, 64 * 1024, "a clone is a small file")
    }
    XCTAssertTrue(same(try library.contents("clone7", disk: 1), golden))
    // Writes, checkpoints, restores, merges and removals of clones never touch the template.
    try library.write("clone1", disk: 1, at: 100, pattern(1, 10000))
    let c = try library.checkpoint(vm: "clone1", name: "c").checkpoint
    try library.write("clone1", disk: 1, at: 5 * MiB, pattern(2, 10000))
    try library.restore(checkpoint: c.id)
    try library.write("clone1", disk: 1, at: 9 * MiB, pattern(3, 10000))
    let current = try library.contents("clone1", disk: 1)
    try library.merge(checkpoint: c.id)
    XCTAssertTrue(same(try library.contents("clone1", disk: 1), current))
    let d = try library.checkpoint(vm: "clone2", name: "d").checkpoint
    try library.remove(checkpoint: d.id)
    try library.turnOff(vm: "clone1")
    try library.removeVM(named: "clone3")
    XCTAssertTrue(
      try Data(contentsOf: URL(fileURLWithPath: templatePath)) == templateBytes, "the template is unchanged")
    XCTAssertTrue(same(try library.contents("clone2", disk: 1), golden))
    try assertConsistent()
    // Even when every clone is gone, the template stays (others may be made from it).
    for index in 1...30 where index != 3 { try library.removeVM(named: "clone\(index)") }
    XCTAssertTrue(FileManager.default.fileExists(atPath: templatePath))
    try library.createVM(name: "late", from: goldenPath, linked: true)
    XCTAssertEqual(filesUnder(root + "/templates").count, 1)
    XCTAssertTrue(same(try library.contents("late", disk: 1), golden))
    try assertConsistent()
  }

  func testFullCopyIsIndependent() throws {
    let source = try Library(at: folder.path + "/source", host: host)
    try source.createVM(name: "golden", diskSizes: [4 * MiB])
    try source.write("golden", disk: 1, at: 0, pattern(7, 5000))
    let path = try source.vm(named: "golden").disks[0].path
    try library.createVM(name: "copy", from: path)
    XCTAssertEqual(filesUnder(root + "/templates"), [])
    XCTAssertEqual(try library.vm(named: "copy").disks[0].chain.count, 1)
    XCTAssertEqual(try library.diskRead(vm: "copy", disk: 1, offset: 0, count: 5000), pattern(7, 5000))
    _ = expectError(.invalidName) { try library.createVM(name: "../x", from: path) }
  }
}
