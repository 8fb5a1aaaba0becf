import Foundation
import TestSupport
import VHD
import XCTest

@testable import LabKit

final class RepairTests: LabKitTestCase {
  /// 4 MiB rounded up to a whole CHS geometry: the size a VM created with 4 MiB disks sees.
  let small = DiskGeometry.rounding(size: 4 * MiB).size

  func contents(_ vm: String, disks: Int) throws -> [[UInt8]] {
    try (1...disks).map { try library.contents(vm, disk: $0, size: small) }
  }

  /// Closes the library, repairs the folder as `vmlab library repair` does, and opens it again.
  func repair() throws -> RepairReport {
    try library.close()
    library = nil
    let report = try Library.repair(at: root, host: host)
    library = try Library(at: root, host: host)
    return report
  }

  /// Drops the library, deletes the catalog (and the manifests, if asked), opens the folder again.
  func loseCatalog(manifests: Bool = false) throws {
    try library.close()
    library = nil
    try FileManager.default.removeItem(atPath: root + "/catalog.sqlite")
    if manifests {
      for vm in (try FileManager.default.contentsOfDirectory(atPath: root + "/vms")) {
        try? FileManager.default.removeItem(atPath: root + "/vms/\(vm)/vm.json")
      }
      try? FileManager.default.removeItem(atPath: root + "/labs.json")
    }
    library = try Library(at: root, host: host)
    XCTAssertEqual(try library.vms(), [])
    XCTAssertFalse(try library.check().isEmpty, "the folders are strays until repaired")
  }

  func testRepairFromManifestsRebuildsEverything() throws {
    // A tree: a -> b, a -> c (current), with data.
    try library.createVM(name: "web", diskSizes: [small, small], additions: true)
    var moments: [String: [[UInt8]]] = [:]
    try library.write("web", disk: 1, at: 0, pattern(1, 3000))
    moments["a"] = try contents("web", disks: 2)
    let a = try library.checkpoint(vm: "web", name: "a", description: "installed").checkpoint
    try library.write("web", disk: 2, at: MiB, pattern(2, 3000))
    moments["b"] = try contents("web", disks: 2)
    try library.checkpoint(vm: "web", name: "b")
    try library.restore(checkpoint: a.id)
    try library.write("web", disk: 1, at: 2 * MiB, pattern(3, 3000))
    moments["c"] = try contents("web", disks: 2)
    try library.checkpoint(vm: "web", name: "c", description: "branch")
    try library.write("web", disk: 2, at: 3 * MiB, pattern(4, 3000))
    try library.turnOff(vm: "web")
    let now = try contents("web", disks: 2)
    // An online checkpoint, a linked clone and a lab.
    try library.createVM(name: "hv", diskSizes: [small], hostKind: .hypervisor)
    try library.start(vm: "hv")
    host.setMemory("hv", "hv memory")
    try library.checkpoint(vm: "hv", name: "live")
    try library.turnOff(vm: "hv")
    let goldenPath = try library.vm(named: "web").disks[0].chain.last!
    try library.createVM(name: "clone1", from: goldenPath, linked: true)
    try library.createLab(name: "course", vms: ["web", "hv"])
    let before = try library.checkpoints().map { ($0.vm, $0.name, $0.description, $0.online, $0.isCurrent) }
    let parents = try library.checkpoints().map { checkpoint in
      try checkpoint.parentID.map { try library.checkpoint(id: $0).name }
    }
    let vmsBefore = try library.vms().map { ($0.name, $0.hostKind, $0.additions, $0.disks.count) }

    try loseCatalog()
    let report = try repair()
    XCTAssertEqual(report.vms, ["clone1", "hv", "web"])
    XCTAssertEqual(report.checkpoints, 4)
    XCTAssertEqual(report.labs, ["course"])
    try assertConsistent()
    XCTAssertEqual(
      try library.vms().map { "\($0.name) \($0.hostKind) \($0.additions) \($0.disks.count)" },
      vmsBefore.map { "\($0.0) \($0.1) \($0.2) \($0.3)" })
    XCTAssertEqual(
      try library.checkpoints().map { "\($0.vm) \($0.name) \($0.description) \($0.online) \($0.isCurrent)" },
      before.map { "\($0.0) \($0.1) \($0.2) \($0.3) \($0.4)" })
    XCTAssertEqual(
      try library.checkpoints().map { try $0.parentID.map { try library.checkpoint(id: $0).name } }, parents)
    XCTAssertTrue(same(try contents("web", disks: 2), now))
    XCTAssertEqual(try library.lab(named: "course").vms, ["web", "hv"])
    for name in ["b", "a", "c"] {
      try library.restore(checkpoint: try library.checkpoint(vm: "web", named: name).id)
      XCTAssertTrue(same(try contents("web", disks: 2), moments[name]!), name)
    }
    host.setMemory("hv", "other")
    try library.restore(checkpoint: try library.checkpoint(vm: "hv", named: "live").id)
    XCTAssertEqual(host.memory("hv"), "hv memory")
    // The clone's template is still known and shared.
    try library.createVM(name: "clone2", from: goldenPath, linked: true)
    XCTAssertEqual(filesUnder(root + "/templates").count, 1)
    try library.merge(checkpoint: try library.checkpoint(vm: "web", named: "c").id)
    try assertConsistent()
  }

  func testRepairWithoutManifestsUsesFileNames() throws {
    try library.createVM(name: "plain", diskSizes: [small, small])
    var moments: [[[UInt8]]] = []
    for step in 0..<3 {
      try library.write("plain", disk: 1 + step % 2, at: UInt64(step) * MiB, pattern(UInt8(step + 1), 5000))
      moments.append(try contents("plain", disks: 2))
      try library.checkpoint(vm: "plain", name: "step\(step)")
    }
    try library.write("plain", disk: 2, at: 3 * MiB, pattern(9, 5000))
    try library.turnOff(vm: "plain")
    let now = try contents("plain", disks: 2)
    let stamps = try library.checkpoints(vm: "plain").map(\.stamp)

    try loseCatalog(manifests: true)
    let report = try repair()
    XCTAssertEqual(report.vms, ["plain"])
    XCTAssertEqual(report.checkpoints, 3)
    XCTAssertTrue(report.notes.contains { $0.contains("no vm.json") }, "\(report.notes)")
    try assertConsistent()
    XCTAssertTrue(same(try contents("plain", disks: 2), now), "the current leaf is found")
    let rebuilt = try library.checkpoints(vm: "plain")
    XCTAssertEqual(rebuilt.map(\.stamp), stamps)
    XCTAssertEqual(rebuilt.map(\.name), stamps.map { "checkpoint \($0)" })
    XCTAssertEqual(rebuilt.map(\.parentID), [nil, rebuilt[0].id, rebuilt[1].id])
    XCTAssertEqual(try library.vm(named: "plain").currentCheckpointID, rebuilt[2].id)
    for (index, checkpoint) in rebuilt.enumerated().reversed() {
      try library.restore(checkpoint: checkpoint.id)
      XCTAssertTrue(same(try contents("plain", disks: 2), moments[index]), "checkpoint \(index)")
      try assertConsistent()
    }
    // Work goes on normally afterwards.
    try library.restore(checkpoint: rebuilt[2].id)
    try library.merge(checkpoint: rebuilt[1].id)
    XCTAssertTrue(same(try contents("plain", disks: 2), moments[2]))
    try assertConsistent()
  }
}

extension RepairTests {
  /// A restore deletes the files a checkpoint made when nothing else needs them; the checkpoint's
  /// own state disk stays. Without vm.json, repair must still find that checkpoint.
  func testRepairWithoutManifestsFindsCheckpointsWhoseOwnFilesARestoreDeleted() throws {
    try library.createVM(name: "br", diskSizes: [small, small])
    try library.write("br", disk: 1, at: 0, pattern(1, 2000))
    let a = try library.checkpoint(vm: "br", name: "a").checkpoint
    let atA = try contents("br", disks: 2)
    try library.write("br", disk: 2, at: MiB, pattern(2, 2000))
    try library.checkpoint(vm: "br", name: "b")
    let atB = try contents("br", disks: 2)
    try library.write("br", disk: 1, at: 2 * MiB, pattern(3, 2000))
    try library.restore(checkpoint: a.id)  // b's own files (its children) are gone now
    try library.write("br", disk: 1, at: 3 * MiB, pattern(4, 2000))
    try library.turnOff(vm: "br")
    let now = try contents("br", disks: 2)

    try loseCatalog(manifests: true)
    let report = try repair()
    XCTAssertEqual(report.checkpoints, 2, "\(report.notes)")
    try assertConsistent()
    XCTAssertTrue(same(try contents("br", disks: 2), now), "the current leaf is found")
    let rebuilt = try library.checkpoints(vm: "br")
    XCTAssertEqual(rebuilt.count, 2)
    XCTAssertEqual(try library.vm(named: "br").currentCheckpointID, rebuilt.first?.id)
    var found: [[[UInt8]]] = []
    for checkpoint in rebuilt {
      try library.restore(checkpoint: checkpoint.id)
      found.append(try contents("br", disks: 2))
    }
    XCTAssertTrue(found.count == 2 && same(found[0], atA) && same(found[1], atB), "a and b restore to their moments")
    XCTAssertEqual(rebuilt.last?.parentID, rebuilt.first?.id)
    try assertConsistent()
  }

  /// Rewrites a VM's manifest in the words vmlab used before the "plain-words" migration: memory
  /// files as "states", frozen disks as "states", a layer's role named for the operation that made it.
  func writeEarlierManifest(vm: String) throws {
    let file = root + "/vms/\(vm)/vm.json"
    var manifest = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any])
    manifest["savedStatePath"] = manifest.removeValue(forKey: "savedMemoryPath")
    manifest["checkpoints"] = (manifest["checkpoints"] as? [[String: Any]] ?? []).map { checkpoint in
      var checkpoint = checkpoint
      checkpoint["states"] = checkpoint.removeValue(forKey: "frozenDisks")
      checkpoint["runningStatePath"] = checkpoint.removeValue(forKey: "memoryPath")
      return checkpoint
    }
    manifest["disks"] = (manifest["disks"] as? [[String: Any]] ?? []).map { disk in
      var disk = disk
      if disk["role"] as? String == "layer" { disk["role"] = disk["checkpointStamp"] == nil ? "working" : "checkpoint" }
      return disk
    }
    try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: file))
  }

  func testManifestsInTheEarlierWordsStillRebuildTheCatalog() throws {
    try library.createVM(name: "web", diskSizes: [small])
    try library.write("web", disk: 1, at: 0, pattern(1, 3000))
    let first = try contents("web", disks: 1)
    let a = try library.checkpoint(vm: "web", name: "a").checkpoint
    try library.write("web", disk: 1, at: MiB, pattern(2, 3000))
    try library.restore(checkpoint: a.id)
    try library.write("web", disk: 1, at: 2 * MiB, pattern(3, 3000))
    try library.turnOff(vm: "web")
    let now = try contents("web", disks: 1)
    try library.createVM(name: "hv", diskSizes: [small], hostKind: .hypervisor)
    try library.start(vm: "hv")
    host.setMemory("hv", "hv memory")
    try library.checkpoint(vm: "hv", name: "live")
    try library.save(vm: "hv")
    let roles = try String(contentsOfFile: root + "/vms/web/vm.json", encoding: .utf8)
    XCTAssertTrue(roles.contains("\"frozenDisks\"") && roles.contains("\"layer\""), roles)

    try loseCatalog()
    for vm in ["web", "hv"] { try writeEarlierManifest(vm: vm) }
    let earlier = try String(contentsOfFile: root + "/vms/web/vm.json", encoding: .utf8)
    XCTAssertTrue(earlier.contains("\"working\"") && earlier.contains("\"states\""), earlier)
    let report = try repair()
    XCTAssertEqual(report.vms, ["hv", "web"])
    XCTAssertEqual(report.checkpoints, 2)
    try assertConsistent()
    XCTAssertTrue(same(try contents("web", disks: 1), now))
    XCTAssertEqual(try library.vm(named: "hv").state, .saved, "its memory file is still named")
    XCTAssertTrue(try library.checkpoint(vm: "hv", named: "live").online)
    try library.restore(checkpoint: try library.checkpoint(vm: "web", named: "a").id)
    XCTAssertTrue(same(try contents("web", disks: 1), first))
    host.setMemory("hv", "other")
    try library.restore(checkpoint: try library.checkpoint(vm: "hv", named: "live").id)
    XCTAssertEqual(host.memory("hv"), "hv memory")
    // Written again in the new words.
    let rewritten = try String(contentsOfFile: root + "/vms/web/vm.json", encoding: .utf8)
    XCTAssertFalse(rewritten.contains("\"working\"") || rewritten.contains("\"states\""), rewritten)
    try assertConsistent()
  }
}
