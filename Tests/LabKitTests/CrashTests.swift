import Foundation
import TestSupport
import VHD
import XCTest

@testable import LabKit

/// Failures and simulated process deaths at every journal step: the library always comes back
/// consistent, with the data of either the moment before the operation or the moment after.
final class CrashTests: LabKitTestCase {
  /// 4 MiB rounded up to a whole CHS geometry: the size a VM created with 4 MiB disks sees.
  let small = DiskGeometry.rounding(size: 4 * MiB).size
  let disks = 3

  struct Picture: Equatable {
    var contents: [[UInt8]]
    var checkpoints: [String]
    /// Each checkpoint's frozen data, by name.
    var moments: [String: [[UInt8]]]

    static func == (a: Picture, b: Picture) -> Bool {
      same(a.contents, b.contents) && a.checkpoints == b.checkpoints && a.moments.count == b.moments.count
        && a.moments.allSatisfy { same($0.value, b.moments[$0.key]) }
    }
  }

  func picture(_ vm: String = "c") throws -> Picture {
    let contents = try (1...disks).map { try library.contents(vm, disk: $0, size: small) }
    var moments: [String: [[UInt8]]] = [:]
    let checkpoints = try library.checkpoints(vm: vm)
    for checkpoint in checkpoints {
      moments[checkpoint.name] = try (1...disks).map { try library.contents(of: checkpoint, disk: $0) }
    }
    return Picture(contents: contents, checkpoints: checkpoints.map(\.name), moments: moments)
  }

  /// A 3-disk VM with checkpoints a -> b -> c and data written between them; stopped.
  func scenario() throws -> [String: Int64] {
    try library.createVM(name: "c", diskSizes: Array(repeating: small, count: disks))
    var ids: [String: Int64] = [:]
    for (index, name) in ["a", "b", "c"].enumerated() {
      for disk in 1...disks {
        try library.write(
          "c", disk: disk, at: UInt64(index) * 700_000 + UInt64(disk) * 1000, pattern(UInt8(index * 10 + disk), 2000))
      }
      ids[name] = try library.checkpoint(vm: "c", name: name).checkpoint.id
    }
    try library.write("c", disk: 2, at: 3 * MiB, pattern(99, 4000))
    try library.turnOff(vm: "c")
    return ids
  }

  /// The fault steps an operation passes through, in order.
  func steps(of operation: ([String: Int64]) throws -> Void) throws -> [String] {
    let recorder = FaultPlan(step: "(none)")
    let ids = try scenario2Reset()
    library.faultInjection = recorder.hit
    try operation(ids)
    library.faultInjection = nil
    return recorder.seen
  }

  /// Starts over in a fresh library folder and builds the scenario.
  func scenario2Reset() throws -> [String: Int64] {
    try library.close()
    library = nil
    folder = TemporaryFolder()
    library = try Library(at: root, host: host)
    return try scenario()
  }

  /// For every step of `operation`: crash there, reopen, and check the result.
  func crashAtEveryStep(
    _ name: String, expectedSteps: Int, _ operation: ([String: Int64]) throws -> Void,
    after: (Picture, [String: Int64]) throws -> Picture
  ) throws {
    let seen = try steps(of: operation)
    XCTAssertGreaterThanOrEqual(seen.count, expectedSteps, "\(name) steps: \(seen)")
    for step in seen {
      let ids = try scenario2Reset()
      let before = try picture()
      let expectedAfter = try after(before, ids)
      library.faultInjection = FaultPlan(step: step, error: SimulatedCrash()).hit
      XCTAssertThrowsError(try operation(ids), "\(name) crash at \(step)") {
        XCTAssertTrue($0 is SimulatedCrash, "\($0)")
      }
      try reopen()
      try assertConsistent()
      let now = try picture()
      XCTAssertTrue(
        now == before || now == expectedAfter,
        "\(name) crash at \(step): neither before nor after (checkpoints \(now.checkpoints))")
      // Whatever state it is in, every checkpoint still restores to its moment.
      for checkpoint in try library.checkpoints(vm: "c") {
        try library.restore(checkpoint: checkpoint.id)
        let contents = try (1...disks).map { try library.contents("c", disk: $0, size: small) }
        XCTAssertTrue(
          same(contents, now.moments[checkpoint.name]), "\(name) crash at \(step): restore \(checkpoint.name)")
      }
      try assertConsistent()
    }
  }

  func testCrashDuringCheckpoint() throws {
    try crashAtEveryStep("checkpoint", expectedSteps: 6, { _ in _ = try library.checkpoint(vm: "c", name: "d") }) {
      before, _ in
      var after = before
      after.checkpoints.append("d")
      after.moments["d"] = before.contents
      return after
    }
  }

  func testCrashDuringRestore() throws {
    try crashAtEveryStep("restore", expectedSteps: 6, { ids in _ = try library.restore(checkpoint: ids["a"]!) }) {
      before, _ in
      var after = before
      after.contents = before.moments["a"]!
      return after
    }
  }

  func testCrashDuringMerge() throws {
    try crashAtEveryStep("merge", expectedSteps: 6, { ids in _ = try library.merge(checkpoint: ids["b"]!) }) {
      before, _ in
      var after = before
      after.checkpoints = ["a"]
      after.moments = ["a": before.moments["a"]!]
      return after
    }
  }

  func testCrashDuringRemove() throws {
    try crashAtEveryStep("remove", expectedSteps: 6, { ids in _ = try library.remove(checkpoint: ids["b"]!) }) {
      before, _ in
      var after = before
      after.checkpoints = ["a", "c"]
      after.moments["b"] = nil
      return after
    }
  }

  func testFailureOnTheThirdDiskLeavesNoPartialCheckpoint() throws {
    try library.createVM(name: "c", diskSizes: Array(repeating: small, count: 3))
    try library.write("c", disk: 3, at: 0, pattern(1, 100))
    _ = try library.checkpoint(vm: "c", name: "first")
    let files = filesUnder(root)
    let catalog = try library.checkpoints()
    let vm = try library.vm(named: "c")
    let plan = FaultPlan(step: "checkpoint:disk3")
    library.faultInjection = plan.hit
    XCTAssertThrowsError(try library.checkpoint(vm: "c", name: "second")) {
      XCTAssertEqual(($0 as? LabKitError)?.message, "injected failure")
    }
    XCTAssertTrue(plan.seen.contains("checkpoint:disk2"))
    library.faultInjection = nil
    XCTAssertEqual(filesUnder(root), files, "no stray files")
    XCTAssertEqual(try library.checkpoints(), catalog, "catalog unchanged")
    var now = try library.vm(named: "c")
    XCTAssertEqual(now.state, .running, "the VM that ran runs again")
    now.state = vm.state
    XCTAssertEqual(now, vm)
    try assertConsistent()
    // And it works afterwards.
    _ = try library.checkpoint(vm: "c", name: "second")
    try assertConsistent()
  }

  func testFailuresBeforeCommitRollBack() throws {
    let ids = try scenario()
    for (step, operation) in [
      ("restore:disk2", { _ = try self.library.restore(checkpoint: ids["a"]!) }),
      ("restore:files", { _ = try self.library.restore(checkpoint: ids["a"]!) }),
      ("checkpoint:files", { _ = try self.library.checkpoint(vm: "c", name: "x") }),
      ("create-vm:disk2", { _ = try self.library.createVM(name: "new", diskSizes: [self.small, self.small]) }),
    ] as [(String, () throws -> Void)] {
      let files = filesUnder(root)
      let before = try picture()
      library.faultInjection = FaultPlan(step: step).hit
      XCTAssertThrowsError(try operation(), step)
      library.faultInjection = nil
      XCTAssertEqual(filesUnder(root), files, step)
      XCTAssertTrue(try picture() == before, step)
      XCTAssertEqual(try library.vms().map(\.name), ["c"])
      try assertConsistent()
    }
  }

  func testFailedMergeAndRemoveNeverLoseData() throws {
    for (step, expected) in [("merge:fold2", ["a"]), ("merge:journaled", ["a"]), ("remove:absorb", ["a", "c"])] {
      let ids = try scenario2Reset()
      let before = try picture()
      library.faultInjection = FaultPlan(step: step).hit
      if step.hasPrefix("merge") {
        XCTAssertThrowsError(try library.merge(checkpoint: ids["b"]!), step)
      } else {
        XCTAssertThrowsError(try library.remove(checkpoint: ids["b"]!), step)
      }
      library.faultInjection = nil
      XCTAssertTrue(same(try picture().contents, before.contents), step)
      try reopen()
      try assertConsistent()
      let now = try picture()
      XCTAssertTrue(same(now.contents, before.contents), step)
      XCTAssertTrue(now.checkpoints == before.checkpoints || now.checkpoints == expected, "\(step): \(now.checkpoints)")
      for (name, moment) in now.moments { XCTAssertTrue(same(moment, before.moments[name]), "\(step): \(name)") }
    }
  }
}

extension CrashTests {
  /// A merge that failed half way (not a crash: the process goes on) must not let later operations
  /// on the VM be undone when the merge is finished.
  func testOperationsAfterAFailedMergeAreNotUndone() throws {
    for step in ["merge:fold2", "remove:absorb"] {
      let ids = try scenario2Reset()
      let before = try picture()
      library.faultInjection = FaultPlan(step: step).hit
      if step.hasPrefix("merge") {
        XCTAssertThrowsError(try library.merge(checkpoint: ids["b"]!), step)
      } else {
        XCTAssertThrowsError(try library.remove(checkpoint: ids["b"]!), step)
      }
      library.faultInjection = nil
      try library.restore(checkpoint: ids["a"]!)
      XCTAssertTrue(same(try picture().contents, before.moments["a"]!), "\(step): restored a")
      try library.write("c", disk: 1, at: 100, [1, 2, 3])
      try library.turnOff(vm: "c")
      let expected = try picture().contents
      try assertConsistent()
      try reopen()
      try assertConsistent()
      XCTAssertTrue(same(try picture().contents, expected), "\(step): what the VM had before reopening")
      let a = try library.checkpoint(vm: "c", named: "a")
      try library.restore(checkpoint: a.id)
      XCTAssertTrue(same(try picture().contents, before.moments["a"]!), "\(step): a restores")
    }
  }

  /// A process killed while it replaced a manifest leaves the temporary file behind; opening the
  /// library removes it (and the ones Foundation's atomic writes left in earlier versions).
  func testOpeningRemovesTheTemporaryFilesOfAnInterruptedManifestWrite() throws {
    try library.createVM(name: "t", diskSizes: [small])
    let leftovers = [
      root + "/vms/t/.vm.json" + Library.temporaryMarker + "0A1B",
      root + "/.labs.json" + Library.temporaryMarker + "2C3D",
      root + "/vms/t/.dat.nosync12ab.XyZ123",
    ]
    for path in leftovers { XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("{".utf8))) }
    try reopen()
    for path in leftovers { XCTAssertFalse(FileManager.default.fileExists(atPath: path), path) }
    XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/vms/t/vm.json"))
    try assertConsistent()
  }

  /// Power changes that discard or make a saved state (`saved.vsv`), each killed between its
  /// commit and its file step: the catalog never names a missing state file, and a state file no
  /// one names is removed when the library is next opened.
  func testAProcessDeathAroundASavedStateLeavesNoMissingOrStrayFile() throws {
    let cases: [(step: String, operation: (Library) throws -> Void, expected: PowerState)] = [
      ("turn-off:recorded", { _ = try $0.turnOff(vm: "s") }, .stopped),
      ("start:recorded", { _ = try $0.start(vm: "s") }, .running),
      ("stop:recorded", { try $0.restore(checkpoint: try $0.checkpoint(vm: "s", named: "k").id) }, .stopped),
    ]
    for (index, item) in cases.enumerated() {
      let name = "s"
      if index > 0 { try library.removeVM(named: name) }
      try library.createVM(name: name, diskSizes: [small])
      try library.checkpoint(vm: name, name: "k")
      try library.start(vm: name)
      try library.save(vm: name)
      XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/vms/s/saved.vsv"))
      library.faultInjection = FaultPlan(step: item.step, error: SimulatedCrash()).hit
      XCTAssertThrowsError(try item.operation(library), item.step) { XCTAssertTrue($0 is SimulatedCrash, "\($0)") }
      library.faultInjection = nil
      try reopen()
      try assertConsistent()
      XCTAssertEqual(try library.vm(named: name).state, item.expected, item.step)
      XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/vms/s/saved.vsv"), "\(item.step): no stray state")
      if try library.vm(named: name).state != .stopped { try library.turnOff(vm: name) }
    }

    // Killed between writing the saved state and committing it: the VM still runs, the file goes.
    try library.start(vm: "s")
    library.faultInjection = FaultPlan(step: "save:written", error: SimulatedCrash()).hit
    XCTAssertThrowsError(try library.save(vm: "s"))
    library.faultInjection = nil
    XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/vms/s/saved.vsv"))
    try reopen()
    try assertConsistent()
    XCTAssertEqual(try library.vm(named: "s").state, .running)
    XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/vms/s/saved.vsv"))
  }

  /// `check()` names a saved state the catalog needs and the folder lacks.
  func testCheckFindsAMissingSavedState() throws {
    try library.createVM(name: "m", diskSizes: [small])
    try library.start(vm: "m")
    try library.save(vm: "m")
    try FileManager.default.removeItem(atPath: root + "/vms/m/saved.vsv")
    let problems = try library.check()
    XCTAssertTrue(problems.contains { $0.contains("missing file") && $0.contains("saved.vsv") }, "\(problems)")
  }
}
