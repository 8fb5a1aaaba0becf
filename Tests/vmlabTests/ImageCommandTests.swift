import Foundation
import TestSupport
import XCTest

/// `vmlab image build` and `image list` as a user types them. The build itself is tested in
/// QEMUHostTests (it takes half a minute); here, what the command refuses and what it lists.
final class ImageCommandTests: LibraryCommandTestCase {
  private func writeManifest(_ name: String) throws {
    let folder = folder.file("library/templates/\(name)")
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let manifest = """
      {"name": "\(name)", "built": "2026-11-30T12:00:00Z", "kernel": "vmlinuz", "initrd": "initrd.img",
       "rootDisk": "root.vhd", "commandLine": "console=ttyS0 root=/dev/vda rw", "kernelVersion": "6.1.0-57-amd64",
       "modules": ["virtio_ring"], "readyMarker": "vmlab-tiny: ready",
       "packages": [{"name": "busybox-static", "version": "1:1.35.0-4", "role": "busybox"}]}
      """
    try manifest.write(toFile: "\(folder)/image.json", atomically: true, encoding: .utf8)
  }

  func testListSaysHowToBuildWhenNothingIsBuiltThenListsTheImages() throws {
    var result = try run(["image", "list"])
    XCTAssertTrue(result.output.contains("no images in"), result.output)
    XCTAssertTrue(result.output.contains("`vmlab image build tiny` builds one"), result.output)
    try writeManifest("tiny")
    result = try run(["image", "list"])
    XCTAssertEqual(
      result.output.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) },
      [
        ["IMAGE", "KERNEL", "BUILT", "PACKAGES", "USED", "BY"],
        ["tiny", "6.1.0-57-amd64", "2026-11-30T12:00:00Z", "1", "-"],
      ])
    let json = try JSONSerialization.jsonObject(with: Data(try run(["image", "list", "--json"]).output.utf8))
    let images = try XCTUnwrap(json as? [[String: Any]])
    XCTAssertEqual(images.first?["kernelVersion"] as? String, "6.1.0-57-amd64")
  }

  func testASecondBuildSaysItExistsAndChangesNothing() throws {
    try writeManifest("tiny")
    let before = try String(contentsOfFile: folder.file("library/templates/tiny/image.json"), encoding: .utf8)
    let result = try run(["image", "build", "tiny"], expect: 1)
    XCTAssertTrue(result.error.contains("image 'tiny' is already built in "), result.error)
    XCTAssertTrue(
      result.error.contains("`vmlab image build tiny --rebuild` replaces it when no VM uses it"), result.error)
    XCTAssertEqual(
      try String(contentsOfFile: folder.file("library/templates/tiny/image.json"), encoding: .utf8), before)
    XCTAssertFalse(result.output.contains("downloading"), result.output)
  }

  func testAnImageVmlabCannotBuildIsAUsageError() throws {
    let result = try run(["image", "build", "windows"], expect: 2)
    XCTAssertTrue(result.error.contains("vmlab cannot build an image 'windows'; it builds: tiny"), result.error)
  }

  func testVMCreateWithAnImageThatIsNotBuiltListsTheBuiltOnesAndMakesNothing() throws {
    var result = try run(["vm", "create", "web01", "--host", "qemu", "--image", "tiny"], expect: 1)
    XCTAssertTrue(result.error.contains("image 'tiny' not found (no image is built in "), result.error)
    XCTAssertTrue(result.error.contains("run `vmlab image build tiny`"), result.error)
    try writeManifest("other")
    result = try run(["vm", "create", "web01", "--host", "qemu", "--image", "tiny"], expect: 1)
    XCTAssertTrue(result.error.contains("(built: other)"), result.error)
    XCTAssertTrue(try run(["vm", "list"]).output.contains("no VMs in"))
  }

  func testVMCreateWithAnImageOnAHostThatCannotBootItIsRefused() throws {
    try writeManifest("tiny")
    let result = try run(["vm", "create", "web01", "--image", "tiny", "--disk", "1G"], expect: 1)
    XCTAssertTrue(
      result.error.contains(
        "VM 'web01': image 'tiny' boots a real guest, which the simulated host cannot run; give --host qemu"),
      result.error)
    XCTAssertTrue(try run(["vm", "list"]).output.contains("no VMs in"))
  }

  func testVMCreateWithAnImageRefusesOptionsThatDoNotGoWithIt() throws {
    var result = try run(["vm", "create", "web01", "--image", "tiny", "--from", "base.vhd"], expect: 2)
    XCTAssertTrue(result.error.contains("give --image or --from, not both"), result.error)
    result = try run(["vm", "create", "web01", "--image", "tiny", "--kernel", "vmlinuz"], expect: 2)
    XCTAssertTrue(result.error.contains("--image boots the image's kernel"), result.error)
    result = try run(["vm", "create", "web01"], expect: 2)
    XCTAssertTrue(result.error.contains("or --image NAME"), result.error)
  }

  func testRebuildIsRefusedWhileAVMBootsTheImage() throws {
    try writeManifest("tiny")
    let kernel = folder.file("library/templates/tiny/vmlinuz")
    FileManager.default.createFile(atPath: kernel, contents: Data("kernel".utf8))
    // A VM booting the image's kernel (as `vm create --image` makes one on the qemu host).
    try run(["vm", "create", "web01", "--disk", "8M", "--kernel", kernel])
    let result = try run(["image", "build", "tiny", "--rebuild"], expect: 1)
    XCTAssertTrue(
      result.error.contains(
        "image 'tiny' is used by VM(s) web01; remove them before rebuilding it (nothing was changed)"),
      result.error)
    XCTAssertEqual(try String(contentsOfFile: kernel, encoding: .utf8), "kernel")
    XCTAssertTrue(try run(["image", "list"]).output.contains("web01"))
  }
}
