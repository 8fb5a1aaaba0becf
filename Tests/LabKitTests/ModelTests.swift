import Foundation
import TestSupport
import VHD
import XCTest

@testable import LabKit

/// A seeded random sequence of guest writes, checkpoints, restores, merges and removals on a 2-disk
/// VM, checked after every step against a plain in-memory model of the bytes each disk holds and of
/// the checkpoint tree.
final class ModelTests: LabKitTestCase {
  /// Writes land in zones: around every 2 MiB block boundary and inside blocks, at odd offsets.
  static let zoneSize = 64 * 1024
  static let zones: [UInt64] = {
    var starts: [UInt64] = [0]
    for block in UInt64(1)..<8 { starts.append(block * 2 * MiB - 32 * 1024) }
    for block in UInt64(0)..<8 { starts.append(block * 2 * MiB + 700_001) }
    starts.append(16 * MiB - UInt64(zoneSize))
    return starts.sorted()
  }()

  /// What one disk holds in its zones (everything outside them is zeros), packed.
  typealias Disks = [[UInt8]]

  struct ModelCheckpoint {
    var name: String
    var parent: Int64?
    var disks: Disks
  }

  struct Model {
    var disks: Disks = Array(
      repeating: [UInt8](repeating: 0, count: ModelTests.zones.count * ModelTests.zoneSize), count: 2)
    var checkpoints: [Int64: ModelCheckpoint] = [:]
    var current: Int64?

    /// From the current checkpoint back to `target`, or nil when it is not on that line.
    func line(to target: Int64) -> [Int64]? {
      var result: [Int64] = []
      var cursor = current
      while let id = cursor {
        result.append(id)
        if id == target { return result }
        cursor = checkpoints[id]?.parent
      }
      return nil
    }

    mutating func drop(_ removed: Set<Int64>) {
      func survivor(_ id: Int64?) -> Int64? {
        var cursor = id
        while let id = cursor, removed.contains(id) { cursor = checkpoints[id]?.parent }
        return cursor
      }
      for id in checkpoints.keys where !removed.contains(id) {
        checkpoints[id]!.parent = survivor(checkpoints[id]!.parent)
      }
      current = survivor(current)
      for id in removed { checkpoints[id] = nil }
    }
  }

  /// Reads the zones of a chain, packed like the model.
  func zones(ofChain path: String) throws -> [UInt8] {
    let chain = try DiskChain.open(path)
    defer { chain.close() }
    var result: [UInt8] = []
    result.reserveCapacity(Self.zones.count * Self.zoneSize)
    for start in Self.zones { result += try chain.read(at: start, count: Self.zoneSize) }
    return result
  }

  func fullDisk(fromZones packed: [UInt8]) -> [UInt8] {
    var disk = [UInt8](repeating: 0, count: Int(diskSize))
    for (index, start) in Self.zones.enumerated() {
      disk.replaceSubrange(
        Int(start)..<(Int(start) + Self.zoneSize), with: packed[(index * Self.zoneSize)..<((index + 1) * Self.zoneSize)]
      )
    }
    return disk
  }

  func run(seed: UInt64, steps: Int, hostKind: HostKind) throws {
    var random = Seeded(seed: seed)
    var model = Model()
    let vm = "model"
    try library.createVM(name: vm, diskSizes: [diskSize, diskSize], additions: true, hostKind: hostKind)
    var counts: [String: Int] = [:]
    var names = 0

    func verify(_ step: Int, _ what: String) throws {
      let context = "seed \(seed) step \(step) (\(what))"
      let now = try library.vm(named: vm)
      for slot in 0..<2 {
        let actual = try zones(ofChain: now.disks[slot].path)
        if !same(actual, model.disks[slot]) {
          let first = actual.indices.first { actual[$0] != model.disks[slot][$0] }!
          XCTFail("\(context): disk \(slot + 1) differs from the model at packed byte \(first)")
          throw LabKitError(.failed, "model mismatch")
        }
      }
      // One zone through the public read, too.
      let zone = random.int(0..<Self.zones.count)
      let slot = random.int(0..<2)
      let read = try library.diskRead(vm: vm, disk: slot + 1, offset: Self.zones[zone], count: Self.zoneSize)
      XCTAssertTrue(
        same(read, Array(model.disks[slot][(zone * Self.zoneSize)..<((zone + 1) * Self.zoneSize)])), context)
      let checkpoints = try library.checkpoints(vm: vm)
      XCTAssertEqual(Set(checkpoints.map(\.id)), Set(model.checkpoints.keys), context)
      for checkpoint in checkpoints {
        XCTAssertEqual(
          checkpoint.parentID, model.checkpoints[checkpoint.id]?.parent, "\(context): parent of \(checkpoint.name)")
      }
      XCTAssertEqual(now.currentCheckpointID, model.current, "\(context): current checkpoint")
      if step % 10 == 0 {
        XCTAssertEqual(try library.check(), [], context)
        for checkpoint in checkpoints {
          for slot in 0..<2 {
            XCTAssertTrue(
              try zones(ofChain: checkpoint.disks[slot]) == model.checkpoints[checkpoint.id]!.disks[slot],
              "\(context): checkpoint \(checkpoint.name) disk \(slot + 1) no longer holds its moment")
          }
        }
      }
      if step % 100 == 0 {
        for slot in 0..<2 {
          XCTAssertTrue(
            same(try library.contents(vm, disk: slot + 1), fullDisk(fromZones: model.disks[slot])),
            "\(context): full disk \(slot + 1)")
        }
      }
    }

    for step in 1...steps {
      let roll = random.int(0..<100)
      let many = model.checkpoints.count > 10
      let ids = model.checkpoints.keys.sorted()
      var what: String
      if roll < 42 || ids.isEmpty && roll < 70 {
        what = "write"
        let slot = random.int(0..<2)
        let zone = random.int(0..<Self.zones.count)
        let inZone = random.int(0..<Self.zoneSize)
        let count = min(random.int(1..<40_000), Self.zoneSize - inZone)
        let bytes = random.bytes(count)
        try library.write(vm, disk: slot + 1, at: Self.zones[zone] + UInt64(inZone), bytes)
        let packed = zone * Self.zoneSize + inZone
        model.disks[slot].replaceSubrange(packed..<(packed + count), with: bytes)
      } else if roll < 56 && !many || ids.isEmpty {
        what = "checkpoint"
        names += 1
        let result = try library.checkpoint(vm: vm, name: "cp\(names)")
        XCTAssertEqual(result.checkpoint.parentID, model.current, "seed \(seed) step \(step): parent")
        model.checkpoints[result.checkpoint.id] = ModelCheckpoint(
          name: "cp\(names)", parent: model.current, disks: model.disks)
        model.current = result.checkpoint.id
      } else if roll < 72 {
        what = "restore"
        let id = random.pick(ids)
        try library.restore(checkpoint: id)
        model.disks = model.checkpoints[id]!.disks
        model.current = id
      } else if roll < 84 {
        let id = random.pick(ids)
        if let line = model.line(to: id) {
          do {
            let plan = try library.merge(checkpoint: id)
            what = "merge"
            XCTAssertEqual(
              Set(plan.checkpointsRemoved), Set(line.map { model.checkpoints[$0]!.name }), "seed \(seed) step \(step)")
            model.drop(Set(line))
          } catch let error as LabKitError where error.kind == .conflict {
            what = "merge refused"
            XCTAssertTrue(error.message.contains("another branch") || error.message.contains("needs"), error.message)
          }
        } else {
          what = "merge off the line"
          XCTAssertThrowsError(try library.merge(checkpoint: id)) {
            XCTAssertEqual(($0 as? LabKitError)?.kind, .invalidState, "seed \(seed) step \(step): \($0)")
          }
        }
      } else if roll < 96 {
        what = "remove"
        let id = random.pick(ids)
        try library.remove(checkpoint: id)
        model.drop([id])
      } else {
        what = "power"
        let state = try library.vm(named: vm).state
        switch random.int(0..<3) {
        case 0: if state == .running { try library.save(vm: vm) } else { try library.start(vm: vm) }
        case 1: try library.turnOff(vm: vm)
        default: if state == .running { try library.shutDown(vm: vm) } else { try library.start(vm: vm) }
        }
      }
      counts[what, default: 0] += 1
      try verify(step, what)
    }
    XCTAssertEqual(try library.check(), [])
    print("model run seed \(seed): \(counts.sorted { $0.key < $1.key })")
    for name in ["write", "checkpoint", "restore", "merge", "remove"] {
      XCTAssertGreaterThan(counts[name] ?? 0, 3, "seed \(seed) exercised \(name) too little: \(counts)")
    }
  }

  func testRandomSequenceVirtualServer() throws {
    try run(seed: 0x5EED_0001, steps: 300, hostKind: .virtualServer)
  }

  func testRandomSequenceHypervisor() throws {
    try run(seed: 0x5EED_0002, steps: 150, hostKind: .hypervisor)
  }
}
