import Foundation
import TestSupport
import XCTest

@testable import LabKit

final class MergeRemoveTests: LabKitTestCase {
  func scribble(_ vm: String, tag: UInt8) throws {
    try library.write(vm, disk: 1, at: 2 * MiB - 600 + UInt64(tag) * 64, pattern(tag, 3000))
    try library.write(vm, disk: 2, at: UInt64(tag % 8) * MiB + 4096, pattern(tag &+ 100, 1500))
  }

  func state(_ vm: String) throws -> [[UInt8]] {
    try [library.contents(vm, disk: 1), library.contents(vm, disk: 2)]
  }

  /// Every checkpoint left still holds exactly its moment (read from its frozen disks).
  func assertMoments(_ moments: [String: [[UInt8]]], vm: String, file: StaticString = #filePath, line: UInt = #line)
    throws
  {
    for checkpoint in try library.checkpoints(vm: vm) {
      guard let moment = moments[checkpoint.name] else { continue }
      for disk in 1...2 {
        XCTAssertTrue(
          try library.contents(of: checkpoint, disk: disk) == moment[disk - 1],
          "checkpoint \(checkpoint.name) disk \(disk) changed", file: file, line: line)
      }
    }
  }

  /// Builds a -> b -> c with writes between, leaves the VM running with more writes.
  func linear() throws -> (ids: [String: Int64], moments: [String: [[UInt8]]]) {
    try library.createVM(name: "m", diskSizes: [diskSize, diskSize])
    var ids: [String: Int64] = [:]
    var moments: [String: [[UInt8]]] = [:]
    for (index, name) in ["a", "b", "c"].enumerated() {
      try scribble("m", tag: UInt8(index + 1))
      moments[name] = try state("m")
      ids[name] = try library.checkpoint(vm: "m", name: name).checkpoint.id
    }
    try scribble("m", tag: 9)
    return (ids, moments)
  }

  func testMergeOfTheNewestKeepsContentAndOthers() throws {
    let (ids, moments) = try linear()
    let now = try state("m")
    let plan = try library.merge(checkpoint: ids["c"]!)
    XCTAssertTrue(plan.applied)
    XCTAssertEqual(plan.checkpointsRemoved, ["c"])
    XCTAssertEqual(plan.alsoAffected, [])
    XCTAssertTrue(same(try state("m"), now), "a merge changes nothing the VM sees")
    XCTAssertEqual(try library.checkpoints(vm: "m").map(\.name), ["a", "b"])
    XCTAssertEqual(try library.vm(named: "m").currentCheckpointID, ids["b"])
    for path in plan.filesRemoved { XCTAssertFalse(FileManager.default.fileExists(atPath: path), path) }
    try assertConsistent()
    try assertMoments(moments, vm: "m")
    try library.write("m", disk: 1, at: 0, pattern(40, 100))  // still writable
    for name in ["a", "b", "a"] {
      try library.restore(checkpoint: ids[name]!)
      XCTAssertTrue(same(try state("m"), moments[name]!), name)
    }
    try assertConsistent()
  }

  func testMergeOfAnOlderCheckpointTakesTheLaterOnesOnTheLine() throws {
    let (ids, moments) = try linear()
    let now = try state("m")
    let files = filesUnder(root + "/vms/m").filter { $0.hasSuffix(".vhd") }.count
    let plan = try library.merge(checkpoint: ids["b"]!)
    XCTAssertEqual(plan.checkpointsRemoved, ["b", "c"])
    XCTAssertEqual(plan.alsoAffected, ["c"], "the later checkpoint is named as going too")
    XCTAssertTrue(same(try state("m"), now), "contents differ")
    XCTAssertEqual(try library.checkpoints(vm: "m").map(\.name), ["a"])
    XCTAssertEqual(filesUnder(root + "/vms/m").filter { $0.hasSuffix(".vhd") }.count, files - 4)
    XCTAssertEqual(try library.vm(named: "m").disks.map(\.chain.count), [2, 2])
    try assertConsistent()
    try assertMoments(moments, vm: "m")
    try library.restore(checkpoint: ids["a"]!)
    XCTAssertTrue(same(try state("m"), moments["a"]!), "contents differ")
    // Merge the last one: back to plain disks with the current data.
    try library.write("m", disk: 2, at: 7 * MiB, pattern(50, 999))
    let final = try state("m")
    try library.merge(checkpoint: ids["a"]!)
    XCTAssertTrue(same(try state("m"), final), "contents differ")
    XCTAssertEqual(try library.checkpoints(vm: "m"), [])
    XCTAssertEqual(try library.vm(named: "m").disks.map(\.chain.count), [1, 1])
    XCTAssertEqual(
      filesUnder(root + "/vms/m").filter { $0.hasSuffix(".vhd") }.sorted(), ["m-disk1.vhd", "m-disk2.vhd"])
    try assertConsistent()
  }

  func testMergeRefusesWhenAnotherBranchSharesADisk() throws {
    let (ids, moments) = try linear()
    try library.restore(checkpoint: ids["a"]!)
    try scribble("m", tag: 20)
    let d = try library.checkpoint(vm: "m", name: "d").checkpoint
    try scribble("m", tag: 21)
    let now = try state("m")
    let files = filesUnder(root)
    // d -> a is the current line; a's state (the base) is also read by b's branch.
    let error = expectError(.conflict) { try library.merge(checkpoint: ids["a"]!) }
    XCTAssertTrue(error?.message.contains("another branch") ?? false, error?.message ?? "")
    XCTAssertTrue(error?.message.contains("cannot merge checkpoint 'a'") ?? false, error?.message ?? "")
    _ = expectError(.conflict) { try library.merge(checkpoint: ids["a"]!, whatIf: true) }
    // b is not on the current line at all.
    let offLine = expectError(.invalidState) { try library.merge(checkpoint: ids["b"]!) }
    XCTAssertTrue(offLine?.message.contains("current line") ?? false, offLine?.message ?? "")
    XCTAssertEqual(filesUnder(root), files, "a refused merge touches nothing")
    XCTAssertTrue(same(try state("m"), now), "contents differ")
    try assertConsistent()
    // d alone can be merged: its state belongs to this branch only.
    try library.merge(checkpoint: d.id)
    XCTAssertTrue(same(try state("m"), now), "contents differ")
    try assertMoments(moments, vm: "m")
    for name in ["b", "c", "a"] {
      try library.restore(checkpoint: ids[name]!)
      XCTAssertTrue(same(try state("m"), moments[name]!), name)
    }
    try assertConsistent()
  }

  func testRemoveAMiddleCheckpointKeepsLaterOnesRestorable() throws {
    let (ids, moments) = try linear()
    let now = try state("m")
    let plan = try library.remove(checkpoint: ids["b"]!)
    XCTAssertEqual(plan.checkpointsRemoved, ["b"])
    XCTAssertTrue(same(try state("m"), now), "contents differ")
    XCTAssertEqual(try library.checkpoints(vm: "m").map(\.name), ["a", "c"])
    XCTAssertEqual(try library.checkpoint(vm: "m", named: "c").parentID, ids["a"], "c now descends from a")
    try assertConsistent()
    try assertMoments(moments, vm: "m")
    for name in ["c", "a", "c"] {
      try scribble("m", tag: 30)
      try library.restore(checkpoint: ids[name]!)
      XCTAssertTrue(same(try state("m"), moments[name]!), name)
      try assertConsistent()
    }
  }

  func testRemoveEveryKindOfCheckpoint() throws {
    let (ids, moments) = try linear()
    // A branch from b, so that b's state has two children.
    try library.restore(checkpoint: ids["b"]!)
    try scribble("m", tag: 11)
    let e = try library.checkpoint(vm: "m", name: "e").checkpoint
    var all = moments
    all["e"] = try state("m")
    try scribble("m", tag: 12)
    let now = try state("m")
    // The first (its state is the base) and the current one.
    try library.remove(checkpoint: ids["a"]!)
    try library.remove(checkpoint: e.id)
    XCTAssertTrue(same(try state("m"), now), "contents differ")
    XCTAssertEqual(try library.checkpoints(vm: "m").map(\.name), ["b", "c"])
    try assertConsistent()
    try assertMoments(all, vm: "m")
    // b's state is read by c's line and by the current one: it stays as a plain disk.
    try library.remove(checkpoint: ids["b"]!)
    try assertConsistent()
    XCTAssertTrue(same(try state("m"), now), "contents differ")
    try library.restore(checkpoint: ids["c"]!)
    XCTAssertTrue(same(try state("m"), moments["c"]!), "contents differ")
    try library.remove(checkpoint: ids["c"]!)
    XCTAssertTrue(same(try state("m"), moments["c"]!), "contents differ")
    XCTAssertEqual(try library.checkpoints(vm: "m"), [])
    try assertConsistent()
    _ = expectError(.notFound) { try library.remove(checkpoint: ids["c"]!) }
    _ = expectError(.notFound) { try library.restore(checkpoint: ids["c"]!) }
  }

  func testRemoveAnOnlineCheckpointDeletesItsRunningState() throws {
    try library.createVM(name: "hv", diskSizes: [diskSize], hostKind: .hypervisor)
    try library.start(vm: "hv")
    let checkpoint = try library.checkpoint(vm: "hv", name: "on").checkpoint
    XCTAssertEqual(filesUnder(root + "/vms/hv").filter { $0.hasSuffix(".vsv") }.count, 1)
    try library.remove(checkpoint: checkpoint.id)
    XCTAssertEqual(filesUnder(root + "/vms/hv").filter { $0.hasSuffix(".vsv") }.count, 0)
    try assertConsistent()
  }
}
