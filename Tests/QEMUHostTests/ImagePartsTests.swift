import Foundation
import LabKit
import TestSupport
import XCTest

@testable import QEMUHost

/// The pieces of an image build that read Debian's and the kernel's tables, on small inputs.
final class ImagePartsTests: XCTestCase {
  /// A kernel tree with the tables depmod writes.
  private func kernelTree(dep: String, builtin: String = "", softdep: String = "", alias: String = "") throws
    -> TemporaryFolder
  {
    let tree = TemporaryFolder()
    let folder = tree.file("lib/modules/6.1.0-test-amd64")
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    try dep.write(toFile: "\(folder)/modules.dep", atomically: true, encoding: .utf8)
    try builtin.write(toFile: "\(folder)/modules.builtin", atomically: true, encoding: .utf8)
    try softdep.write(toFile: "\(folder)/modules.softdep", atomically: true, encoding: .utf8)
    try alias.write(toFile: "\(folder)/modules.alias", atomically: true, encoding: .utf8)
    return tree
  }

  func testModulesLoadAfterWhatTheyNeedWithSoftDependenciesOptional() throws {
    let tree = try kernelTree(
      dep: """
        kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz kernel/fs/mbcache.ko.xz kernel/fs/jbd2/jbd2.ko.xz
        kernel/drivers/virtio/virtio.ko.xz: kernel/drivers/virtio/virtio_ring.ko.xz
        kernel/drivers/virtio/virtio_ring.ko.xz:
        kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz
        kernel/lib/crc16.ko.xz:
        kernel/fs/mbcache.ko.xz:
        kernel/fs/jbd2/jbd2.ko.xz:
        kernel/crypto/crc32c_generic.ko.xz:
        kernel/arch/x86/crypto/crc32c-intel.ko.xz:

        """,
      builtin: "kernel/drivers/virtio/virtio_pci.ko\n",
      softdep: "# Soft dependencies\nsoftdep ext4 pre: crypto-crc32c post: nothing\n",
      alias: "alias crypto-crc32c crc32c_intel\nalias crypto-crc32c crc32c_generic\n")
    let modules = try KernelModules(tree: tree.path, version: "6.1.0-test-amd64")
    let order = try modules.loadOrder(for: ["virtio_pci", "virtio_blk", "ext4"])
    XCTAssertEqual(
      order.map(\.name),
      ["virtio_ring", "virtio", "virtio_blk", "crc32c_intel", "crc32c_generic", "jbd2", "mbcache", "crc16", "ext4"])
    XCTAssertEqual(order.filter(\.optional).map(\.name), ["crc32c_intel", "crc32c_generic"])
    XCTAssertEqual(order.first { $0.name == "crc32c_intel" }?.path, "kernel/arch/x86/crypto/crc32c-intel.ko.xz")
  }

  func testAModuleTheKernelDoesNotHaveIsNamed() throws {
    let tree = try kernelTree(dep: "kernel/drivers/virtio/virtio_ring.ko:\n")
    let modules = try KernelModules(tree: tree.path, version: "6.1.0-test-amd64")
    XCTAssertThrowsError(try modules.loadOrder(for: ["virtio_ring", "ext4"])) {
      XCTAssertTrue("\($0)".contains("kernel 6.1.0-test-amd64 has no module 'ext4'"), "\($0)")
    }
  }

  func testAKernelTreeWithoutModulesDepIsRefused() throws {
    let tree = TemporaryFolder()
    try FileManager.default.createDirectory(
      atPath: tree.file("lib/modules/6.1.0-x"), withIntermediateDirectories: true)
    XCTAssertThrowsError(try KernelModules(tree: tree.path, version: "6.1.0-x")) {
      XCTAssertTrue("\($0)".contains("modules.dep is missing"), "\($0)")
    }
  }

  func testAptRecordsAndDependsFieldsParse() {
    let record = DebianPackages.fields(
      """
      Package: qemu-guest-agent
      Version: 1:7.2+dfsg-7+deb12u18+b3
      Pre-Depends: init-system-helpers (>= 1.54~)
      Depends: libc6 (>= 2.34), libglib2.0-0 (>= 2.75.3) | libglib2.0-0t64, libudev1:amd64 (>= 183)
      Description: Guest-side qemu-system agent
       longer text

      Package: qemu-guest-agent
      Version: 1:7.2-older
      """)
    XCTAssertEqual(record["Version"], "1:7.2+dfsg-7+deb12u18+b3", "the first record only")
    XCTAssertEqual(
      DebianPackages.dependencyNames(record["Depends"] ?? ""), ["libc6", "libglib2.0-0", "libudev1"])
    XCTAssertEqual(DebianPackages.dependencyNames(record["Pre-Depends"] ?? ""), ["init-system-helpers"])
    XCTAssertEqual(record["Description"], "Guest-side qemu-system agent\nlonger text")
  }

  func testLibraryLinksAreFollowedOnlyInsideTheUnpackedTree() throws {
    let tree = TemporaryFolder()
    let libs = tree.file("lib/x86_64-linux-gnu")
    try FileManager.default.createDirectory(atPath: libs, withIntermediateDirectories: true)
    FileManager.default.createFile(atPath: "\(libs)/libz.so.1.2.13", contents: Data("elf".utf8))
    try FileManager.default.createSymbolicLink(atPath: "\(libs)/libz.so.1", withDestinationPath: "libz.so.1.2.13")
    try FileManager.default.createSymbolicLink(
      atPath: "\(libs)/libabs.so.1", withDestinationPath: "/lib/x86_64-linux-gnu/libz.so.1")
    try FileManager.default.createSymbolicLink(
      atPath: "\(libs)/libout.so.1", withDestinationPath: "../../../../etc/passwd")
    try FileManager.default.createSymbolicLink(atPath: "\(libs)/libloop.so.1", withDestinationPath: "libloop.so.1")
    XCTAssertEqual(SharedLibraries.resolveLink("\(libs)/libz.so.1", inside: tree.path), "\(libs)/libz.so.1.2.13")
    XCTAssertEqual(SharedLibraries.resolveLink("\(libs)/libabs.so.1", inside: tree.path), "\(libs)/libz.so.1.2.13")
    XCTAssertNil(SharedLibraries.resolveLink("\(libs)/libout.so.1", inside: tree.path))
    XCTAssertNil(SharedLibraries.resolveLink("\(libs)/libloop.so.1", inside: tree.path))
  }

  func testTheCacheFollowsXDGCacheHome() {
    XCTAssertEqual(DebianPackages.defaultCache(environment: ["XDG_CACHE_HOME": "/c"]), "/c/vmlab/debs")
    XCTAssertTrue(DebianPackages.defaultCache(environment: [:]).hasSuffix("/.cache/vmlab/debs"))
  }

  func testTheCacheKeepsOnlyWhatABuildUsed() throws {
    let cache = TemporaryFolder()
    let stale = cache.file("linux-image-6.1.0-1-amd64_6.1.4-1_amd64.deb")
    FileManager.default.createFile(atPath: stale, contents: Data("old kernel".utf8))
    FileManager.default.createFile(atPath: cache.file("notes.txt"), contents: Data("kept".utf8))
    let packages = DebianPackages(cache: cache.path)
    let busybox = try packages.fetch("busybox-static")
    // A second fetch uses the cached file (its SHA-256 matches apt's index).
    var lines: [String] = []
    var again = DebianPackages(cache: cache.path)
    again.progress = { lines.append($0) }
    XCTAssertEqual(try again.fetch("busybox-static").file, busybox.file)
    XCTAssertEqual(lines, ["using cached busybox-static \(busybox.version)"])
    packages.pruneCache()
    XCTAssertEqual(
      Set(try FileManager.default.contentsOfDirectory(atPath: cache.path)),
      [(busybox.file as NSString).lastPathComponent, "notes.txt"])
  }
}
