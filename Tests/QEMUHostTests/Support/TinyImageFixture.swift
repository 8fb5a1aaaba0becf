import Foundation
import LabKit
import QEMUHost
import XCTest

/// The tiny image, built once per test process (about 30 s once the .debs are in the cache) into
/// a temporary library folder that is removed when the process ends; every test that boots a
/// guest shares it.
enum TinyImageFixture {
  struct Built {
    var folder: String
    var manifest: ImageManifest
    var seconds: Double
  }

  private static let library = NSTemporaryDirectory() + "vmlab-tests-tiny-image-\(getpid())"

  private static let built: Result<Built, Error> = {
    atexit { try? FileManager.default.removeItem(atPath: TinyImageFixture.libraryPath) }
    let started = Date()
    let templates = ImageTemplates(library: library)
    return Result {
      let manifest = try TinyImageBuilder(templates: templates) { print("tiny image: \($0)") }.build()
      let seconds = Date().timeIntervalSince(started)
      print("tiny image: built in \(String(format: "%.1f", seconds)) s")
      return Built(folder: templates.folder(of: TinyImageBuilder.imageName), manifest: manifest, seconds: seconds)
    }
  }()

  fileprivate static var libraryPath: String { library }

  /// The built image; skips the test when qemu-system is not installed (it boots nothing without it).
  static func image() throws -> Built {
    try requireEmulator()
    return try built.get()
  }

  static func requireEmulator() throws {
    do {
      _ = try QEMUInstallation.systemEmulator()
    } catch {
      throw XCTSkip("qemu-system-x86_64 is not installed (Scripts/bootstrap installs qemu-system-x86): \(error)")
    }
  }
}
