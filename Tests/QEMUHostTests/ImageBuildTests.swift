import Foundation
import LabKit
import TestSupport
import VHD
import XCTest

@testable import QEMUHost

/// The tiny image as `vmlab image build` leaves it, and the build's refusals and errors.
final class ImageBuildTests: XCTestCase {
  func testTheTemplateHoldsTheFilesImageJsonNamesFromTheCachedPackages() throws {
    let image = try TinyImageFixture.image()
    var manifest = try ImageManifest.read(from: image.folder)
    XCTAssertEqual(manifest.built.timeIntervalSince(image.manifest.built), 0, accuracy: 1, "kept to the second")
    manifest.built = image.manifest.built
    XCTAssertEqual(manifest, image.manifest)
    for file in [manifest.kernel, manifest.initrd, manifest.rootDisk, ImageManifest.fileName] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: "\(image.folder)/\(file)"), file)
    }
    XCTAssertEqual(
      Set(try FileManager.default.contentsOfDirectory(atPath: image.folder)),
      ["vmlinuz", "initrd.img", "root.vhd", "image.json"], "no work files are left")
    // Each package and version is what the cached .deb says of itself.
    let roles = Dictionary(grouping: manifest.packages, by: \.role)
    XCTAssertEqual(roles["kernel"]?.count, 1)
    XCTAssertTrue(roles["kernel"]?.first?.name.hasPrefix("linux-image-") == true)
    XCTAssertEqual(roles["busybox"]?.map(\.name), ["busybox-static"])
    XCTAssertEqual(roles["agent"]?.map(\.name), ["qemu-guest-agent"])
    XCTAssertTrue(roles["library of qemu-ga"]?.contains { $0.name == "libc6" } == true)
    XCTAssertTrue(roles["library of qemu-ga"]?.contains { $0.name == "libglib2.0-0" } == true)
    XCTAssertFalse(manifest.packages.contains { $0.name == "perl-base" || $0.name == "init-system-helpers" })
    let cache = DebianPackages.defaultCache()
    let debs = try FileManager.default.contentsOfDirectory(atPath: cache).filter { $0.hasSuffix(".deb") }
    for package in manifest.packages {
      let deb = try XCTUnwrap(debs.first { $0.hasPrefix(package.name + "_") }, package.name)
      let fields = try BuildTool.dpkgDeb.run(["-f", "\(cache)/\(deb)", "Package", "Version"]).text
      XCTAssertTrue(fields.contains("Version: \(package.version)\n"), "\(package.name): \(fields)")
    }
    XCTAssertTrue(manifest.kernelVersion.hasSuffix("-amd64"))
    XCTAssertTrue(manifest.commandLine.contains("root=/dev/vda"))
    XCTAssertTrue(manifest.commandLine.contains("console=ttyS0"))
  }

  func testTheRootDiskIsASoundDynamicVHDHoldingAnExt4FileSystem() throws {
    let image = try TinyImageFixture.image()
    let path = "\(image.folder)/root.vhd"
    let chain = try DiskChain.open(path)
    defer { chain.close() }
    let disk = chain.leaf
    XCTAssertEqual(disk.type, .dynamic)
    XCTAssertGreaterThanOrEqual(disk.size, 256 << 20)
    let superblock = try chain.read(at: 1024, count: 1024)
    XCTAssertEqual(superblock[56], 0x53, "ext4 magic")
    XCTAssertEqual(superblock[57], 0xEF, "ext4 magic")
    XCTAssertEqual(String(decoding: superblock[120..<129], as: UTF8.self), "tiny-root")
    // qemu reads the same file system (its vpc driver, the CHS geometry agrees with the size).
    let info = try runProgram("/usr/bin/qemu-img", ["info", "-f", "vpc", "--output=json", path])
    XCTAssertEqual(info.status, 0, info.error)
    XCTAssertTrue(info.output.contains("\"virtual-size\": \(disk.size)"), info.output)
  }

  func testTheInitramfsLoadsTheModulesInTheOrderTheKernelsTablesGive() throws {
    let image = try TinyImageFixture.image()
    let folder = TemporaryFolder()
    let cpio = folder.file("initrd.cpio")
    try BuildTool.gzip.run(["-dc", "\(image.folder)/initrd.img"], outputFile: cpio)
    let listing = try BuildTool.cpio.run(["-t", "--quiet", "-F", cpio]).text.split(separator: "\n").map(String.init)
    for entry in ["init", "bin/busybox", "lib/modules/load-order", "lib/modules/virtio_ring.ko", "lib/modules/ext4.ko"]
    {
      XCTAssertTrue(listing.contains(entry), "\(entry) in \(listing)")
    }
    try BuildTool.cpio.run(["-i", "--quiet", "-d", "-F", cpio, "lib/modules/load-order"], in: folder.path)
    let order = try String(contentsOfFile: folder.file("lib/modules/load-order"), encoding: .utf8)
      .split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
    let names = order.map { $0[1] }
    func position(_ name: String) throws -> Int { try XCTUnwrap(names.firstIndex(of: name), name) }
    XCTAssertLessThan(try position("virtio_ring"), try position("virtio"))
    XCTAssertLessThan(try position("virtio"), try position("virtio_pci"))
    XCTAssertLessThan(try position("virtio"), try position("virtio_blk"))
    XCTAssertLessThan(try position("jbd2"), try position("ext4"))
    XCTAssertLessThan(try position("crc32c_generic"), try position("ext4"))
    XCTAssertEqual(order.first { $0[1] == "crc32c_generic" }?[0], "?", "a soft dependency may fail to load")
    XCTAssertEqual(order.first { $0[1] == "ext4" }?[0], "!")
    XCTAssertEqual(names, image.manifest.modules)
  }

  func testASecondBuildSaysTheImageExistsAndDownloadsNothing() throws {
    let library = TemporaryFolder()
    let templates = ImageTemplates(library: library.path)
    try FileManager.default.createDirectory(atPath: templates.folder(of: "tiny"), withIntermediateDirectories: true)
    let cache = library.file("cache")
    var lines: [String] = []
    let builder = TinyImageBuilder(templates: templates, cache: cache) { lines.append($0) }
    XCTAssertThrowsError(try builder.build()) {
      XCTAssertEqual(($0 as? LabKitError)?.kind, .alreadyExists)
      XCTAssertTrue("\($0)".contains("image 'tiny' is already built in \(templates.folder(of: "tiny"))"), "\($0)")
      XCTAssertTrue("\($0)".contains("--rebuild"), "\($0)")
    }
    XCTAssertEqual(lines, [])
    XCTAssertFalse(FileManager.default.fileExists(atPath: cache))
  }

  func testNoWayToTheMirrorIsAClearErrorAndLeavesNoHalfImage() throws {
    let library = TemporaryFolder()
    let templates = ImageTemplates(library: library.path)
    var builder = TinyImageBuilder(templates: templates, cache: library.file("cache"))
    // A proxy nobody listens on: apt's index is local, the download fails as without a network.
    builder.aptOptions = ["Acquire::http::Proxy=http://127.0.0.1:9", "Acquire::Retries=0"]
    XCTAssertThrowsError(try builder.build()) {
      XCTAssertTrue("\($0)".contains("cannot download Debian package 'linux-image-"), "\($0)")
      XCTAssertTrue("\($0)".contains("from the Debian mirror"), "\($0)")
      XCTAssertTrue("\($0)".contains("check the network"), "\($0)")
    }
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: library.file("templates")), [])
    XCTAssertEqual(
      try FileManager.default.contentsOfDirectory(atPath: library.file("cache")), [], "no partial download is kept")
  }

  func testAPackageAptDoesNotKnowIsNamed() throws {
    let packages = DebianPackages(cache: TemporaryFolder().path)
    XCTAssertThrowsError(try packages.fetch("vmlab-no-such-package")) {
      XCTAssertEqual(($0 as? LabKitError)?.kind, .notFound)
      XCTAssertTrue("\($0)".contains("Debian package 'vmlab-no-such-package' is not in apt's index"), "\($0)")
      XCTAssertTrue("\($0)".contains("apt-get update"), "\($0)")
    }
  }

  func testAMissingBuildProgramNamesItsPackage() {
    XCTAssertThrowsError(try BuildTool(name: "vmlab-no-such-mke2fs", package: "e2fsprogs").path()) {
      XCTAssertTrue("\($0)".contains("vmlab-no-such-mke2fs is not installed; install Debian's e2fsprogs"), "\($0)")
    }
    XCTAssertEqual(BuildTool.mke2fs.package, "e2fsprogs")
    XCTAssertEqual(BuildTool.depmod.package, "kmod")
  }

  func testAnImageThatIsNotBuiltIsAnErrorListingTheBuiltOnes() throws {
    let library = TemporaryFolder()
    let templates = ImageTemplates(library: library.path)
    XCTAssertThrowsError(try templates.manifest(of: "tiny")) {
      XCTAssertEqual(
        "\($0)", "image 'tiny' not found (no image is built in \(library.path)); run `vmlab image build tiny`")
    }
    XCTAssertThrowsError(try templates.manifest(of: "huge")) {
      XCTAssertTrue("\($0)".contains("vmlab can build tiny"), "\($0)")
    }
  }

  func testAKilledBuildsWorkFolderIsSweptAndALiveOnesIsKept() throws {
    let library = TemporaryFolder()
    let templates = library.file("templates")
    // pid_max is at most 2^22 here: a pid past it belongs to no process.
    let dead = "\(templates)/.tiny-building-99999999-abcdef12"
    let live = "\(templates)/.tiny-building-\(getpid())-abcdef12"
    let replaced = "\(templates)/.tiny-replaced-99999999-abcdef12"
    for folder in [dead, live, replaced, "\(templates)/tiny"] {
      try FileManager.default.createDirectory(atPath: folder + "/work", withIntermediateDirectories: true)
    }
    TinyImageBuilder.sweepLeftovers(in: templates)
    XCTAssertEqual(
      Set(try FileManager.default.contentsOfDirectory(atPath: templates)),
      [".tiny-building-\(getpid())-abcdef12", "tiny"])
  }
}
