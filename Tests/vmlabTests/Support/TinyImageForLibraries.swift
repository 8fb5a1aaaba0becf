import Foundation
import LabKit
import QEMUHost
import XCTest

/// The tiny image, built once per test process into a folder of its own (removed when the process
/// ends) and copied into each test's library as `templates/tiny`, as `vmlab image build tiny` leaves
/// it: the command-line tests of real guests share one build (about 20 s with the .debs cached).
enum TinyImageForLibraries {
  private static let folder = NSTemporaryDirectory() + "vmlab-tests-labs-image-\(getpid())"

  private static let built: Result<String, Error> = {
    atexit { try? FileManager.default.removeItem(atPath: TinyImageForLibraries.folderPath) }
    let templates = ImageTemplates(library: folder)
    return Result {
      _ = try TinyImageBuilder(templates: templates) { print("tiny image: \($0)") }.build()
      return templates.folder(of: TinyImageBuilder.imageName)
    }
  }()

  fileprivate static var folderPath: String { folder }

  /// Puts the built image into `library` (skips the test where qemu-system is not installed).
  static func install(into library: String) throws {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") else {
      throw XCTSkip("qemu-system-x86_64 is not installed (Debian qemu-system-x86; Scripts/bootstrap installs it)")
    }
    let image = try built.get()
    let target = ImageTemplates(library: library).folder(of: TinyImageBuilder.imageName)
    try FileManager.default.createDirectory(
      atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: image, toPath: target)
  }
}
