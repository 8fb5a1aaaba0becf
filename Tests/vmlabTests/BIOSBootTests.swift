import Foundation
import LabKit
import QEMUHost
import TestSupport
import XCTest

/// The other way a VM boots: from its first disk through the firmware, like any PC. A small FAT
/// disk made bootable by syslinux (it installs onto an unmounted FAT image) holds the tiny image's
/// kernel and initrd; `vmlab disk import` makes it a VHD, and qemu's SeaBIOS boots it, with the
/// image's root disk second. The image is built once with `vmlab image build tiny --rebuild`, as a
/// user would (over an older image, so the replacement is tested too).
final class BIOSBootTests: XCTestCase {
  private static let library = NSTemporaryDirectory() + "vmlab-tests-bios-library-\(getpid())"

  /// `vmlab image build tiny --rebuild` once per test process, with its output, over an older
  /// image that no VM uses (a folder with a stale file the new image does not have).
  private static let build: Result<CommandResult, Error> = {
    atexit { try? FileManager.default.removeItem(atPath: BIOSBootTests.libraryPath) }
    return Result {
      let old = "\(library)/templates/tiny"
      try FileManager.default.createDirectory(atPath: old, withIntermediateDirectories: true)
      try "stale".write(toFile: "\(old)/stale-file", atomically: true, encoding: .utf8)
      return try vmlab(["image", "build", "tiny", "--rebuild", "--library", library])
    }
  }()

  fileprivate static var libraryPath: String { library }

  override func setUpWithError() throws {
    for (program, package) in [
      ("/usr/bin/qemu-system-x86_64", "qemu-system-x86"), ("/usr/bin/syslinux", "syslinux"),
      ("/usr/bin/mcopy", "mtools"), ("/usr/sbin/mkfs.fat", "dosfstools"),
    ] where !FileManager.default.isExecutableFile(atPath: program) {
      throw XCTSkip("\(program) is not installed (Scripts/bootstrap installs \(package))")
    }
  }

  private func run(_ program: String, _ arguments: [String], in folder: String) throws {
    let result = try runProgram(program, arguments, in: folder)
    XCTAssertEqual(result.status, 0, "\(program) \(arguments): \(result.error)")
  }

  func testImageBuildFromTheCommandLineReportsItsProgress() throws {
    let result = try Self.build.get()
    XCTAssertEqual(result.status, 0, result.error)
    let lines = result.output.split(separator: "\n").map(String.init)
    XCTAssertEqual(lines.first, "image build: resolving the kernel: linux-image-amd64")
    XCTAssertTrue(lines.contains { $0.hasPrefix("image build: making the initramfs (") }, result.output)
    XCTAssertTrue(lines.last?.hasPrefix("image 'tiny' built in ") == true, result.output)
    let listed = try vmlab(["image", "list", "--library", Self.library])
    XCTAssertTrue(listed.output.contains("tiny "), listed.output)
    // --rebuild replaced the old image whole, and left no work folder behind.
    XCTAssertEqual(
      Set(try FileManager.default.contentsOfDirectory(atPath: "\(Self.library)/templates/tiny")),
      ["vmlinuz", "initrd.img", "root.vhd", "image.json"])
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(Self.library)/templates"), ["tiny"])
  }

  func testASyslinuxDiskImportedWithVmlabBootsThroughTheBIOSToTheAgent() throws {
    let build = try Self.build.get()
    XCTAssertEqual(build.status, 0, build.error)
    let templates = ImageTemplates(library: Self.library)
    let image = try templates.manifest(of: "tiny")
    let imageFolder = templates.folder(of: "tiny")
    let folder = TemporaryFolder(prefix: "vmlab-bios-")

    // A 32 MiB FAT disk with no partition table, syslinux's boot sector and its configuration.
    try run("/usr/sbin/mkfs.fat", ["-C", "boot.img", "32768"], in: folder.path)
    try run("/usr/bin/syslinux", ["--install", "boot.img"], in: folder.path)
    let commandLine = image.commandLine.replacingOccurrences(of: "root=/dev/vda", with: "root=/dev/vdb")
    XCTAssertNotEqual(commandLine, image.commandLine)
    try """
    SERIAL 0 115200
    DEFAULT tiny
    PROMPT 0
    TIMEOUT 0
    LABEL tiny
      KERNEL vmlinuz
      INITRD initrd.img
      APPEND \(commandLine) vmlab.hostname=bios

    """.write(toFile: folder.file("syslinux.cfg"), atomically: true, encoding: .utf8)
    try run(
      "/usr/bin/mcopy",
      ["-i", "boot.img", "\(imageFolder)/\(image.kernel)", "\(imageFolder)/\(image.initrd)", "syslinux.cfg", "::/"],
      in: folder.path)
    let imported = try vmlab(["disk", "import", "boot.img", "boot.vhd"], in: folder.path)
    XCTAssertEqual(imported.status, 0, imported.error)

    // No -kernel: SeaBIOS boots disk 1 (the VHD, read by qemu's vpc driver), the root disk is disk 2.
    var settings = ScratchGuest.Settings()
    settings.lifetime = 240
    let guest = ScratchGuest(
      runtime: folder.file("run"),
      disks: [
        .throwAway(folder.file("boot.vhd"), format: "vpc"),
        .throwAway("\(imageFolder)/\(image.rootDisk)", format: "vpc"),
      ], settings: settings)
    try guest.start()
    defer { guest.stop() }
    do {
      try guest.agent.waitReady(timeout: 150)
    } catch {
      return XCTFail("\(error)\nconsole:\n\(guest.consoleTail())\nqemu: \(guest.emulatorErrors())")
    }
    let console = guest.console()
    XCTAssertTrue(console.contains("SYSLINUX "), "the firmware ran syslinux from the disk")
    XCTAssertTrue(console.contains("vmlab-tiny: ready (host bios)"), console)
    let cmdline = try guest.agent.exec(path: "cat", arguments: ["/proc/cmdline"], timeout: 30).stdoutText
    XCTAssertTrue(cmdline.contains("BOOT_IMAGE=vmlinuz"), cmdline)
    XCTAssertTrue(cmdline.contains("root=/dev/vdb"), cmdline)
    let mounts = try guest.agent.exec(path: "cat", arguments: ["/proc/mounts"], timeout: 30).stdoutText
    XCTAssertTrue(mounts.contains("/dev/vdb / ext4 rw"), mounts)
  }
}
