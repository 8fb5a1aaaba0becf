import Foundation
import LabKit
import TestSupport
import VHD
import XCTest

@testable import QEMUHost

/// The QEMU host through its driver: a supervisor (the built vmlab binary) per VM, qemu under TCG
/// with two disks it does not boot from (it sits in SeaBIOS), real NBD exports of VHD chains, and
/// qemu's own block layer writing into them (`qemu-io` through the human monitor).
final class QEMUHostDriverTests: XCTestCase {
  private var folder: TemporaryFolder!
  private var host: QEMUHost!
  private var vm: HostedVM!

  override func setUpWithError() throws {
    _ = try PlainQEMU.emulator()
    folder = TemporaryFolder()
    let root = folder.path
    host = QEMUHost(supervisor: try Self.vmlabBinary(), vmFolder: { root + "/vms/" + $0 })
    host.startTimeLimit = 120
    let vmFolder = root + "/vms/web01"
    try FileManager.default.createDirectory(atPath: vmFolder, withIntermediateDirectories: true)
    var disks: [String] = []
    for number in 1...2 {
      let path = "\(vmFolder)/web01-disk\(number).vhd"
      try VirtualDisk.create(at: path, size: 8 << 20).close()
      disks.append(path)
    }
    vm = HostedVM(
      name: "web01", folder: vmFolder, disks: disks, hardware: Hardware(memory: 64 << 20, accelerator: .tcg))
  }

  override func tearDown() {
    // Whatever the test did, no supervisor or qemu outlives it.
    if let host, let status = try? host.status(vm: "web01") {
      kill(status.supervisorPid, SIGKILL)
      kill(status.qemuPid, SIGKILL)
    }
    host = nil
    folder = nil
  }

  /// The vmlab executable beside the test bundle (the supervisor is `vmlab supervise`).
  static func vmlabBinary() throws -> String {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [bundle, bundle.deletingLastPathComponent()] + Bundle.allBundles.map(\.bundleURL) {
      for folder in [candidate, candidate.deletingLastPathComponent()] {
        let path = folder.appendingPathComponent("vmlab").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
      }
    }
    throw XCTSkip("the vmlab binary was not built beside the tests (run swift build first)")
  }

  /// Whether the chain whose leaf is `path` reads `count` bytes of `value` at `offset`.
  private func holds(_ path: String, _ value: UInt8, at offset: UInt64, count: Int = 65536) throws -> Bool {
    try bytes(of: path, at: offset, count: count).allSatisfy { $0 == value }
  }

  private func bytes(of path: String, at offset: UInt64, count: Int) throws -> [UInt8] {
    let chain = try DiskChain.open(path)
    defer { chain.close() }
    return try chain.read(at: offset, count: count)
  }

  /// Writes through qemu's own block layer into the VM's disk `number`.
  private func qemuWrites(disk number: Int, pattern: UInt8, at offset: Int, length: Int = 65536) throws {
    // The device's own block backend (the inner virtio device holds it, not the PCI proxy); qemu-io
    // prints to qemu's standard output, not the monitor, so the bytes are checked on disk instead.
    let device = "/machine/peripheral/vd\(number)/virtio-backend"
    _ = try host.monitor(vm: "web01", "qemu-io -d \(device) \"write -P \(pattern) \(offset) \(length)\"")
    _ = try host.monitor(vm: "web01", "qemu-io -d \(device) \"flush\"")
  }

  func testAStartedVMRunsOnItsExportsAndTurnsOff() throws {
    try host.start(vm)
    XCTAssertEqual(try host.powerState(of: "web01"), .running)
    let status = try host.status(vm: "web01")
    XCTAssertEqual(status.state, "running")
    XCTAssertEqual(status.leaves, vm.disks)
    XCTAssertEqual(status.accelerator, "tcg")
    XCTAssertEqual(status.attached.count, 2)
    XCTAssertTrue(status.attached[0].contains("disk1.sock"), "\(status.attached)")
    try qemuWrites(disk: 2, pattern: 0x5a, at: 1 << 20)
    XCTAssertTrue(try holds(vm.disks[1], 0x5a, at: 1 << 20))
    XCTAssertThrowsError(try host.start(vm)) { XCTAssertTrue("\($0)".contains("already runs"), "\($0)") }

    try host.turnOff(vm: "web01")
    XCTAssertEqual(try host.powerState(of: "web01"), .off)
    XCTAssertEqual(host.lastStop(vm: "web01"), "turned off by vmlab")
    XCTAssertFalse(isRunning(status.qemuPid), "qemu is gone")
    XCTAssertFalse(FileManager.default.fileExists(atPath: vm.folder + "/control.sock"))
  }

  func testAKilledSupervisorTakesItsQemuWithIt() throws {
    try host.start(vm)
    let status = try host.status(vm: "web01")
    kill(status.supervisorPid, SIGKILL)
    XCTAssertTrue(waitUntil(timeout: 20) { !isRunning(status.qemuPid) }, "qemu dies with its supervisor")
    XCTAssertEqual(try host.powerState(of: "web01"), .off)
    XCTAssertTrue(host.lastStop(vm: "web01")?.contains("was killed") ?? false, "\(host.lastStop(vm: "web01") ?? "")")
  }

  func testAKilledQemuEndsItsSupervisorWhichSaysWhy() throws {
    try host.start(vm)
    try qemuWrites(disk: 1, pattern: 0x11, at: 0)
    let status = try host.status(vm: "web01")
    kill(status.qemuPid, SIGKILL)
    XCTAssertTrue(waitUntil(timeout: 20) { (try? self.host.powerState(of: "web01")) == .off })
    XCTAssertTrue(waitUntil(timeout: 20) { self.host.lastStop(vm: "web01") == "qemu was killed by signal 9" })
    XCTAssertTrue(try holds(vm.disks[0], 0x11, at: 0), "what qemu flushed is on disk")
  }

  func testAVMStartFailureNamesTheReason() throws {
    vm.disks[1] = vm.folder + "/missing.vhd"
    XCTAssertThrowsError(try host.start(vm)) {
      XCTAssertTrue("\($0)".contains("did not start") && "\($0)".contains("missing.vhd"), "\($0)")
    }
    XCTAssertEqual(try host.powerState(of: "web01"), .off)
  }

  func testPauseSwitchSaveContinueWritesTheNewLeavesOnly() throws {
    try host.start(vm)
    try qemuWrites(disk: 1, pattern: 0x01, at: 0)
    try host.pause(vm: "web01")
    XCTAssertEqual(try host.status(vm: "web01").state, "paused")
    XCTAssertEqual(try host.powerState(of: "web01"), .paused)
    let newLeaves = try vm.disks.enumerated().map { index, parent in
      let path = vm.folder + "/web01-disk\(index + 1)_cp.vhd"
      try VirtualDisk.createDifferencing(at: path, parent: parent).close()
      return path
    }
    try host.switchDisks(vm: "web01", to: newLeaves)
    let state = vm.folder + "/cp.vsv"
    try host.saveMemory(vm: "web01", to: state)
    XCTAssertFalse(try host.status(vm: "web01").state == "running", "it stays paused while its memory is saved")
    try host.continueRunning(vm: "web01")
    let status = try host.status(vm: "web01")
    XCTAssertEqual(status.state, "running")
    XCTAssertEqual(status.leaves, newLeaves)
    try qemuWrites(disk: 1, pattern: 0x02, at: 0)
    XCTAssertEqual(try bytes(of: newLeaves[0], at: 0, count: 4), [2, 2, 2, 2])
    XCTAssertEqual(try bytes(of: vm.disks[0], at: 0, count: 4), [1, 1, 1, 1], "the frozen disk keeps the checkpoint")

    // Back to the checkpoint with its memory: a new qemu on the new leaves from the state file.
    try host.turnOff(vm: "web01")
    var resumed = vm!
    resumed.disks = newLeaves
    try host.resume(resumed, from: state)
    XCTAssertEqual(try host.status(vm: "web01").state, "running")
    XCTAssertEqual(try host.status(vm: "web01").leaves, newLeaves)
  }

  func testASwitchToADiskOfAnotherSizeIsRefusedAndTheVMGoesOn() throws {
    try host.start(vm)
    try host.pause(vm: "web01")
    let other = vm.folder + "/other.vhd"
    try VirtualDisk.create(at: other, size: 4 << 20).close()
    XCTAssertThrowsError(try host.switchDisks(vm: "web01", to: [vm.disks[0], other])) {
      XCTAssertTrue("\($0)".contains("must keep the size"), "\($0)")
    }
    XCTAssertEqual(try host.status(vm: "web01").leaves, vm.disks, "no disk was switched")
    XCTAssertThrowsError(try host.switchDisks(vm: "web01", to: [vm.disks[0]])) {
      XCTAssertTrue("\($0)".contains("one leaf per disk"), "\($0)")
    }
    try host.continueRunning(vm: "web01")
    try qemuWrites(disk: 1, pattern: 0x07, at: 0)
  }

  func testSaveStateStopsTheVMAndResumeBringsItBack() throws {
    try host.start(vm)
    let state = vm.folder + "/saved.vsv"
    try host.saveMemoryAndStop(vm: "web01", to: state)
    XCTAssertEqual(try host.powerState(of: "web01"), .off)
    XCTAssertEqual(host.lastStop(vm: "web01"), "saved by vmlab")
    XCTAssertGreaterThan((try FileManager.default.attributesOfItem(atPath: state)[.size] as! UInt64), 100_000)
    try host.resume(vm, from: state)
    XCTAssertEqual(try host.status(vm: "web01").state, "running")
  }

  func testSaveMemoryOfARunningVMIsRefused() throws {
    try host.start(vm)
    XCTAssertThrowsError(try host.saveMemory(vm: "web01", to: vm.folder + "/x.vsv")) {
      XCTAssertTrue("\($0)".contains("must be paused"), "\($0)")
    }
    XCTAssertEqual(try host.status(vm: "web01").state, "running")
  }

  func testCallsOnAVMThatDoesNotRunSayItIsOff() throws {
    XCTAssertEqual(try host.powerState(of: "web01"), .off)
    XCTAssertNoThrow(try host.turnOff(vm: "web01"))
    XCTAssertThrowsError(try host.pause(vm: "web01")) {
      XCTAssertTrue("\($0)".contains("cannot connect"), "\($0)")
    }
  }

  func testARuntimeFolderForALongPathIsShortAndPointedTo() throws {
    let long = folder.path + "/" + String(repeating: "a", count: 120)
    let runtime = QEMURuntimeFolder(vmFolder: long)
    XCTAssertFalse(runtime.usesVMFolder)
    XCTAssertLessThanOrEqual(runtime.controlSocket.utf8.count, 107)
    XCTAssertEqual(runtime, QEMURuntimeFolder(vmFolder: long), "every process finds the same folder")
    try FileManager.default.createDirectory(atPath: long, withIntermediateDirectories: true)
    try runtime.prepare()
    XCTAssertEqual(
      try String(contentsOfFile: long + "/runtime-folder", encoding: .utf8), runtime.path + "\n")
    runtime.removeSockets(disks: 0)
    XCTAssertFalse(FileManager.default.fileExists(atPath: runtime.path))
  }
}

/// Whether a process runs (a zombie waiting for its new parent to reap it does not).
func isRunning(_ pid: Int32) -> Bool {
  guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let end = stat.lastIndex(of: ")")
  else { return false }
  return !stat[stat.index(end, offsetBy: 2)...].hasPrefix("Z")
}

/// Polls `condition` until it holds or `timeout` passed; true when it held.
func waitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
  let deadline = Date().addingTimeInterval(timeout)
  while Date() < deadline {
    if condition() { return true }
    usleep(20_000)
  }
  return condition()
}
