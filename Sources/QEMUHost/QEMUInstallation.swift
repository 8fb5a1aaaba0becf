import Foundation
import LabKit

/// Where the QEMU programs vmlab runs are: `qemu-system-x86_64` from Debian's `qemu-system-x86`.
/// A missing program is an error that names the package to install.
public enum QEMUInstallation {
  /// The emulator, found on PATH (or in /usr/bin).
  public static func systemEmulator() throws -> String {
    try program("qemu-system-x86_64", package: "qemu-system-x86")
  }

  static func program(_ name: String, package: String) throws -> String {
    let folders =
      (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin"]
    for folder in folders where !folder.isEmpty {
      let candidate = "\(folder)/\(name)"
      if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw LabKitError(
      .notFound,
      "\(name) is not installed; install Debian's \(package) (`apt-get install \(package)`, or run Scripts/bootstrap)")
  }
}
