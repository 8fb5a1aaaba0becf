import Foundation
import LabKit
import TestSupport
import XCTest

/// `vm create`'s host and hardware options, what `vm show` and `vm list` say of them, and the
/// mistakes they refuse (nothing made).
final class VMHardwareCommandTests: XCTestCase {
  private var folder: TemporaryFolder!
  private var library: [String] { ["--library", folder.file("library")] }

  override func setUp() {
    folder = TemporaryFolder()
  }

  @discardableResult
  private func run(_ arguments: [String], expect status: Int32 = 0, file: StaticString = #filePath, line: UInt = #line)
    throws -> CommandResult
  {
    let result = try vmlab(arguments + library, in: folder.path)
    XCTAssertFalse(result.signaled, "vmlab crashed: \(result.error)", file: file, line: line)
    XCTAssertEqual(result.status, status, "\(arguments): \(result.output) \(result.error)", file: file, line: line)
    return result
  }

  func testHardwareOptionsAreStoredAndShown() throws {
    let kernel = folder.file("vmlinuz")
    let initrd = folder.file("initrd.img")
    FileManager.default.createFile(atPath: kernel, contents: Data("kernel".utf8))
    FileManager.default.createFile(atPath: initrd, contents: Data("initrd".utf8))
    var result = try run([
      "vm", "create", "tiny", "--disk", "8M", "--memory", "256M", "--cpus", "2", "--kernel", "vmlinuz", "--initrd",
      "initrd.img", "--append", "console=ttyS0", "--accelerator", "tcg", "--network", "none",
    ])
    XCTAssertTrue(
      result.output.hasPrefix("created VM tiny with 1 disk (virtual-server, simulated host)\n"), result.output)
    result = try run(["vm", "show", "tiny"])
    XCTAssertTrue(
      result.output.contains(
        "hardware: 256 MiB memory, 2 CPUs, boots kernel \(kernel) with initrd \(initrd) (console=ttyS0), network none, accelerator tcg"
      ), result.output)
    XCTAssertTrue(result.output.contains("on the simulated host"), result.output)
    XCTAssertTrue(
      result.output.contains("host can: online checkpoint, saved state, guest shutdown, file-system freeze"),
      result.output)

    try run(["vm", "create", "plain", "--disk", "8M"])
    result = try run(["vm", "show", "plain"])
    XCTAssertTrue(
      result.output.contains("hardware: 1 GiB memory, 1 CPU, boots from disk 1, network none, accelerator auto"),
      result.output)
    let shown = try parseJSON(try run(["vm", "show", "tiny", "--json"]).output)
    let hardware = try XCTUnwrap(shown["hardware"] as? [String: Any])
    XCTAssertEqual(hardware["memory"] as? Int, 256 << 20)
    XCTAssertEqual(hardware["cpus"] as? Int, 2)
    XCTAssertEqual(shown["host"] as? String, "simulated")
    result = try run(["vm", "list"])
    XCTAssertTrue(result.output.contains("simulated (virtual-server)"), result.output)

    // library repair keeps them (they are in vm.json).
    try FileManager.default.removeItem(atPath: folder.file("library") + "/catalog.sqlite")
    try run(["library", "repair"])
    XCTAssertTrue(try run(["vm", "show", "tiny"]).output.contains("256 MiB memory, 2 CPUs, boots kernel"))
  }

  func testAQEMUVMIsCreatedOnTheQEMUHost() throws {
    try run(["vm", "create", "q", "--disk", "8M", "--host", "qemu", "--accelerator", "tcg"])
    let shown = try parseJSON(try run(["vm", "show", "q", "--json"]).output)
    XCTAssertEqual(shown["host"] as? String, "qemu")
    XCTAssertEqual(shown["runState"] as? String, "stopped")
    XCTAssertEqual(shown["accelerator"] as? String, "tcg")
    XCTAssertTrue(try run(["vm", "show", "q"]).output.contains("pause and switch disks"))
  }

  func testWrongHardwareIsRefusedAndNothingIsMade() throws {
    let usage: [([String], String)] = [
      (["--host", "vmware"], "--host"),
      (["--initrd", "x"], "--initrd needs --kernel PATH"),
      (["--append", "quiet"], "--append needs --kernel PATH"),
      (["--accelerator", "hvf"], "--accelerator"),
      (["--network", "bridge"], "--network"),
      (["--cpus", "two"], "--cpus"),
      (["--memory", "lots"], "--memory"),
    ]
    for (options, expected) in usage {
      let result = try run(["vm", "create", "bad", "--disk", "8M"] + options, expect: 2)
      XCTAssertTrue(result.error.contains(expected), "\(options): \(result.error)")
    }
    let refused: [([String], String)] = [
      (["--cpus", "0"], "VM 'bad' cannot have 0 CPUs: give 1 to 256"),
      (["--memory", "1M"], "VM 'bad' cannot have 1048576 bytes of memory: give a whole number of MiB from 16M to 1T"),
      (["--kernel", "missing"], "VM 'bad': the kernel \(folder.file("missing")) is not a file"),
    ]
    for (options, expected) in refused {
      let result = try run(["vm", "create", "bad", "--disk", "8M"] + options, expect: 1)
      XCTAssertTrue(result.error.contains(expected), "\(options): \(result.error)")
    }
    XCTAssertTrue(try run(["vm", "list"]).output.hasPrefix("no VMs in"))
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("library") + "/vms/bad"))
  }
}

/// A host whose VMs' processes died: it reports every VM off.
private final class DeadVMHost: ForwardingHost, @unchecked Sendable {
  init() { super.init(SimulatedHost()) }
  override func powerState(of vm: String) throws -> HostPowerState { .off }
  override func freezeFileSystems(vm: String) throws {}
  override func thawFileSystems(vm: String) throws {}
}

final class StoppedOutsideCommandTests: XCTestCase {
  func testVMListSaysAVMWasStoppedOutsideVMLab() throws {
    let folder = TemporaryFolder()
    let path = folder.file("library")
    var result = try vmlab(["vm", "create", "web", "--disk", "8M", "--library", path])
    try vmlab(["vm", "create", "db", "--disk", "8M", "--library", path])
    try vmlab(["vm", "start", "web", "--library", path])
    try vmlab(["vm", "start", "db", "--library", path])
    // Another process (a host whose VM processes died) opens the library: the catalog follows it.
    let dead = HostRegistry(["simulated": DeadVMHost()])
    try Library(at: path, hosts: dead).close()
    result = try vmlab(["vm", "list", "--library", path])
    XCTAssertEqual(result.status, 0, result.error)
    let web = try XCTUnwrap(result.output.split(separator: "\n").first { $0.hasPrefix("web") })
    XCTAssertTrue(web.contains("stopped outside vmlab at "), String(web))
    result = try vmlab(["vm", "show", "web", "--library", path])
    XCTAssertTrue(result.output.contains("VM web: stopped outside vmlab at "), result.output)
    // Started again, it is vmlab's to say.
    try vmlab(["vm", "start", "web", "--library", path])
    result = try vmlab(["vm", "list", "--library", path])
    let again = try XCTUnwrap(result.output.split(separator: "\n").first { $0.hasPrefix("web") })
    XCTAssertFalse(again.contains("outside"), String(again))
    XCTAssertTrue(again.contains("running"), String(again))
  }
}
