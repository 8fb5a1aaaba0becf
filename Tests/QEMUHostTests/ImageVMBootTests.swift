import DiskServing
import Foundation
import LabKit
import TestSupport
import VHD
import XCTest

@testable import QEMUHost

/// A VM made from the tiny image the way `vm create --image tiny --disk …` makes it (disk 1 a
/// linked clone of the image's root disk, more empty disks, the image's kernel as its boot),
/// booted with its disks served over NBD by vmlab's own server from the VHD chains, as the QEMU
/// host serves them: the guest sees its disks, is named after the VM, keeps what it writes in
/// the clone (never in the template), and powers off when the agent asks.
final class ImageVMBootTests: XCTestCase {
  func testAVMFromTheImageBootsFromItsCloneSeesItsDisksAndShutsDown() throws {
    let image = try TinyImageFixture.image()
    let folder = TemporaryFolder(prefix: "vmlab-imagevm-")
    let root = folder.file("library")
    let library = try Library(
      at: root, hosts: HostRegistry([HostRegistry.defaultName: SimulatedHost()]))
    defer { try? library.close() }
    let templates = ImageTemplates(library: root)
    try FileManager.default.copyItem(atPath: image.folder, toPath: templates.folder(of: "tiny"))

    let setup = try templates.vmSetup(image: "tiny", vm: "web01")
    let vm = try library.createVM(
      name: "web01", from: setup.rootDisk, linked: true, extraDiskSizes: [64 << 20], templateName: setup.templateName,
      additions: true, hardware: Hardware(memory: 256 << 20, boot: setup.boot))
    XCTAssertEqual(try templates.users(of: "tiny", in: library), ["web01"])
    let template = try XCTUnwrap(vm.disks[0].chain.last)
    let templateBytes = try Data(contentsOf: URL(fileURLWithPath: template))
    guard case .kernel(let kernel, let initrd, let commandLine) = vm.hardware.boot else {
      return XCTFail("the VM boots \(vm.hardware.boot)")
    }
    XCTAssertTrue(commandLine.hasSuffix(" vmlab.hostname=web01"), commandLine)

    // Its disks, served as the QEMU host serves them.
    let runtime = folder.file("run")
    try FileManager.default.createDirectory(atPath: runtime, withIntermediateDirectories: true)
    let served = try vm.disks.map { disk in
      try ServedChain(path: disk.path, socketPath: "\(runtime)/disk\(disk.slot).sock", name: "disk\(disk.slot)")
    }
    served.forEach { $0.start() }
    defer { served.forEach { try? $0.stop() } }

    var settings = ScratchGuest.Settings()
    settings.lifetime = 240
    let guest = ScratchGuest(
      runtime: runtime, boot: ["-kernel", kernel, "-initrd", try XCTUnwrap(initrd), "-append", commandLine],
      disks: vm.disks.map { .nbd(socket: "\(runtime)/disk\($0.slot).sock", export: "disk\($0.slot)") },
      settings: settings)
    try guest.start()
    defer { guest.stop() }
    do {
      try guest.agent.waitReady(timeout: 120)
    } catch {
      return XCTFail("\(error)\nconsole:\n\(guest.consoleTail())\nqemu: \(guest.emulatorErrors())")
    }
    let agent = guest.agent
    XCTAssertEqual(try agent.exec(path: "hostname", timeout: 30).stdoutText, "web01\n")
    let disk2Sectors = try agent.exec(path: "cat", arguments: ["/sys/block/vdb/size"], timeout: 30).stdoutText
    XCTAssertEqual(UInt64(disk2Sectors.trimmingCharacters(in: .whitespacesAndNewlines)), served[1].size / 512)
    let wrote = try agent.exec(
      path: "/bin/sh",
      arguments: [
        "-c",
        "echo hello > /root/a.txt && printf vdb-data | dd of=/dev/vdb bs=512 seek=8 conv=fsync 2>/dev/null && sync",
      ],
      timeout: 60)
    XCTAssertEqual(wrote.status, 0, wrote.stderrText)

    try agent.shutdown()
    XCTAssertTrue(guest.waitForExit(timeout: 60), "the guest powered off\n\(guest.consoleTail())")
    served.forEach { try? $0.stop() }

    // What the guest wrote is in the VM's own disks, read back through vmlab's chains.
    let data = try DiskChain.open(vm.disks[1].path)
    defer { data.close() }
    XCTAssertEqual(try data.read(at: 8 * 512, count: 8), Array("vdb-data".utf8))
    let clone = try DiskChain.open(vm.disks[0].path)
    defer { clone.close() }
    XCTAssertEqual(clone.leaf.type, .differencing)
    XCTAssertGreaterThan(try DiskInfo(chain: clone).allocatedBytes, 0, "the guest's writes are in the clone")
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: template)), templateBytes, "the template is unchanged")
    XCTAssertEqual(try library.check(), [])
  }
}
