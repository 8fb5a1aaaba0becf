import Foundation
import LabKit
import TestSupport
import XCTest

@testable import QEMUHost

/// The issue's own story on a real guest: a VM from the tiny image on the QEMU host, booted by its
/// supervisor, writes a file; an online checkpoint (frozen through the agent, paused, memory saved,
/// switched, continued) keeps that moment; the guest deletes the file; a restore with memory brings
/// the guest back running from the saved moment, and the file is there again; then it shuts down
/// through its agent.
final class RealGuestCheckpointTests: XCTestCase {
  private var folder: TemporaryFolder!
  private var host: QEMUHost!

  override func tearDown() {
    // The VM is turned off whatever happened; a supervisor that does not answer is killed.
    if let host, let status = try? host.status(vm: "web01") {
      try? host.turnOff(vm: "web01")
      kill(status.supervisorPid, SIGKILL)
      kill(status.qemuPid, SIGKILL)
    }
    host = nil
    folder = nil
  }

  private func run(_ line: String, in vm: HostedVM) throws -> GuestCommandResult {
    try host.run(.shell(line, timeout: 60), in: vm)
  }

  func testOnlineCheckpointOfABootedGuestThenRestoreWithItsMemory() throws {
    let image = try TinyImageFixture.image()
    folder = TemporaryFolder(prefix: "vmlab-realguest-")
    let root = folder.file("library")
    host = QEMUHost(supervisor: try QEMUHostDriverTests.vmlabBinary(), vmFolder: { root + "/vms/" + $0 })
    host.startTimeLimit = 120
    let library = try Library(at: root, hosts: HostRegistry(["simulated": SimulatedHost(), "qemu": host]))
    defer { try? library.close() }
    let templates = ImageTemplates(library: root)
    try FileManager.default.createDirectory(
      atPath: (templates.folder(of: "tiny") as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: image.folder, toPath: templates.folder(of: "tiny"))
    let setup = try templates.vmSetup(image: "tiny", vm: "web01")
    try library.createVM(
      name: "web01", from: setup.rootDisk, linked: true, extraDiskSizes: [16 << 20], templateName: setup.templateName,
      additions: true, hostKind: .hypervisor, host: "qemu",
      hardware: Hardware(memory: 256 << 20, boot: setup.boot, accelerator: .tcg))

    try library.start(vm: "web01")
    let vm = HostedVM(name: "web01", folder: root + "/vms/web01", disks: [], hardware: Hardware())
    do {
      try host.waitUntilReady(vm, timeout: 180)
    } catch {
      return XCTFail("\(error)\nconsole:\n\(host.console(vm: "web01", lines: 20))")
    }
    XCTAssertEqual(try run("echo hello > /root/a.txt && sync", in: vm).status, 0)

    let taken = try library.checkpoint(vm: "web01", name: "clean")
    XCTAssertEqual(taken.action, .online)
    XCTAssertTrue(taken.checkpoint.online, "its memory is saved with it")
    let pause = try XCTUnwrap(taken.pauseSeconds)
    print("real guest: online checkpoint paused \(String(format: "%.1f", pause * 1000)) ms")
    XCTAssertEqual(try host.status(vm: "web01").leaves, try library.vm(named: "web01").disks.map(\.path))
    // It runs on, thawed: it can write and delete.
    XCTAssertEqual(try run("rm /root/a.txt && echo later > /root/b.txt && sync", in: vm).status, 0)
    XCTAssertNotEqual(try run("cat /root/a.txt", in: vm).status, 0)

    try library.restore(checkpoint: taken.checkpoint.id)
    XCTAssertEqual(try library.vm(named: "web01").state, .running)
    try host.waitUntilReady(vm, timeout: 60)
    let back = try run("cat /root/a.txt; test -e /root/b.txt && echo b-exists || echo no-b", in: vm)
    XCTAssertEqual(String(decoding: back.standardOutput, as: UTF8.self), "hello\nno-b\n")
    XCTAssertEqual(try host.status(vm: "web01").state, "running")
    XCTAssertEqual(try host.status(vm: "web01").leaves, try library.vm(named: "web01").disks.map(\.path))
    XCTAssertEqual(try library.check(), [])

    // A graceful shutdown through the agent: the guest powers off, its supervisor says so.
    XCTAssertEqual(try library.shutDown(vm: "web01").state, .stopped)
    XCTAssertEqual(try host.powerState(of: "web01"), .off)
    XCTAssertEqual(host.lastStop(vm: "web01"), "shut down by its guest")
  }
}
